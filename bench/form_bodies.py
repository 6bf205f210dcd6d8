"""`python -m bench.form_bodies`: what large form bodies cost the gateway's event loop.

The gateway of `create_app` in-process (the fake boundary of the unit tests behind it:
no broker, no database), 4 clients each posting 1 MiB form bodies to
`POST /v1/task/categorize` for a few seconds, while a client in a thread of its own
asks `/healthz` every 20 ms. It prints how long the posts took and how long `/healthz`
took meanwhile (p50, p99, max): the time the posts held up the event loop shows in the
health checks.

Three bodies: a quarter of a million tiny fields (`a=b&...`), one field of
percent-encoded four-byte characters (`instruction=%F0%9F%98%80...`), and the largest
such field the gateway still parses. Results are in
docs/operations/hardening.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import threading
import time

from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from humantask_gateway.app import create_app
from humantask_gateway.settings import GatewaySettings
from tests.support.fake_boundary import CUSTOMER_KEY, FakeBoundary
from tests.support.gateway import basic

MIB = 1024 * 1024
BODIES = {
    "many fields": b"a=b&" * (MIB // 4),
    "one escaped field": b"instruction=" + b"%F0%9F%98%80" * ((MIB - 12) // 12),
    # The largest form the gateway still parses with the default MAX_TASK_BYTES.
    "384 KiB escaped field": b"instruction=" + b"%F0%9F%98%80" * (3 * 128 * 1024 // 12),
}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _summary(seconds: list[float]) -> str:
    if not seconds:
        return "none"
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"n={len(ordered)} p50={statistics.median(ordered) * 1000:.1f} ms "
        f"p99={p99 * 1000:.1f} ms max={ordered[-1] * 1000:.1f} ms"
    )


def _probe_health(url: str, stop: threading.Event, health: list[float]) -> None:
    """In a thread of its own, with its own event loop: how long `/healthz` takes, as a
    load balancer outside the process would see it."""

    async def probe() -> None:
        async with ClientSession() as session:
            while not stop.is_set():
                started = time.perf_counter()
                async with session.get(url) as response:
                    await response.read()
                health.append(time.perf_counter() - started)
                await asyncio.sleep(0.02)

    asyncio.run(probe())


async def _measure(body: bytes, seconds: float, clients: int) -> tuple[list[float], list[float]]:
    settings = GatewaySettings(rate_limit_per_second=0, gateway_max_in_flight_per_credential=0)
    server = TestServer(create_app(settings, FakeBoundary()))
    await server.start_server()
    posts: list[float] = []
    health: list[float] = []
    stop = threading.Event()
    prober = threading.Thread(
        target=_probe_health, args=(str(server.make_url("/healthz")), stop, health)
    )
    deadline = time.monotonic() + seconds
    headers = {**basic(CUSTOMER_KEY), **FORM}
    try:
        prober.start()
        async with ClientSession() as session:

            async def post() -> None:
                while time.monotonic() < deadline:
                    started = time.perf_counter()
                    async with session.post(
                        server.make_url("/v1/task/categorize"), data=body, headers=headers
                    ) as response:
                        await response.read()
                    posts.append(time.perf_counter() - started)

            await asyncio.gather(*(post() for _ in range(clients)))
    finally:
        stop.set()
        await asyncio.to_thread(prober.join)
        await server.close()
    return posts, health


async def main(seconds: float, clients: int) -> None:
    for name, body in BODIES.items():
        posts, health = await _measure(body, seconds, clients)
        print(f"{name} ({len(body)} bytes), {clients} clients posting for {seconds:g} s")
        print(f"  POST    {_summary(posts)}")
        print(f"  /healthz {_summary(health)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=4)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.seconds, arguments.clients))
