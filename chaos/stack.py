"""Two copies of each service, driven only through their console scripts and their
environment, on the run's own broker and its own database of the shared MongoDB."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.stack import Process, free_port
from chaos.processes import answers_200, wait_until

BIN = Path(sys.executable).parent
SERVICES = ("taskstore", "notifier", "gateway")
COPIES = 2


@dataclass
class Copy:
    service: str
    number: int
    process: Process
    ready_url: str
    gateway_url: str | None = None

    @property
    def name(self) -> str:
        return f"{self.service}-{self.number}"


@dataclass
class Stack:
    settings: Mapping[str, str]  # the environment every service and humantask-admin get
    log_dir: Path
    copies: dict[str, Copy] = field(default_factory=dict)

    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, **self.settings, **extra}

    async def start(self, ready_seconds: float) -> None:
        """Every copy at once: copies that race to create the indexes of an empty database
        must sort it out themselves (README, "Resilience")."""
        for number in range(1, COPIES + 1):
            for service in SERVICES:
                self.copies[f"{service}-{number}"] = self.start_copy(service, number)
        await asyncio.gather(
            *(self.wait_ready(copy, ready_seconds) for copy in self.copies.values())
        )

    def start_copy(self, service: str, number: int) -> Copy:
        health = str(free_port())
        extra = {"HEALTH_PORT": health}
        gateway_url = None
        if service == "gateway":
            port = free_port()
            extra["GATEWAY_PORT"] = str(port)
            gateway_url = f"http://127.0.0.1:{port}"
        argv = [str(BIN / f"humantask-{service}")]
        process = Process(f"{service}-{number}", argv, self.env(**extra), self.log_dir)
        process.start()
        return Copy(service, number, process, f"http://127.0.0.1:{health}/readyz", gateway_url)

    @property
    def gateway_urls(self) -> list[str]:
        return [c.gateway_url for c in self.copies.values() if c.gateway_url is not None]

    async def wait_ready(self, copy: Copy, deadline_seconds: float) -> None:
        async with aiohttp.ClientSession() as session:

            async def ready() -> bool:
                if not copy.process.alive():
                    raise RuntimeError(f"{copy.name} exited:\n{copy.process.log_tail()}")
                return await answers_200(session, copy.ready_url)

            await wait_until(ready, deadline_seconds, f"{copy.name} ready")

    async def wait_all_ready(self, deadline_seconds: float) -> None:
        await asyncio.gather(
            *(self.wait_ready(copy, deadline_seconds) for copy in self.copies.values())
        )

    def crashed(self) -> list[str]:
        """Copies that exited without being killed by the run."""
        return [copy.name for copy in self.copies.values() if not copy.process.alive()]

    async def admin(self, *args: str) -> dict[str, str]:
        """`humantask-admin ARGS`: its one JSON object."""
        process = await asyncio.create_subprocess_exec(
            str(BIN / "humantask-admin"),
            *args,
            env=self.env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 120)
        if process.returncode != 0:
            raise RuntimeError(f"humantask-admin {' '.join(args)}: {err.decode()[-2000:]}")
        result: dict[str, str] = json.loads(out)
        return result

    async def stop(self) -> None:
        await asyncio.gather(*(copy.process.stop() for copy in self.copies.values()))
