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
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.stats import phase_summary
from humantask_shared.broker_access import BrokerIdentities, broker_user
from humantask_shared.errors import HumantaskError
from humantask_shared.messaging import connect_broker

from . import fs_side, ours
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


async def serve(amqp_url: str) -> None:
    """Both servers until SIGTERM; prints READY once both consume."""
    connection = await connect_broker(amqp_url, "spike-server")
    fs_server = fs_side.spike_broker(amqp_url, identities(amqp_url))
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


async def phase(client: Client, clients: int, seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    started = time.perf_counter()
    window_start, window_end = started + WARMUP_SECONDS, started + WARMUP_SECONDS + seconds

    async def caller(index: int) -> None:
        n = 0
        while (now := time.perf_counter()) < window_end:
            n += 1
            try:
                await client.send(Ping(n=index * 1_000_000 + n, text=PING_TEXT), PingResult)
            except HumantaskError as exc:  # a timeout or a refusal: counted, the phase goes on
                errors[type(exc).__name__] += 1
                continue
            done = time.perf_counter()
            if window_start <= now and done <= window_end:
                latencies.append(done - now)

    await asyncio.gather(*(caller(index) for index in range(clients)))
    return phase_summary(latencies, seconds, errors)


async def bench(amqp_url: str, levels: list[int], seconds: float, repeats: int) -> None:
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.faststream_spike", "serve", "--amqp-url", amqp_url,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert server.stdout is not None
    async with asyncio.timeout(60):
        while (line := await server.stdout.readline()) != b"READY\n":
            if not line:
                raise RuntimeError("the spike's server process ended before READY")
    user = broker_user(amqp_url)
    connection = await connect_broker(amqp_url, "spike-callers")
    fs_callers = fs_side.spike_broker(amqp_url)
    reply_queue = fs_side.ReplyQueueClient(fs_callers, user, TIMEOUT_SECONDS)
    rows: list[dict[str, Any]] = []
    try:
        await fs_callers.start()
        async with ours.client(connection, user, TIMEOUT_SECONDS) as our_client:
            callers: dict[str, Client] = {
                "ours: RpcClient + CommandServer": our_client,
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
                        row |= await phase(client, clients, seconds)
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
    path.write_text(json.dumps({"seconds": seconds, "prefetch": PREFETCH, "rows": rows}, indent=1))
    print(f"wrote {path}")


def _line(row: dict[str, Any]) -> str:
    return (
        f"round {row['round']}  {row['caller']:<38} {row['clients']:>3} callers  "
        f"{row['throughput']:>8.1f}/s  p50 {row['p50_ms']} ms  p99 {row['p99_ms']} ms"
        f"  errors {row['errors'] or 0}"
    )


def _summarise(rows: list[dict[str, Any]], levels: list[int], callers: list[str]) -> None:
    """Per level and round: each caller's throughput and p99 as a ratio of ours."""
    print("\nratios to ours (throughput x, p99 x), per round:")
    for clients in levels:
        for name in callers[1:]:
            cells = []
            for mine in (r for r in rows if r["caller"] == name and r["clients"] == clients):
                base = _find(
                    rows, callers[0], clients, lambda r, mine=mine: r["round"] == mine["round"]
                )
                cells.append(
                    f"{mine['throughput'] / base['throughput']:.2f}x, "
                    f"{(mine['p99_ms'] or 0) / (base['p99_ms'] or 1):.2f}x"
                )
            print(f"  {clients:>3} callers  {name:<38} " + "  |  ".join(cells))


def _find(
    rows: list[dict[str, Any]], caller: str, clients: int, where: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    return next(r for r in rows if r["caller"] == caller and r["clients"] == clients and where(r))
