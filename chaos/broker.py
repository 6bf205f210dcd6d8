"""The run's own RabbitMQ: one node, or three clustered behind HAProxy, all through
scripts/rabbitmq-nodes.sh (ports 5791-5793, HAProxy on 5790). The system broker on 5672
is never touched."""

from __future__ import annotations

import asyncio
import shutil
from collections import Counter
from pathlib import Path

from bench.stack import Process

ROOT = Path(__file__).resolve().parents[1]
NODES_SCRIPT = ROOT / "scripts" / "rabbitmq-nodes.sh"
BASE_PORT = 5790  # node N listens on BASE_PORT + N; HAProxy on BASE_PORT

# TCP, no inspection: HAProxy hands each new connection to a node that accepts
# connections (checked every second), and cuts the connections of a node it marks down so
# their clients reconnect (through it, to a live node) at once.
HAPROXY_CONFIG = """\
global
  maxconn 4096
defaults
  mode tcp
  timeout connect 2s
  timeout client 3h
  timeout server 3h
listen amqp
  bind 127.0.0.1:{port}
  balance roundrobin
  default-server inter 1s fall 2 rise 2 on-marked-down shutdown-sessions
{servers}
"""


class Broker:
    def __init__(self, nodes: int, state_dir: Path, log_dir: Path) -> None:
        self.nodes = nodes
        self.state_dir = state_dir
        self.log_dir = log_dir
        self.haproxy: Process | None = None

    @property
    def amqp_url(self) -> str:
        port = BASE_PORT if self.nodes > 1 else BASE_PORT + 1
        return f"amqp://guest:guest@127.0.0.1:{port}/"

    async def script(self, *args: str) -> str:
        process = await asyncio.create_subprocess_exec(
            "bash",
            str(NODES_SCRIPT),
            *args,
            env={"CHAOS_RABBITMQ_DIR": str(self.state_dir), "PATH": "/usr/sbin:/usr/bin:/bin"},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await process.communicate()
        text = out.decode(errors="replace")
        await asyncio.to_thread(self.append_log, text)
        if process.returncode != 0:
            raise RuntimeError(f"rabbitmq-nodes.sh {' '.join(args)} failed:\n{text[-2000:]}")
        return text

    def append_log(self, text: str) -> None:
        with open(self.log_dir / "rabbitmq-nodes.log", "a", encoding="utf-8") as log:
            log.write(text)

    async def start(self) -> None:
        await self.script("stop-all")
        await self.script("wipe")
        await self.script("start", "1")
        for node in range(2, self.nodes + 1):
            await self.script("start", str(node))
            await self.script("join", str(node))
        if self.nodes > 1:
            await self.start_haproxy()

    async def start_haproxy(self) -> None:
        executable = shutil.which("haproxy", path="/usr/sbin:/usr/bin")
        if executable is None:
            raise RuntimeError("--cluster needs HAProxy: apt-get install -y haproxy")
        config = self.state_dir / "haproxy.cfg"
        servers = "\n".join(
            f"  server node{n} 127.0.0.1:{BASE_PORT + n} check" for n in range(1, self.nodes + 1)
        )
        config.write_text(HAPROXY_CONFIG.format(port=BASE_PORT, servers=servers))
        self.haproxy = Process("haproxy", [executable, "-db", "-f", str(config)], {}, self.log_dir)
        self.haproxy.start()

    async def kill_node(self, node: int) -> None:
        await self.script("kill", str(node))

    async def start_node(self, node: int) -> None:
        await self.script("start", str(node))

    async def queue_types(self) -> dict[str, int]:
        """How many queues of each type (classic, quorum) the services declared."""
        out = await self.script("ctl", "1", "-q", "list_queues", "--no-table-headers", "type")
        return dict(Counter(line.strip() for line in out.splitlines() if line.strip()))

    async def stop(self) -> None:
        if self.haproxy is not None:
            await self.haproxy.stop(5)
        await self.script("stop-all")
