"""What one `GET /v1/tasks` costs the task-store and the database, against a real server
(docs/operations/hardening.md, "Lists"): a deep offset is skipped by the database, a page
stops at its byte budget and the cursor goes on from there, and a list that runs past
its time limit is a clear `unavailable` (503), never a hang. `/scale/v1`'s lists of
tasks, projects and batches are held to the same limits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import bson
import pytest
from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.database import AsyncDatabase

from humantask_shared.core.errors import Unavailable
from humantask_shared.core.models import (
    CreateTaskRequest,
    ListCursor,
    TaskListQuery,
    new_task_id,
)
from humantask_shared.core.scale_models import (
    BatchListQuery,
    CreateBatchRequest,
    CreateProjectRequest,
    ProjectParams,
    ScaleTaskListQuery,
)
from humantask_shared.runtime.mongo import Document
from humantask_taskstore import domain
from humantask_taskstore.batches import new_batch
from humantask_taskstore.projects import ParamsVersion, new_project, with_version
from humantask_taskstore.repository import (
    BatchRepository,
    ListLimits,
    ProjectRepository,
    TaskRepository,
    TaskSearch,
    ensure_indexes,
    task_document,
)
from humantask_taskstore.repository.documents import TASKS
from humantask_taskstore.repository.indexes import LIST_INDEX
from humantask_taskstore.repository.listing import TaskLists

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=1)


@pytest.fixture
async def db(fresh_database) -> AsyncIterator[AsyncDatabase]:
    async for database in fresh_database(ensure_indexes):
        yield database


def record(customer_id: str, created_at: datetime, instruction: str) -> domain.TaskRecord:
    request = {
        "callback_url": "http://www.example.com/callback",
        "instruction": instruction,
        "attachment_type": "text",
        "attachment": "car",
        "categories": ["big", "small"],
    }
    made, _ = domain.create_task(
        new_task_id(), customer_id, CreateTaskRequest.model_validate(request), created_at
    )
    return made


async def store(db: AsyncDatabase, count: int, instruction_bytes: int = 40) -> list[str]:
    """`count` tasks of cust-a a millisecond apart, inserted in bulk, each instruction
    of four-byte characters (a task of 10,000 of them is 40 KB); newest first."""
    instruction = "\N{GRINNING FACE}" * (instruction_bytes // 4)
    made = [record("cust-a", T0 + timedelta(milliseconds=i), instruction) for i in range(count)]
    for start in range(0, count, 500):
        await db[TASKS].insert_many([task_document(r) for r in made[start : start + 500]])
    return [r.task_id for r in sorted(made, key=lambda r: (r.created_at, r.task_id), reverse=True)]


class ReplyBytes(monitoring.CommandListener):
    """The bytes of every reply the server sent, and the commands asked."""

    def __init__(self) -> None:
        self.bytes = 0
        self.commands: list[str] = []
        self.failed_codes: list[int] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.commands.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self.bytes += len(bson.encode(event.reply))

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self.failed_codes.append(int(event.failure.get("code", 0)))


@pytest.fixture
async def watched(db: AsyncDatabase, mongodb_url: str) -> AsyncIterator[tuple[Any, ReplyBytes]]:
    """The same database through a client whose replies are counted."""
    counter = ReplyBytes()
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        mongodb_url, event_listeners=[counter], tz_aware=True
    )
    try:
        yield client[db.name], counter
    finally:
        await client.close()


async def page(
    tasks: TaskRepository, cursor: ListCursor | None = None, **query: Any
) -> tuple[list[str], ListCursor | None]:
    records, next_cursor = await tasks.list(
        "cust-a", TaskListQuery.model_validate(query), NOW, cursor=cursor
    )
    return [r.task_id for r in records], next_cursor


async def test_a_deep_offset_is_skipped_by_the_database_not_read(
    db: AsyncDatabase, watched: tuple[Any, ReplyBytes]
) -> None:
    newest_first = await store(db, 1_200, instruction_bytes=2_000)
    watched_db, replies = watched
    tasks = TaskRepository(watched_db)

    first, _ = await page(tasks, limit=100)
    first_page_bytes, replies.bytes = replies.bytes, 0
    deep, cursor = await page(tasks, limit=100, offset=1_000)

    assert first == newest_first[:100]
    assert deep == newest_first[1_000:1_100]
    assert cursor is not None
    # Before: the 1,101 documents above the page came back whole (about 11 pages' worth).
    assert replies.bytes < 2 * first_page_bytes, (replies.bytes, first_page_bytes)


async def test_a_page_stops_at_its_byte_budget_and_the_cursor_goes_on(db: AsyncDatabase) -> None:
    newest_first = await store(db, 30, instruction_bytes=20_000)
    budget = 100_000  # four of these tasks, and some
    tasks = TaskRepository(db, ListLimits(page_max_bytes=budget))

    pages: list[list[str]] = []
    ids, cursor = await page(tasks, limit=100)
    pages.append(ids)
    while cursor is not None:
        ids, cursor = await page(tasks, cursor, limit=100)
        pages.append(ids)

    assert [task for each in pages for task in each] == newest_first
    assert all(1 <= len(each) <= 5 for each in pages), [len(each) for each in pages]
    assert len(pages) >= 6

    # With an offset too: the page is cut short, and the cursor goes on after it.
    ids, cursor = await page(tasks, limit=100, offset=3)
    assert ids == newest_first[3 : 3 + len(ids)] and len(ids) <= 5
    assert cursor is not None
    rest, _ = await page(tasks, cursor, limit=2)
    assert rest == newest_first[3 + len(ids) : 5 + len(ids)]


async def test_one_task_larger_than_the_budget_still_makes_a_page(db: AsyncDatabase) -> None:
    newest_first = await store(db, 3, instruction_bytes=9_000)
    tasks = TaskRepository(db, ListLimits(page_max_bytes=1_000))
    ids, cursor = await page(tasks, limit=100)
    assert ids == newest_first[:1] and cursor is not None


async def test_a_list_past_its_time_limit_is_unavailable_and_says_so(
    db: AsyncDatabase, watched: tuple[Any, ReplyBytes]
) -> None:
    await store(db, 2_000, instruction_bytes=2_000)
    watched_db, replies = watched
    # One span over all of them: a sort of 2,000 tasks, about 40 ms on the test machine.
    everything = ListCursor(created_at=NOW, task_id="f" * 24, span_seconds=10 * 86400)
    tasks = TaskRepository(watched_db, ListLimits(max_time_ms=10))
    with pytest.raises(Unavailable, match=r"time limit \(10 ms"):
        await page(tasks, everything, limit=100)
    # The database stopped the query (maxTimeMS), not merely the task-store's clock.
    assert replies.failed_codes == [50], replies.failed_codes


# -- `/scale/v1`'s lists (docs/reference/contract.md §11): bounded as `/v1`'s ------------------


async def scale_page(
    search: TaskSearch, cursor: ListCursor | None = None, count: bool = False, **query: Any
) -> tuple[list[str], ListCursor | None, int | None]:
    records, next_cursor, total = await search.page(
        "cust-a", ScaleTaskListQuery.model_validate(query), NOW, cursor, count
    )
    return [r.task_id for r in records], next_cursor, total


async def test_a_scale_page_stops_at_its_byte_budget_and_the_cursor_goes_on(
    db: AsyncDatabase,
) -> None:
    newest_first = await store(db, 30, instruction_bytes=20_000)
    search = TaskSearch(db, ListLimits(page_max_bytes=100_000))  # four of these, and some
    for filters in ({}, {"status": "pending"}):
        pages: list[list[str]] = []
        ids, cursor, total = await scale_page(search, count=True, **filters)
        assert total == 30
        pages.append(ids)
        while cursor is not None:
            ids, cursor, _ = await scale_page(search, cursor, **filters)
            pages.append(ids)
        assert [task for each in pages for task in each] == newest_first
        assert all(1 <= len(each) <= 5 for each in pages), [len(each) for each in pages]


async def test_a_scale_page_of_unique_ids_stops_at_its_byte_budget_too(db: AsyncDatabase) -> None:
    made = [
        replace(record("cust-a", T0 + timedelta(seconds=n), "\N{GRINNING FACE}" * 5_000),
                unique_id=f"u-{n}")
        for n in range(6)
    ]  # fmt: skip
    await db[TASKS].insert_many([task_document(r) for r in made])
    search = TaskSearch(db, ListLimits(page_max_bytes=50_000))  # two of these, and some
    wanted = [f"u-{n}" for n in range(6)]
    ids, cursor, _ = await scale_page(search, unique_id=wanted)
    assert ids == [made[5].task_id, made[4].task_id] and cursor is not None
    rest, cursor, _ = await scale_page(search, cursor, unique_id=wanted)
    assert rest == [made[3].task_id, made[2].task_id] and cursor is not None


async def test_a_scale_list_past_its_time_limit_is_unavailable_and_says_so(
    db: AsyncDatabase, watched: tuple[Any, ReplyBytes]
) -> None:
    await store(db, 2_000, instruction_bytes=2_000)
    watched_db, replies = watched
    everything = ListCursor(created_at=NOW, task_id="f" * 24, span_seconds=10 * 86400)
    search = TaskSearch(watched_db, ListLimits(max_time_ms=10))
    with pytest.raises(Unavailable, match=r"time limit \(10 ms"):
        await scale_page(search, everything, limit=100)
    assert replies.failed_codes == [50], replies.failed_codes


async def test_a_scale_lists_count_is_bounded_by_the_time_limit_too(
    db: AsyncDatabase, watched: tuple[Any, ReplyBytes]
) -> None:
    """The count (`total`, on the first page) shares the list's time: counting 10,000
    index entries takes several times 5 ms (about 17 ms on the test machine), and the
    database stops it."""
    await store(db, 10_000)
    watched_db, replies = watched
    lists = TaskLists(watched_db[TASKS], ListLimits(max_time_ms=5))
    with pytest.raises(Unavailable, match=r"time limit \(5 ms"):
        await lists.count({"customer_id": "cust-a"}, LIST_INDEX, 10_000, lists.budget())
    assert replies.failed_codes == [50], replies.failed_codes


async def test_projects_and_batches_lists_are_bounded_in_bytes(db: AsyncDatabase) -> None:
    projects = ProjectRepository(db, ListLimits(page_max_bytes=64 * 1024))
    big = {"metadata": {"note": "x" * 15_000}, "instruction": "y" * 9_000}
    for n in range(6):
        request = CreateProjectRequest(
            type="categorization", name=f"p{n}", params=ProjectParams.model_validate(big)
        )
        project = new_project(new_task_id(), "cust-a", request, T0 + timedelta(seconds=n))
        for version in range(1, 4):  # versions the list never reads
            project = with_version(project, ParamsVersion(version, big, T0))
        await projects.add(project)
    listed = await projects.list("cust-a")
    assert [p.name for p in listed] == ["p0", "p1"]  # the oldest that fit in 64 KiB
    assert all(len(p.history) == 1 and p.current.version == 3 for p in listed)

    batches = BatchRepository(db, ListLimits(page_max_bytes=64 * 1024))
    for n in range(6):
        request = CreateBatchRequest(project="p0", name=f"b{n}", metadata={"note": "x" * 15_000})
        await batches.add(new_batch(new_task_id(), "cust-a", request, T0 + timedelta(seconds=n)))
    page, total = await batches.list("cust-a", BatchListQuery(limit=100))
    assert ([b.name for b in page], total) == (["b5", "b4", "b3", "b2"], 6)
    page, total = await batches.list("cust-a", BatchListQuery(limit=100, offset=4))
    assert ([b.name for b in page], total) == (["b1", "b0"], 6)
