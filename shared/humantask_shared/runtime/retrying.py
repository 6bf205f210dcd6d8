"""Trying again with backoff: a service that cannot reach its broker or database at
start, or whose database refuses its preparation for a moment, says so in its log and
keeps trying (docs/reference/contract.md §2) rather than exiting."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

FIRST_DELAY_SECONDS = 0.5
MAX_DELAY_SECONDS = 15.0


async def until_it_works(
    attempt: Callable[[], Awaitable[T]],
    errors: tuple[type[BaseException], ...],
    failure: str,
) -> T:
    """`attempt()`'s result, calling it again after each of `errors`, the pause doubling
    from 0.5 s up to 15 s; anything else is raised at once (a bug is not retried)."""
    delay = FIRST_DELAY_SECONDS
    while True:
        try:
            return await attempt()
        except errors as exc:
            log.warning(
                f"{failure}, retrying",
                extra={"error": str(exc) or type(exc).__name__, "retry_in_seconds": delay},
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_DELAY_SECONDS)
