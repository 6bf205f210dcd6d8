"""The task-store's MongoDB adapter against a real server (FerretDB 2 on DocumentDB, or
MongoDB), and its handlers where the database decides: concurrent creates, cancels and
claims. What the handlers do otherwise is tested against fakes
(tests/unit/test_taskstore_handlers.py). Every test gets a database of its own, dropped
afterwards."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId
from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.database import AsyncDatabase

from humantask_shared.core.credentials import credential_hash, new_api_key, new_worker_token
from humantask_shared.core.messages.commands import CancelTask, ClaimWork, CreateTask
from humantask_shared.core.messages.events import TaskCanceled
from humantask_shared.core.models import (
    CreateTaskRequest,
    ListCursor,
    TaskListQuery,
    TaskResponse,
    new_task_id,
)
from humantask_shared.core.timeutil import utcnow
from humantask_shared.runtime.mongo import Document
from humantask_shared.runtime.publishing import stamp_all
from humantask_taskstore import customer_handlers, domain, work_handlers
from humantask_taskstore.cursors import CursorSigner
from humantask_taskstore.ports import Dependencies, TaskExists
from humantask_taskstore.repository import (
    AccountRepository,
    BatchRepository,
    OutboxStore,
    PoolRepository,
    ProjectRepository,
    QualityRepository,
    TaskRepository,
    TaskSearch,
    ensure_indexes,
    indexes,
    listing,
)
from humantask_taskstore.repository.accounts import CREDENTIALS, CUSTOMERS
from humantask_taskstore.repository.documents import TASKS
from humantask_taskstore.repository.pool import POOL_CUSTOMERS
from humantask_taskstore.repository.quality import QUALITY
from humantask_taskstore.repository.spans import CLOCK_SKEW, PoolFloor
from tests.support.fakes import RecordingAnnouncer, RecordingOutbox, RecordingPublisher

SEED: dict[str, Any] = {
    "callback_url": "http://www.example.com/test_callback",
    "instruction": "Would you say this item is big or small?",
    "attachment_type": "text",
    "attachment": "car",
    "categories": ["big", "small"],
}
T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
async def db(fresh_database) -> AsyncIterator[AsyncDatabase]:
    async for database in fresh_database(ensure_indexes):
        yield database


@pytest.fixture
def tasks(db: AsyncDatabase) -> TaskRepository:
    return TaskRepository(db)


@pytest.fixture
def outboxes(db: AsyncDatabase) -> OutboxStore:
    return OutboxStore(db)


@pytest.fixture
def accounts(db: AsyncDatabase) -> AccountRepository:
    return AccountRepository(db)


@pytest.fixture
def outbox() -> RecordingOutbox:
    return RecordingOutbox()


@pytest.fixture
def deps(
    db: AsyncDatabase, tasks: TaskRepository, accounts: AccountRepository, outbox: RecordingOutbox
) -> Dependencies:
    return Dependencies(
        tasks=tasks,
        accounts=accounts,
        outbox=outbox,
        announce=RecordingAnnouncer(),
        work_lease_seconds=600,
        pool=PoolRepository(db),
        quality=QualityRepository(db),
        publish=RecordingPublisher(),
        search=TaskSearch(db),
        projects=ProjectRepository(db),
        batches=BatchRepository(db),
        batch_outbox=RecordingOutbox(),
        list_tokens=CursorSigner(bytes(32)),
    )


async def claim(
    tasks: TaskRepository,
    worker: str,
    now: datetime,
    lease_expires_at: datetime,
    customer_id: str = "cust-a",
) -> domain.TaskRecord | None:
    """The repository's part of a claim: the worker's live lease, or the customer's oldest
    regular task it may claim, leased to it."""
    held = await tasks.held_lease(worker, now)
    if held is not None:
        return held
    return await tasks.lease_oldest(worker, customer_id, "work", now, lease_expires_at)


def request(**overrides: Any) -> CreateTaskRequest:
    return CreateTaskRequest.model_validate({**SEED, **overrides})


async def add_task(
    tasks: TaskRepository,
    customer_id: str = "cust-a",
    created_at: datetime = T0,
    **overrides: Any,
) -> domain.TaskRecord:
    record, events = domain.create_task(
        new_task_id(), customer_id, request(**overrides), created_at
    )
    await tasks.add(record, stamp_all(events, created_at), created_at)
    return record


# -- add / get ---------------------------------------------------------------------------


async def test_a_task_reads_back_as_it_was_written(tasks: TaskRepository) -> None:
    metadata = {"odd.key": {"$weird": [1, 2.5, None, True]}, "é": "ü"}
    record, events = domain.create_task(
        new_task_id(),
        "cust-a",
        request(metadata=metadata, unique_id="u-1", callback_format="json"),
        datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC),
        "req-1",
    )
    await tasks.add(record, stamp_all(events, T0), T0)

    found = await tasks.get(record.task_id)
    assert found == record
    assert found is not None
    assert found.metadata == metadata
    assert found.created_at.tzinfo is not None
    assert found.created_at == record.created_at
    assert found.request_id == "req-1"


async def test_get_is_scoped_to_the_customer(tasks: TaskRepository) -> None:
    record = await add_task(tasks, "cust-a")
    assert await tasks.get(record.task_id, "cust-a") == record
    assert await tasks.get(record.task_id, "cust-b") is None
    assert await tasks.get(record.task_id) == record


@pytest.mark.parametrize("task_id", ["zzz", "", "0123456789abcdef0123456", "0" * 24])
async def test_get_of_an_invalid_or_unknown_id_is_none(tasks: TaskRepository, task_id: str) -> None:
    assert await tasks.get(task_id, "cust-a") is None


async def test_metadata_is_stored_opaque_next_to_the_outbox(
    db: AsyncDatabase, tasks: TaskRepository
) -> None:
    record = await add_task(tasks, metadata={"a.b": {"$c": 1}})
    doc = await db[TASKS].find_one({"_id": ObjectId(record.task_id)})
    assert doc is not None
    # Metadata is stored opaque: its keys may hold '.' and '$'.
    assert "metadata" not in doc
    assert doc["metadata_json"] == '{"a.b":{"$c":1}}'
    assert doc["outbox_at"] == T0  # the relay's clock for unpublished events
    assert len(doc["outbox"]) == 1
    assert "unique_id" not in doc  # absent, so outside the partial unique index


async def test_add_of_a_known_task_id_raises_task_exists(tasks: TaskRepository) -> None:
    record, events = domain.create_task(new_task_id(), "cust-a", request(), T0)
    await tasks.add(record, stamp_all(events, T0), T0)
    later, later_events = domain.create_task(record.task_id, "cust-a", request(), T0)
    with pytest.raises(TaskExists) as info:
        await tasks.add(later, stamp_all(later_events, T0), T0)  # same task id
    assert info.value.existing == record
    assert await tasks.get(record.task_id) == record


async def test_add_of_a_known_unique_id_raises_task_exists_per_customer(
    tasks: TaskRepository,
) -> None:
    first = await add_task(tasks, "cust-a", unique_id="order-1")
    second, events = domain.create_task(new_task_id(), "cust-a", request(unique_id="order-1"), T0)
    with pytest.raises(TaskExists) as info:
        await tasks.add(second, stamp_all(events, T0), T0)
    assert info.value.existing == first
    assert await tasks.get(second.task_id) is None
    # Per customer: another customer's task with the same unique_id is its own.
    other = await add_task(tasks, "cust-b", unique_id="order-1")
    assert await tasks.find_by_unique_id("cust-b", "order-1") == other
    assert await tasks.find_by_unique_id("cust-a", "order-1") == first
    # Tasks without a unique_id never collide.
    await add_task(tasks, "cust-a")
    await add_task(tasks, "cust-a")


async def test_concurrent_adds_of_one_unique_id_have_one_winner(tasks: TaskRepository) -> None:
    attempts = [
        domain.create_task(new_task_id(), "cust-a", request(unique_id="race"), T0) for _ in range(8)
    ]
    results = await asyncio.gather(
        *(tasks.add(record, stamp_all(events, T0), T0) for record, events in attempts),
        return_exceptions=True,
    )
    winners = [
        record for (record, _), result in zip(attempts, results, strict=True) if result is None
    ]
    assert len(winners) == 1
    assert all(
        isinstance(r, TaskExists) and r.existing == winners[0] for r in results if r is not None
    )


class InsertCounter(monitoring.CommandListener):
    def __init__(self) -> None:
        self.inserts: list[int] = []  # documents per insert command

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "insert" and event.command["insert"] == TASKS:
            self.inserts.append(len(event.command.get("documents", [])))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_concurrent_adds_share_one_insert_and_a_duplicate_spoils_only_itself(
    db: AsyncDatabase, mongodb_url: str
) -> None:
    counter = InsertCounter()
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        mongodb_url, event_listeners=[counter], tz_aware=True
    )
    try:
        tasks = TaskRepository(client[db.name])
        new = [domain.create_task(new_task_id(), "cust-a", request(), T0) for _ in range(10)]
        again, again_events = domain.create_task(new[0][0].task_id, "cust-a", request(), T0)
        results = await asyncio.gather(
            *(
                tasks.add(record, stamp_all(events, T0), T0)
                for record, events in [*new, (again, again_events)]
            ),
            return_exceptions=True,
        )
        assert results[:10] == [None] * 10
        assert isinstance(results[10], TaskExists) and results[10].existing == new[0][0]
        assert counter.inserts[0] == 11, counter.inserts  # one write for all of them
        for record, _ in new:
            assert await tasks.get(record.task_id) == record
    finally:
        await client.close()


# -- list ------------------------------------------------------------------------------


async def listed(
    tasks: TaskRepository, customer_id: str = "cust-a", **query: Any
) -> tuple[list[str], bool]:
    records, next_page = await tasks.list(
        customer_id, TaskListQuery.model_validate(query), utcnow()
    )
    return [r.task_id for r in records], next_page is not None


async def all_pages(
    tasks: TaskRepository, now: datetime, customer_id: str = "cust-a", **query: Any
) -> list[list[str]]:
    """Every page, following the cursors to the end."""
    pages: list[list[str]] = []
    cursor = None
    while True:
        records, cursor = await tasks.list(
            customer_id, TaskListQuery.model_validate(query), now, cursor
        )
        pages.append([r.task_id for r in records])
        if cursor is None:
            return pages
        query.pop("offset", None)


async def test_list_is_newest_first_with_ties_broken_by_task_id(tasks: TaskRepository) -> None:
    oldest = await add_task(tasks, created_at=T0)
    tie_1 = await add_task(tasks, created_at=T0 + timedelta(seconds=1))
    tie_2 = await add_task(tasks, created_at=T0 + timedelta(seconds=1))
    newest = await add_task(tasks, created_at=T0 + timedelta(seconds=2))
    # Written out of order: the order comes from the data, not from insertion.
    late_but_old = await add_task(tasks, created_at=T0 - timedelta(days=1))

    ties = sorted([tie_1.task_id, tie_2.task_id], reverse=True)
    assert await listed(tasks) == (
        [newest.task_id, *ties, oldest.task_id, late_but_old.task_id],
        False,
    )


async def test_list_only_shows_the_customers_own_tasks(tasks: TaskRepository) -> None:
    mine = await add_task(tasks, "cust-a")
    theirs = await add_task(tasks, "cust-b")
    assert await listed(tasks, "cust-a") == ([mine.task_id], False)
    assert await listed(tasks, "cust-b") == ([theirs.task_id], False)
    assert await listed(tasks, "cust-c") == ([], False)


async def test_list_pages_with_limit_offset_and_has_more(tasks: TaskRepository) -> None:
    created = [await add_task(tasks, created_at=T0 + timedelta(seconds=i)) for i in range(5)]
    newest_first = [r.task_id for r in reversed(created)]

    assert await listed(tasks, limit=2) == (newest_first[:2], True)
    assert await listed(tasks, limit=2, offset=2) == (newest_first[2:4], True)
    assert await listed(tasks, limit=2, offset=4) == (newest_first[4:], False)
    assert await listed(tasks, limit=5) == (newest_first, False)  # exactly all: no more
    assert await listed(tasks, limit=4, offset=1) == (newest_first[1:], False)
    assert await listed(tasks, offset=5) == ([], False)
    assert await listed(tasks, offset=50) == ([], False)


async def test_list_filters_by_status_type_and_unique_id(tasks: TaskRepository) -> None:
    first = await add_task(tasks, created_at=T0, unique_id="u-1")
    second = await add_task(tasks, created_at=T0 + timedelta(seconds=1))
    third = await add_task(tasks, created_at=T0 + timedelta(seconds=2), unique_id="u-3")
    canceled, events = domain.cancel_task(second, T0 + timedelta(minutes=1))
    assert await tasks.save(canceled, stamp_all(events, T0), T0) is not None

    assert await listed(tasks, status="canceled") == ([second.task_id], False)
    assert await listed(tasks, status="pending") == ([third.task_id, first.task_id], False)
    assert await listed(tasks, status="completed") == ([], False)
    everything = [third.task_id, second.task_id, first.task_id]
    assert await listed(tasks, type="categorization") == (everything, False)
    assert await listed(tasks, unique_id="u-3") == ([third.task_id], False)
    assert await listed(tasks, unique_id="u-3", status="canceled") == ([], False)
    assert await listed(tasks, unique_id="nope") == ([], False)


async def test_list_time_window_includes_start_and_excludes_end(tasks: TaskRepository) -> None:
    at = [await add_task(tasks, created_at=T0 + timedelta(milliseconds=i)) for i in (0, 1, 2, 3)]
    ids = [r.task_id for r in at]

    window = await listed(tasks, start_time=at[1].created_at, end_time=at[3].created_at)
    assert window == ([ids[2], ids[1]], False)
    assert await listed(tasks, start_time=at[3].created_at) == ([ids[3]], False)
    assert await listed(tasks, end_time=at[0].created_at) == ([], False)
    assert await listed(tasks, end_time=at[1].created_at) == ([ids[0]], False)


async def test_list_time_window_in_other_zones_and_naive_times(tasks: TaskRepository) -> None:
    record = await add_task(tasks, created_at=T0)
    # 14:00+02:00 is T0; a naive time is UTC.
    assert await listed(tasks, start_time="2024-05-01T14:00:00+02:00") == ([record.task_id], False)
    assert await listed(tasks, start_time="2024-05-01T14:00:00.001+02:00") == ([], False)
    assert await listed(tasks, end_time="2024-05-01T12:00:00.001") == ([record.task_id], False)
    assert await listed(tasks, end_time="2024-05-01T12:00:00") == ([], False)


async def test_next_token_pages_through_every_task_once_in_order(tasks: TaskRepository) -> None:
    # Creation times from a millisecond to years apart, with ties: spans of every width.
    offsets = [0, 0, 0.001, 1, 59, 61, 3600, 86400, 86400, 30 * 86400, 400 * 86400, 3 * 365 * 86400]
    now = T0 + timedelta(days=4 * 365)
    created = [await add_task(tasks, created_at=now - timedelta(seconds=s)) for s in offsets]
    await add_task(tasks, "cust-b", created_at=now)  # someone else's: never listed
    newest_first = [
        r.task_id for r in sorted(created, key=lambda r: (r.created_at, r.task_id), reverse=True)
    ]

    for limit in (1, 2, 5, 100):
        pages = await all_pages(tasks, now, limit=limit)
        assert [task for page in pages for task in page] == newest_first, limit
        assert all(len(page) == limit for page in pages[:-1])


async def test_next_token_keeps_the_filters_and_time_window(tasks: TaskRepository) -> None:
    now = T0 + timedelta(days=1)
    records = [await add_task(tasks, created_at=T0 + timedelta(minutes=i)) for i in range(10)]
    for record in records[::3]:
        canceled, events = domain.cancel_task(record, now)
        assert await tasks.save(canceled, stamp_all(events, now), now) is not None
    pending = [r.task_id for r in reversed(records) if r not in records[::3]]
    pages = await all_pages(tasks, now, limit=2, status="pending")
    assert [task for page in pages for task in page] == pending

    window = await all_pages(
        tasks, now, limit=2, start_time=records[2].created_at, end_time=records[7].created_at
    )
    assert [task for page in window for task in page] == [r.task_id for r in reversed(records[2:7])]


async def test_a_task_created_between_pages_neither_repeats_nor_skips_one(
    tasks: TaskRepository,
) -> None:
    now = T0 + timedelta(hours=1)
    created = [await add_task(tasks, created_at=T0 + timedelta(seconds=i)) for i in range(6)]
    first, next_page = await tasks.list("cust-a", TaskListQuery(limit=3), now)
    assert next_page is not None
    await add_task(tasks, created_at=now)  # newer than everything: on page one if reloaded
    rest, after = await tasks.list("cust-a", TaskListQuery(limit=3), now, next_page)
    assert [r.task_id for r in first + rest] == [r.task_id for r in reversed(created)]
    assert after is None


async def test_offset_and_next_token_together_are_refused() -> None:
    token = ListCursor(created_at=T0, task_id="0" * 24, span_seconds=60).payload() + "." + "s" * 22
    with pytest.raises(ValueError, match="offset"):
        TaskListQuery.model_validate({"next_token": token, "offset": 1})


# -- save (optimistic concurrency) -----------------------------------------------------


async def test_save_bumps_the_version_and_appends_events_to_the_outbox(
    tasks: TaskRepository, outboxes: OutboxStore
) -> None:
    record = await add_task(tasks)
    canceled, raised = domain.cancel_task(record, T0 + timedelta(minutes=1))
    events = stamp_all(raised, T0 + timedelta(minutes=1))
    saved = await tasks.save(canceled, events, T0 + timedelta(minutes=1))

    assert saved is not None
    assert saved.version == record.version + 1
    assert saved.status == "canceled"
    assert saved.canceled_at == T0 + timedelta(minutes=1)
    assert await tasks.get(record.task_id) == saved
    outbox = await outboxes.events(record.task_id)
    assert len(outbox) == 2  # task.created (never published here) and task.canceled
    assert outbox[-1] == events[0].body


async def test_save_of_a_stale_version_changes_nothing_and_returns_none(
    tasks: TaskRepository, outboxes: OutboxStore
) -> None:
    record = await add_task(tasks)
    canceled, events = domain.cancel_task(record, T0 + timedelta(minutes=1))
    assert await tasks.save(canceled, stamp_all(events, T0), T0) is not None

    # Someone else read the same version 0 and tries to complete it.
    completed = replace(
        record,
        status="completed",
        completed_at=T0 + timedelta(minutes=2),
        response=TaskResponse(category="big"),
    )
    assert await tasks.save(completed, [], T0) is None
    stored = await tasks.get(record.task_id)
    assert stored is not None and stored.status == "canceled" and stored.version == 1
    assert len(await outboxes.events(record.task_id)) == 2


async def test_concurrent_saves_of_one_version_let_exactly_one_win(
    tasks: TaskRepository, outboxes: OutboxStore
) -> None:
    record = await add_task(tasks)
    attempts = [domain.cancel_task(record, T0 + timedelta(seconds=i), f"req-{i}") for i in range(5)]
    results = await asyncio.gather(
        *(tasks.save(rec, stamp_all(ev, T0), T0) for rec, ev in attempts)
    )
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert len(await outboxes.events(record.task_id)) == 2


# -- handlers racing on the database ----------------------------------------------------


async def test_concurrent_redeliveries_of_one_create_make_one_task(
    deps: Dependencies, tasks: TaskRepository
) -> None:
    command = CreateTask(customer_id="cust-a", request=request())
    results = await asyncio.gather(
        *(customer_handlers.create_task(command, deps) for _ in range(4))
    )
    assert len({task.task_id for task in results}) == 1
    assert await listed(tasks) == ([results[0].task_id], False)


async def test_concurrent_creates_with_one_unique_id_make_one_task(
    deps: Dependencies, tasks: TaskRepository
) -> None:
    results = await asyncio.gather(
        *(
            customer_handlers.create_task(
                CreateTask(customer_id="cust-a", request=request(unique_id="u")), deps
            )
            for _ in range(4)
        )
    )
    assert len({task.task_id for task in results}) == 1
    assert await listed(tasks) == ([results[0].task_id], False)


async def test_concurrent_cancels_raise_one_event(
    deps: Dependencies, outbox: RecordingOutbox
) -> None:
    task = await customer_handlers.create_task(
        CreateTask(customer_id="cust-a", request=request()), deps
    )
    cancel = CancelTask(customer_id="cust-a", task_id=task.task_id)
    results = await asyncio.gather(*(customer_handlers.cancel_task(cancel, deps) for _ in range(4)))
    assert {r.status for r in results} == {"canceled"}
    assert len({r.canceled_at for r in results}) == 1
    canceled = [
        e for _, events in outbox.published for e in events if isinstance(e.event, TaskCanceled)
    ]
    assert len(canceled) == 1


# -- indexes -----------------------------------------------------------------------------


async def test_ensure_indexes_is_idempotent(db: AsyncDatabase) -> None:
    await ensure_indexes(db)  # the fixture already ran it once
    await ensure_indexes(db)
    indexes = await db[TASKS].index_information()
    keys = [spec["key"] for spec in indexes.values()]
    assert [("customer_id", 1), ("created_at", -1), ("_id", -1)] in keys
    assert [("status", 1), ("created_at", 1)] in keys


# -- accounts --------------------------------------------------------------------------


async def test_a_customer_authenticates_by_the_hash_of_its_key(
    accounts: AccountRepository, db: AsyncDatabase
) -> None:
    key = new_api_key()
    principal = await accounts.add_customer("acme", credential_hash(key), "whsec_x", T0)
    assert principal.role == "customer"

    assert await accounts.authenticate(credential_hash(key), "customer") == principal
    assert await accounts.authenticate(credential_hash(key), "worker") is None
    assert await accounts.authenticate(credential_hash(new_api_key()), "customer") is None
    assert await accounts.authenticate(key, "customer") is None  # the key itself is not stored
    assert await accounts.callback_secret(principal.principal_id) == "whsec_x"
    assert await accounts.callback_secret("nobody") is None

    stored = [doc async for doc in db[CREDENTIALS].find({})]
    assert key not in repr(stored)


async def test_a_worker_token_is_not_a_customer_key(accounts: AccountRepository) -> None:
    token = new_worker_token()
    worker = await accounts.add_worker("ann", credential_hash(token), T0)
    assert worker.role == "worker"
    assert await accounts.authenticate(credential_hash(token), "worker") == worker
    assert await accounts.authenticate(credential_hash(token), "customer") is None


async def test_ensure_customer_is_idempotent(
    accounts: AccountRepository, db: AsyncDatabase
) -> None:
    digest = credential_hash(new_api_key())
    first = await accounts.ensure_customer("demo", digest, "whsec_1", T0)
    again = await accounts.ensure_customer("demo", digest, "whsec_2", T0)
    assert again == first
    assert await db[CUSTOMERS].count_documents({}) == 1
    assert await accounts.callback_secret(first.principal_id) == "whsec_1"


async def test_concurrent_ensure_customer_makes_one_principal(accounts: AccountRepository) -> None:
    digest = credential_hash(new_api_key())
    results = await asyncio.gather(
        *(accounts.ensure_customer("demo", digest, "s", T0) for _ in range(4))
    )
    assert len({p.principal_id for p in results}) == 1
    assert await accounts.authenticate(digest, "customer") == results[0]


# -- the worker pool ---------------------------------------------------------------------


async def test_concurrent_claims_lease_each_task_to_exactly_one_worker(
    deps: Dependencies, tasks: TaskRepository
) -> None:
    created = [
        (await add_task(tasks, created_at=T0 + timedelta(seconds=i))).task_id for i in range(8)
    ]
    # Ten workers, each claiming twice at once (a double click), for eight tasks.
    calls = [(f"worker-{w}", n) for w in range(10) for n in range(2)]
    results = await asyncio.gather(
        *(work_handlers.claim_work(ClaimWork(worker_id=worker), deps) for worker, _ in calls)
    )
    handed_to: dict[str, set[str]] = {}
    for (worker, _), result in zip(calls, results, strict=True):
        if result.item is not None:
            handed_to.setdefault(result.item.task_id, set()).add(worker)
    assert sorted(handed_to) == sorted(created)
    for task_id, workers in handed_to.items():
        assert len(workers) == 1, (task_id, workers)
        stored = await tasks.get(task_id)
        assert stored is not None and {lease.worker_id for lease in stored.leases} == workers


async def test_concurrent_claims_of_one_worker_all_return_the_same_single_task(
    deps: Dependencies, tasks: TaskRepository
) -> None:
    created = [
        (await add_task(tasks, created_at=T0 + timedelta(seconds=i))).task_id for i in range(3)
    ]
    results = await asyncio.gather(
        *(work_handlers.claim_work(ClaimWork(worker_id="alice"), deps) for _ in range(12))
    )
    handed_out = {result.item.task_id for result in results if result.item is not None}
    assert handed_out == {created[0]}
    # The other tasks are still in the pool for someone else.
    bob = await work_handlers.claim_work(ClaimWork(worker_id="bob"), deps)
    assert bob.item is not None and bob.item.task_id == created[1]


async def test_one_lease_per_worker_holds_across_two_task_stores(
    db: AsyncDatabase, deps: Dependencies, tasks: TaskRepository
) -> None:
    """Two task-store processes are two repositories on two connections."""
    created = [
        (await add_task(tasks, created_at=T0 + timedelta(seconds=i))).task_id for i in range(4)
    ]
    other = replace(deps, tasks=TaskRepository(db), pool=PoolRepository(db))
    results = await asyncio.gather(
        *(
            work_handlers.claim_work(ClaimWork(worker_id="alice"), deps if n % 2 else other)
            for n in range(10)
        )
    )
    assert {result.item.task_id for result in results if result.item is not None} == {created[0]}


async def test_a_workers_expired_lease_does_not_block_its_next_claim(
    tasks: TaskRepository,
) -> None:
    first = await add_task(tasks, created_at=T0)
    second = await add_task(tasks, created_at=T0 + timedelta(seconds=1))
    now = utcnow()
    leased = await claim(tasks, "alice", now, now + timedelta(seconds=5))
    assert leased is not None and leased.task_id == first.task_id

    later = now + timedelta(seconds=6)  # alice's lease on the first task has expired
    again = await claim(tasks, "alice", later, later + timedelta(seconds=5))
    # The first task is the oldest claimable one again; alice gets it anew.
    assert again is not None and again.task_id == first.task_id
    assert again.leases == (domain.Lease("alice", later + timedelta(seconds=5)),)
    bob = await claim(tasks, "bob", later, later + timedelta(seconds=5))
    assert bob is not None and bob.task_id == second.task_id
    assert await claim(tasks, "carol", later, later + timedelta(seconds=5)) is None


async def test_a_claim_takes_the_task_of_an_expired_lease_from_its_old_worker(
    tasks: TaskRepository,
) -> None:
    only = await add_task(tasks, created_at=T0)
    now = utcnow()
    assert await claim(tasks, "alice", now, now + timedelta(seconds=5)) is not None
    later = now + timedelta(seconds=6)
    bob = await claim(tasks, "bob", later, later + timedelta(seconds=5))
    assert bob is not None and bob.task_id == only.task_id
    assert [lease.worker_id for lease in bob.leases] == ["bob"]
    # Alice's next claim finds nothing, and her old lease is gone.
    assert await claim(tasks, "alice", later, later + timedelta(seconds=5)) is None
    assert await tasks.held_lease("alice", later) is None


async def test_a_write_based_on_a_stale_read_loses_to_a_claim(tasks: TaskRepository) -> None:
    record = await add_task(tasks)
    now = utcnow()
    assert await claim(tasks, "alice", now, now + timedelta(seconds=60)) is not None
    # A cancel decided on the task as it was before the claim must not land as is.
    canceled, events = domain.cancel_task(record, now)
    assert await tasks.save(canceled, stamp_all(events, now), now) is None


async def test_the_pool_floor_is_never_above_a_pending_task(
    tasks: TaskRepository, db: AsyncDatabase
) -> None:
    now = utcnow()
    oldest = await add_task(tasks, created_at=now - timedelta(days=3))
    await add_task(tasks, created_at=now - timedelta(days=1))
    floor = PoolFloor(refresh=timedelta(seconds=30))
    assert await floor.get(tasks.oldest_pending, now) == oldest.created_at

    canceled, events = domain.cancel_task(oldest, now)
    assert await tasks.save(canceled, stamp_all(events, now), now) is not None
    # Kept a while (merely low now), then looked up again.
    assert await floor.get(tasks.oldest_pending, now + timedelta(seconds=10)) == oldest.created_at
    later = now + timedelta(seconds=31)
    assert await floor.get(tasks.oldest_pending, later) == now - timedelta(days=1)

    # With no pending task, the floor is as late as another task-store may stamp one.
    empty = PoolFloor()
    await db[TASKS].delete_many({})
    assert await empty.get(tasks.oldest_pending, now) == now - CLOCK_SKEW


async def test_claims_take_the_oldest_first_across_dense_and_sparse_spans(
    tasks: TaskRepository,
) -> None:
    now = utcnow()
    # A burst (a millisecond apart) and stragglers days apart, written out of order.
    offsets = [
        timedelta(days=9),
        timedelta(days=2),
        *(timedelta(hours=1, milliseconds=i) for i in range(30)),
    ]
    created = [await add_task(tasks, created_at=now - offset) for offset in reversed(offsets)]
    oldest_first = [r.task_id for r in sorted(created, key=lambda r: (r.created_at, r.task_id))]
    claimed = []
    for n in range(len(created) + 1):
        leased = await claim(tasks, f"worker-{n}", now, now + timedelta(minutes=5))
        claimed.append(None if leased is None else leased.task_id)
    assert claimed == [*oldest_first, None]


# -- every hot query uses an index -------------------------------------------------------


def _index_names(plan: Any) -> set[str]:
    """The indexes a plan reads (MongoDB's IXSCAN stages, or DocumentDB's PostgreSQL
    plan, whose index scans carry the MongoDB index names)."""
    names: set[str] = set()
    if isinstance(plan, dict):
        for key in ("indexName", "Index Name"):
            if key in plan:
                names.add(plan[key])
        for value in plan.values():
            names |= _index_names(value)
    elif isinstance(plan, list):
        for value in plan:
            names |= _index_names(value)
    return names


def _scans_collection(plan: Any) -> bool:
    text = repr(plan)
    return "COLLSCAN" in text or "Seq Scan" in text


async def _explain_find(
    db: AsyncDatabase,
    criteria: dict[str, Any],
    sort: list[Any],
    limit: int,
    hint: str | None = None,
    collection: str = TASKS,
    **options: Any,
) -> dict[str, Any]:
    find: dict[str, Any] = {"find": collection, "filter": criteria, "limit": limit, **options}
    if sort:
        find["sort"] = dict(sort)
    if hint:
        find["hint"] = hint
    explained = await db.command("explain", find, verbosity="queryPlanner")
    return explained["queryPlanner"]


async def _explain_count(db: AsyncDatabase, criteria: dict[str, Any], hint: str) -> Any:
    count = {"count": TASKS, "query": criteria, "limit": 1_000, "hint": hint}
    explained = await db.command("explain", count, verbosity="queryPlanner")
    return explained["queryPlanner"]


@pytest.fixture
async def crowded(db: AsyncDatabase, tasks: TaskRepository) -> None:
    """Enough tasks of several customers (some of them gold, some answered) and enough
    workers' standings for a planner to prefer an index to a scan."""
    for i in range(300):
        record = await add_task(
            tasks,
            f"cust-{i % 10}",
            created_at=T0 + timedelta(seconds=i),
            unique_id=f"u-{i}",
            **({"gold_category": "big"} if i % 7 == 0 else {}),
        )
        if i % 5 == 0:
            await db[TASKS].update_one(
                {"_id": ObjectId(record.task_id)},
                {
                    "$set": {
                        "answers": [
                            {"worker_id": f"w-{i}", "category": "big", "at": T0, "counted": True}
                        ]
                    }
                },
            )
    documents = [
        {
            "_id": f"w/cust-{i % 10}/w-{i}",
            "customer_id": f"cust-{i % 10}",
            "worker_id": f"w-{i}",
            "answers": i % 3,
            "blocked": i % 11 == 0,
        }
        for i in range(300)
    ]
    await db[QUALITY].insert_many(documents)
    await db[POOL_CUSTOMERS].insert_many(
        [{"_id": f"p-{i}", "active": i % 3 == 0, "touched": 1} for i in range(300)]
    )


