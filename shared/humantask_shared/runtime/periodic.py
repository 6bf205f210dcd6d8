"""Refreshing something every few seconds for as long as a service runs (the gauges)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

log = logging.getLogger(__name__)


async def refresh_forever(
    refresh: Callable[[], Awaitable[object]],
    interval_seconds: float,
    what: str,
    expected: tuple[type[BaseException], ...],
) -> None:
    """Call `refresh` every `interval_seconds` until cancelled. An `expected` failure (the
    broker or the database away) is a warning; anything else is logged with its stack,
    and neither stops the loop: a metric must never take the service down."""
    while True:
        try:
            await refresh()
        except expected as exc:
            log.warning(f"could not read {what}", extra={"error": repr(exc)})
        except Exception:
            log.exception(f"reading {what} failed")
        await asyncio.sleep(interval_seconds)


@contextlib.asynccontextmanager
async def refreshing(
    refresh: Callable[[], Awaitable[object]],
    interval_seconds: float,
    what: str,
    expected: tuple[type[BaseException], ...],
) -> AsyncIterator[None]:
    """`refresh_forever` in the background while the block runs."""
    task = asyncio.create_task(
        refresh_forever(refresh, interval_seconds, what, expected), name=f"refresh {what}"
    )
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
