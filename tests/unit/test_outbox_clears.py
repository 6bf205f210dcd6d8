"""Outbox clears go many tasks to a write (outbox.OutboxClears), against a fake store."""

from __future__ import annotations

import asyncio

import pytest
from pymongo.errors import AutoReconnect

from humantask_taskstore.outbox import OutboxClears


class SlowRepository:
    """Each write takes a moment, as a database round trip does."""

    def __init__(self, fail: bool = False) -> None:
        self.writes: list[list[tuple[str, list[str]]]] = []
        self.fail = fail
        self.writing = asyncio.Event()

    async def remove(self, published: list[tuple[str, list[str]]]) -> None:
        self.writes.append(list(published))
        self.writing.set()
        await asyncio.sleep(0.01)  # the round trip
        if self.fail:
            raise AutoReconnect("the database went away")


async def test_clears_that_arrive_during_a_write_go_together_in_the_next() -> None:
    repository = SlowRepository()
    clears = OutboxClears(repository)  # type: ignore[arg-type]
    await asyncio.gather(*(clears.clear(f"task-{i}", [f"event-{i}"]) for i in range(50)))
    cleared = [task_id for write in repository.writes for task_id, _ in write]
    assert sorted(cleared) == sorted(f"task-{i}" for i in range(50))
    assert len(repository.writes) == 1  # all arrived before the write went out

    # Clears that arrive while a write is on its way wait for it, then go together.
    first = asyncio.create_task(clears.clear("early", ["e"]))
    repository.writing.clear()
    await repository.writing.wait()  # the write of "early" is under way
    await asyncio.gather(first, *(clears.clear(f"late-{i}", ["e"]) for i in range(10)))
    assert [len(write) for write in repository.writes[1:]] == [1, 10]


async def test_a_lone_clear_is_written_at_once() -> None:
    repository = SlowRepository()
    await OutboxClears(repository).clear("task-1", ["event-1"])  # type: ignore[arg-type]
    assert repository.writes == [[("task-1", ["event-1"])]]


async def test_a_failed_write_fails_every_clear_in_it() -> None:
    clears = OutboxClears(SlowRepository(fail=True))  # type: ignore[arg-type]
    results = await asyncio.gather(
        *(clears.clear(f"t-{i}", ["e"]) for i in range(5)), return_exceptions=True
    )
    assert all(isinstance(result, AutoReconnect) for result in results)
    with pytest.raises(AutoReconnect):
        await clears.clear("t-late", ["e"])
