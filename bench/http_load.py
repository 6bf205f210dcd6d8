"""Load on a running gateway: create tasks, then read them back, and report latency.

    make run-local            # or docker compose up
    .venv/bin/python bench/http_load.py --requests 2000 --concurrency 32

Speed goals live here, not in tests. Each run is bounded by --requests and --seconds,
and it only talks to the URL you give it (loopback by default).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import time

import aiohttp

TASK = {
    "callback_url": "http://www.example.com/test_callback",
    "instruction": "Would you say this item is big or small?",
    "attachment_type": "text",
    "attachment": "car",
    "categories": ["big", "small"],
}


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run_phase(name: str, count: int, concurrency: int, deadline: float, call) -> list[float]:
    latencies: list[float] = []
    errors: dict[int, int] = {}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(count):
        queue.put_nowait(index)

    async def worker() -> None:
        while time.monotonic() < deadline:
            try:
                index = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            started = time.perf_counter()
            status = await call(index)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                errors[status] = errors.get(status, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    if latencies:
        print(
            f"{name:>7}: {len(latencies)} requests in {elapsed:.2f}s "
            f"= {len(latencies) / elapsed:.0f}/s; "
            f"latency ms p50 {statistics.median(latencies) * 1000:.1f} "
            f"p95 {percentile(latencies, 0.95) * 1000:.1f} "
            f"p99 {percentile(latencies, 0.99) * 1000:.1f}; "
            f"errors {errors or 'none'}"
        )
    return latencies


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--key", default="live_demo_key_change_me")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--seconds", type=float, default=120, help="stop after this long in any case"
    )
    args = parser.parse_args()

    token = base64.b64encode(f"{args.key}:".encode()).decode()
    headers = {"Authorization": f"Basic {token}"}
    deadline = time.monotonic() + args.seconds
    task_ids: list[str] = []

    async with aiohttp.ClientSession(
        headers=headers, timeout=aiohttp.ClientTimeout(total=30)
    ) as session:

        async def create(_index: int) -> int:
            async with session.post(f"{args.url}/v1/task/categorize", json=TASK) as response:
                if response.status == 200:
                    task_ids.append((await response.json())["task_id"])
                return response.status

        async def get(index: int) -> int:
            async with session.get(
                f"{args.url}/v1/task/{task_ids[index % len(task_ids)]}"
            ) as response:
                await response.read()
                return response.status

        async def list_page(_index: int) -> int:
            async with session.get(f"{args.url}/v1/tasks?limit=100") as response:
                await response.read()
                return response.status

        await run_phase("create", args.requests, args.concurrency, deadline, create)
        if task_ids:
            await run_phase("get", args.requests, args.concurrency, deadline, get)
            await run_phase(
                "list", max(1, args.requests // 10), args.concurrency, deadline, list_page
            )


if __name__ == "__main__":
    asyncio.run(main())
