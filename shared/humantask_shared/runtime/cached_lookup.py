"""Answers looked up elsewhere and remembered a short while: who owns a credential (the
gateway), a customer's callback secret (the notifier). Both are asked of the task-store.

Look-ups of one key that miss the cache together share one question: under load, a
question per request would queue behind the work itself (one client with a hundred
requests in flight would ask a hundred times whenever its entry expires). An answer is
forgotten as soon as what it says changes (`forget`, on a `credential.changed` event),
and everything when changes may have been missed (`forget_all`); the short lifetime is
only the backstop. An answer that was on its way while something changed is not kept,
and nobody asking after the change joins it: it may predate the change.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

KeyT = TypeVar("KeyT")
ValueT = TypeVar("ValueT")

MAX_ENTRIES = 10_000


class CachedLookup(Generic[KeyT, ValueT]):
    """`look_up(key)`'s answers, kept `ttl_seconds`; at most `max_entries` (all are
    dropped when it is full)."""

    def __init__(
        self,
        look_up: Callable[[KeyT], Awaitable[ValueT]],
        ttl_seconds: float,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self._look_up = look_up
        self._ttl_seconds = ttl_seconds
        self._max_entries = max_entries
        self._cache: dict[KeyT, tuple[float, ValueT]] = {}
        self._asking: dict[KeyT, asyncio.Future[ValueT]] = {}
        self._changes = 0  # changes heard of so far

    async def get(self, key: KeyT) -> ValueT:
        """The answer for `key`; whatever the look-up raises is raised here."""
        cached = self._cache.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        asking = self._asking.get(key)
        if asking is None:
            asking = asyncio.ensure_future(self._ask(key, self._changes))
            self._asking[key] = asking
            asking.add_done_callback(lambda done: self._asked(key, done))
        # Shielded: one caller going away does not cancel the others' answer.
        return await asyncio.shield(asking)

    def _asked(self, key: KeyT, done: asyncio.Future[ValueT]) -> None:
        if self._asking.get(key) is done:
            del self._asking[key]
        if not done.cancelled():
            done.exception()  # retrieved: when every caller left, nobody else reads it

    async def _ask(self, key: KeyT, changes_before: int) -> ValueT:
        answer = await self._look_up(key)
        if self._changes == changes_before:
            if len(self._cache) >= self._max_entries:
                self._cache.clear()
            self._cache[key] = (time.monotonic() + self._ttl_seconds, answer)
        return answer

    def forget(self, stale: Callable[[KeyT, ValueT], bool]) -> None:
        """Drop every answer `stale` says changed; answers on their way are not kept."""
        self._changes += 1
        self._asking.clear()
        for key in [key for key, (_, answer) in self._cache.items() if stale(key, answer)]:
            del self._cache[key]

    def forget_all(self) -> None:
        self._changes += 1
        self._asking.clear()
        self._cache.clear()
