"""Request/reply throughput and latency, ours and FastStream's, interleaved in one run.

The servers (ours and FastStream's, prefetch 32 as `PREFETCH_COUNT`) run in a process of
their own (`serve`), the callers in this one, both on uvloop as the services run. Every
round runs each level of concurrent callers for each caller in turn (in a rotating
order), so that the machine's load (two shared cores) falls on all of them alike;
compare ratios within a run. Each phase: 1 s of warm-up, then `seconds` measured;
throughput is the commands answered in the window per second, latency theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.stats import phase_summary
from humantask_shared.broker_access import BrokerIdentities, broker_user
from humantask_shared.errors import HumantaskError
from humantask_shared.messaging import connect_broker

from . import ours
from .check import Client
from .commands import PING_TEXT, Ping, PingResult

PREFETCH = 32
TIMEOUT_SECONDS = 10.0
WARMUP_SECONDS = 1.0
RESULTS = Path(__file__).parent / "results"


def service_loop() -> asyncio.AbstractEventLoop:
    import uvloop

    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    return loop


def identities(amqp_url: str) -> BrokerIdentities:
    user = broker_user(amqp_url)
    return BrokerIdentities(
        senders={"gateway": user, "notifier": user, "admin": user}, own_user="spike-self"
    )


async def serve(amqp_url: str, faststream_metrics: bool) -> None:
    """Both servers until SIGTERM; prints READY once both consume."""
    from . import fs_side  # FastStream only here, so the unit suite imports this module

    connection = await connect_broker(amqp_url, "spike-server")
    fs_server = fs_side.spike_broker(amqp_url, identities(amqp_url), metrics=faststream_metrics)
    fs_side.add_handlers(fs_server, PREFETCH)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with ours.serving(connection, identities(amqp_url), PREFETCH):
        await fs_server.start()
        await fs_side.declare_dead_letter_queues(fs_server)
        print("READY", flush=True)
        await stop.wait()
        await fs_server.stop()
    await connection.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def phase(client: Client, clients: int, seconds: float, server_pid: int) -> dict[str, Any]:
    """Besides throughput and latency, the CPU time each command cost the callers' and the
    servers' processes: less swayed by the neighbours' load than the rates are."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    answered = 0
    cpu_before = time.process_time(), cpu_seconds(server_pid)
    started = time.perf_counter()
    window_start, window_end = started + WARMUP_SECONDS, started + WARMUP_SECONDS + seconds

    async def caller(index: int) -> None:
        nonlocal answered
        n = 0
        while (now := time.perf_counter()) < window_end:
            n += 1
            try:
                await client.send(Ping(n=index * 1_000_000 + n, text=PING_TEXT), PingResult)
            except HumantaskError as exc:  # a timeout or a refusal: counted, the phase goes on
                errors[type(exc).__name__] += 1
                continue
            answered += 1
            done = time.perf_counter()
            if window_start <= now and done <= window_end:
                latencies.append(done - now)

    await asyncio.gather(*(caller(index) for index in range(clients)))
    callers_cpu = time.process_time() - cpu_before[0]
    server_cpu = cpu_seconds(server_pid) - cpu_before[1]
    return phase_summary(latencies, seconds, errors) | {
        "callers_cpu_ms_per_command": round(callers_cpu * 1000 / max(answered, 1), 3),
        "server_cpu_ms_per_command": round(server_cpu * 1000 / max(answered, 1), 3),
    }


async def bench(
    amqp_url: str, levels: list[int], seconds: float, repeats: int, faststream_metrics: bool
) -> None:
    from . import fs_side  # FastStream only here, so the unit suite imports this module

    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.faststream_spike", "serve", "--amqp-url", amqp_url,
        *([] if faststream_metrics else ["--no-faststream-metrics"]),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert server.stdout is not None
    async with asyncio.timeout(60):
        while (line := await server.stdout.readline()) != b"READY\n":
            if not line:
                raise RuntimeError("the spike's server process ended before READY")
    user = broker_user(amqp_url)
    connection = await connect_broker(amqp_url, "spike-callers")
    fs_callers = fs_side.spike_broker(amqp_url, metrics=faststream_metrics)
    reply_queue = fs_side.ReplyQueueClient(fs_callers, user, TIMEOUT_SECONDS)
    rows: list[dict[str, Any]] = []
    try:
        await fs_callers.start()
        async with ours.client(connection, user, TIMEOUT_SECONDS) as our_client:
            callers: dict[str, Client] = {
                "ours: CommandClient + CommandServer": our_client,
                "faststream: broker.request": fs_side.DirectReplyClient(
                    fs_callers, user, TIMEOUT_SECONDS
                ),
                "faststream: reply queue + middleware": reply_queue,
            }
            for round_number in range(1, repeats + 1):
                for clients in levels:
                    names = list(callers)
                    shift = (round_number + clients) % len(names)  # no caller always first
                    for name in names[shift:] + names[:shift]:
                        client = callers[name]
                        row = {"round": round_number, "caller": name, "clients": clients}
                        row |= await phase(client, clients, seconds, server.pid)
                        rows.append(row)
                        print(_line(row), flush=True)
    finally:
        await fs_callers.stop()
        await connection.close()
        server.terminate()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(15):
                await server.wait()
    _summarise(rows, levels, list(callers))
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{datetime.now(UTC):%Y-%m-%dT%H%M%SZ}.json"
    settings = {"seconds": seconds, "prefetch": PREFETCH, "faststream_metrics": faststream_metrics}
    path.write_text(json.dumps(settings | {"rows": rows}, indent=1))
    print(f"wrote {path}")


def _line(row: dict[str, Any]) -> str:
    return (
        f"round {row['round']}  {row['caller']:<38} {row['clients']:>3} callers  "
        f"{row['throughput']:>8.1f}/s  p50 {row['p50_ms']} ms  p99 {row['p99_ms']} ms"
        f"  cpu ms/command: callers {row['callers_cpu_ms_per_command']}"
        f" server {row['server_cpu_ms_per_command']}  errors {row['errors'] or 0}"
    )


def _summarise(rows: list[dict[str, Any]], levels: list[int], callers: list[str]) -> None:
    """Per level, each caller's median over the rounds, and as a ratio of ours."""
    print("\nmedian over the rounds (ratio to ours):")
    columns = {
        "throughput": "commands/s",
        "p50_ms": "p50 ms",
        "p99_ms": "p99 ms",
        "callers_cpu_ms_per_command": "callers CPU ms/command",
        "server_cpu_ms_per_command": "server CPU ms/command",
    }
    keys = tuple(columns)
    print(f"  {'':<43}" + "".join(f"{label:>26}" for label in columns.values()))
    for clients in levels:
        ours_row = _median(rows, callers[0], clients, keys)
        for name in callers:
            mine = _median(rows, name, clients, keys)
            cells = "".join(
                f"{mine[key]:>17.2f} ({mine[key] / (ours_row[key] or 1):.2f}x)" for key in keys
            )
            print(f"  {clients:>3} {name:<39}{cells}")


def _median(
    rows: list[dict[str, Any]], caller: str, clients: int, keys: tuple[str, ...]
) -> dict[str, float]:
    mine = [row for row in rows if row["caller"] == caller and row["clients"] == clients]
    return {key: statistics.median(row[key] or 0 for row in mine) for key in keys}
