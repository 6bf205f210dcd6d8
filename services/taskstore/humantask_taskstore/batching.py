"""Group commit: many concurrent writes of one kind in one database round trip.

While a write is on its way, the items that arrive wait for it and go together in the
next one. Under load that is one round trip for many items; an item that arrives alone
is written at once, so nothing waits for a timer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

ItemT = TypeVar("ItemT")

# What a group write answers: per item, None when it was written, or why it was not.
WriteGroup = Callable[[list[ItemT]], Awaitable[list[BaseException | None]]]


class GroupWriter(Generic[ItemT]):
    def __init__(self, write: WriteGroup[ItemT], max_items: int) -> None:
        self._write = write
        self._max_items = max_items
        self._waiting: list[tuple[ItemT, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: ItemT) -> None:
        """Write `item` with whatever else is waiting; raises what stopped it."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_all())
        await done

    async def _write_all(self) -> None:
        while self._waiting:
            group = self._waiting[: self._max_items]
            del self._waiting[: self._max_items]
            try:
                outcomes = await self._write([item for item, _ in group])
            except Exception as exc:  # noqa: BLE001 - the group's waiters get it, each
                outcomes = [exc] * len(group)
            for (_, done), outcome in zip(group, outcomes, strict=True):
                if done.done():  # its waiter was cancelled
                    continue
                if outcome is None:
                    done.set_result(None)
                else:
                    done.set_exception(outcome)