async def test_the_hot_queries_use_an_index(db: AsyncDatabase, crowded: None) -> None:
    now = utcnow()
    span = (now - timedelta(days=1), now)
    by_created = [("created_at", 1), ("_id", 1)]
    plans = {
        # A page's span, with the index the repository names.
        (indexes.LIST_INDEX, "list"): await _explain_find(
            db,
            {"customer_id": "cust-3", "created_at": {"$gte": span[0], "$lt": now}},
            [("created_at", -1), ("_id", -1)],
            101,
            hint=indexes.LIST_INDEX,
        ),
        # A claim's span of a customer's regular tasks, and of its gold ones.
        (indexes.CLAIM_INDEX, "claim"): await _explain_find(
            db, indexes.claimable("work", "cust-3", "alice", now, *span), by_created, 1
        ),
        (indexes.CLAIM_INDEX, "claim gold"): await _explain_find(
            db, indexes.claimable("gold", "cust-3", "alice", now, *span), by_created, 1
        ),
        # The customer's pool: its floor, whether it has any, the tasks a block discounts.
        (indexes.CLAIM_INDEX, "floor"): await _explain_find(
            db, indexes.in_pool("work", "cust-3"), [("created_at", 1)], 1
        ),
        (indexes.CLAIM_INDEX, "answered by"): await _explain_find(
            db,
            {
                **indexes.in_pool("work", "cust-3"),
                "answers": {"$elemMatch": {"worker_id": "w-3", "counted": True}},
            },
            [],
            0,
        ),
        (indexes.POOL_INDEX, "oldest pending"): await _explain_find(
            db, indexes.PENDING, [("created_at", 1)], 1
        ),
        (indexes.UNIQUE_ID_INDEX, "unique_id"): await _explain_find(
            db, indexes.unique_id_of("cust-3", "u-3"), [], 1
        ),
        (indexes.LEASE_INDEX, "held lease"): await _explain_find(
            db, indexes.held_by("alice"), [], 1
        ),
        (indexes.WAITING_INDEX, "waiting gauge"): await _explain_find(
            db, indexes.WAITING_FOR_ANSWERS, [], 0
        ),
        (indexes.OUTBOX_INDEX, "outbox"): await _explain_find(
            db, {"outbox_at": {"$lt": now}}, [], 1
        ),
        # What a claim and a submit read of workers, and what the customer's view lists.
        ("worker_customers", "standings"): await _explain_find(
            db, {"worker_id": {"$type": "string", "$eq": "w-3"}}, [], 0, collection=QUALITY
        ),
        ("_id_", "context"): await _explain_find(
            db,
            {"_id": {"$in": ["c/cust-3", "w/cust-3/w-3", "w/cust-3/w-13"]}},
            [],
            0,
            collection=QUALITY,
        ),
        ("customer_workers", "workers view"): await _explain_find(
            db,
            {"customer_id": "cust-3", "worker_id": {"$type": "string"}, "answers": {"$gt": 0}},
            [],
            0,
            collection=QUALITY,
        ),
        ("blocked_workers", "blocked gauge"): await _explain_find(
            db, {"blocked": True}, [], 0, collection=QUALITY
        ),
        ("active", "waiting customers"): await _explain_find(
            db, {"active": True}, [], 0, collection=POOL_CUSTOMERS
        ),
    }
    list_span = {"customer_id": "cust-3", "created_at": {"$gte": T0, "$lt": now}}
    more_plans = {
        # A list: spans above the page counted, the page's keys (its size) skipped to.
        ("count", indexes.LIST_INDEX): await _explain_count(db, list_span, indexes.LIST_INDEX),
        ("keys", indexes.LIST_INDEX): await _explain_find(
            db,
            list_span,
            [("created_at", -1), ("_id", -1)],
            101,
            hint=indexes.LIST_INDEX,
            skip=10,
            projection=listing.KEY_FIELDS,
        ),
        ("page", "_id_"): await _explain_find(
            db, {"_id": {"$in": [ObjectId(), ObjectId()]}}, [], 2, projection=listing.NOT_LISTED
        ),
        # A customer's pending tasks, counted when its usage counter starts or reconciles.
        ("pending", indexes.LIST_BY_STATUS_INDEX): await _explain_count(
            db, {"customer_id": "cust-3", "status": "pending"}, indexes.LIST_BY_STATUS_INDEX
        ),
        # Retention: the finished tasks that ended long ago.
        **{
            ("retention", index): await _explain_find(
                db, indexes.expired(status, now), [], 500, hint=index
            )
            for status, index in indexes.RETENTION_INDEXES.items()
        },
    }
    for (query, index), plan in more_plans.items():
        assert not _scans_collection(plan), (query, index, plan)
        assert index in _index_names(plan), (query, index, plan)
    for (index, query), plan in plans.items():
        assert not _scans_collection(plan), (query, plan)
        assert index in _index_names(plan), (query, index, plan)
