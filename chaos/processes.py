"""Waiting on the run's child processes with deadlines. The processes themselves are
`bench.stack.Process` (each in a session of its own, so a kill reaches it alone), and
ports come from `bench.stack.free_port`: the benchmark starts the stack the same way."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import aiohttp


async def wait_until(
    condition: Callable[[], Awaitable[bool]], deadline_seconds: float, what: str
) -> None:
    """Poll `condition` every 0.2 s until it is true; RuntimeError after the deadline."""
    deadline = time.monotonic() + deadline_seconds
    while not await condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"not within {deadline_seconds:g}s: {what}")
        await asyncio.sleep(0.2)


async def answers_200(session: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError, OSError):
        return False
