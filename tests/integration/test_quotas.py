"""Per-customer quotas and retention against a real server (docs/operations/hardening.md,
"Quotas" and "Retention"): the counters hold under concurrent creates without
transactions, give back what tasks leave, are corrected by reconciling, and retention
deletes only what it may, in batches."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase

from humantask_shared.core.errors import QuotaExceeded, StorageQuotaExceeded
from humantask_shared.core.models import CreateTaskRequest, new_task_id
from humantask_shared.core.timeutil import utcnow
from humantask_shared.runtime.publishing import stamp_all
from humantask_taskstore import domain
from humantask_taskstore.ports import TaskExists
from humantask_taskstore.repository import TaskRepository, ensure_indexes
from humantask_taskstore.repository.documents import TASKS, task_bytes
from humantask_taskstore.repository.retention import TaskRetention
from humantask_taskstore.repository.usage import USAGE, CustomerUsage, QuotaLimits

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
SEED: dict[str, Any] = {
    "callback_url": "http://www.example.com/test_callback",
    "instruction": "Would you say this item is big or small?",
    "attachment_type": "text",
    "attachment": "car",
    "categories": ["big", "small"],
}


@pytest.fixture
async def db(fresh_database) -> AsyncIterator[AsyncDatabase]:
    async for database in fresh_database(ensure_indexes):
        yield database


def new_record(customer_id: str = "cust-a", at: datetime = T0, **fields: Any) -> Any:
    request = CreateTaskRequest.model_validate({**SEED, **fields})
    record, events = domain.create_task(new_task_id(), customer_id, request, at)
    return record, stamp_all(events, at)


async def add(tasks: TaskRepository, customer_id: str = "cust-a", **fields: Any) -> Any:
    record, events = new_record(customer_id, **fields)
    await tasks.add(record, events, T0)
    return record


async def test_concurrent_creates_never_pass_the_pending_quota(db: AsyncDatabase) -> None:
    tasks = TaskRepository(db, quotas=QuotaLimits(pending_tasks=5, stored_bytes=0))
    attempts = [new_record() for _ in range(20)]
    results = await asyncio.gather(
        *(tasks.add(record, events, T0) for record, events in attempts), return_exceptions=True
    )
    assert sum(result is None for result in results) == 5
    refused = [result for result in results if result is not None]
    assert all(isinstance(result, QuotaExceeded) for result in refused), refused
    assert "pending-tasks quota" in str(refused[0])
    assert await db[TASKS].count_documents({"customer_id": "cust-a"}) == 5
    # Another customer has a quota of its own.
    await add(tasks, "cust-b")

    # A task that leaves `pending` gives its place back, once.
    stored = await tasks.get(attempts[results.index(None)][0].task_id)
    assert stored is not None
    canceled, raised = domain.cancel_task(stored, T0)
    assert await tasks.save(canceled, stamp_all(raised, T0), T0) is not None
    assert await tasks.save(canceled, stamp_all(raised, T0), T0) is None  # a lost race
    await add(tasks)
    with pytest.raises(QuotaExceeded):
        await add(tasks)
    assert (await tasks.quota("cust-a")).pending_tasks == 5


async def test_the_stored_bytes_quota_refuses_what_would_pass_it(db: AsyncDatabase) -> None:
    record, _ = new_record()
    size = task_bytes(record)
    tasks = TaskRepository(db, quotas=QuotaLimits(pending_tasks=0, stored_bytes=3 * size))
    for _ in range(3):
        await add(tasks)
    with pytest.raises(StorageQuotaExceeded, match="stored-bytes quota of"):
        await add(tasks)
    quota = await tasks.quota("cust-a")
    assert (quota.stored_bytes, quota.stored_bytes_limit) == (3 * size, 3 * size)
    # Bytes stay when a task is finished: only retention frees them.
    stored = await tasks.get(
        str((await db[TASKS].find_one({"customer_id": "cust-a"}, {"_id": 1}) or {})["_id"])
    )
    assert stored is not None
    canceled, raised = domain.cancel_task(stored, T0)
    assert await tasks.save(canceled, stamp_all(raised, T0), T0) is not None
    with pytest.raises(StorageQuotaExceeded):
        await add(tasks)


async def test_a_create_that_stores_nothing_gives_its_reservation_back(db: AsyncDatabase) -> None:
    tasks = TaskRepository(db, quotas=QuotaLimits(pending_tasks=2, stored_bytes=0))
    first = await add(tasks, unique_id="order-1")
    for _ in range(3):  # the customer's retries of one create
        again, events = new_record(unique_id="order-1")
        with pytest.raises(TaskExists):
            await tasks.add(again, events, T0)
    redelivered = domain.create_task(first.task_id, "cust-a", CreateTaskRequest(**SEED), T0)
    with pytest.raises(TaskExists):
        await tasks.add(redelivered[0], [], T0)
    assert (await tasks.quota("cust-a")).pending_tasks == 1
    await add(tasks)


async def test_a_customers_own_quota_replaces_the_default_until_reset(db: AsyncDatabase) -> None:
    tasks = TaskRepository(db, quotas=QuotaLimits(pending_tasks=1, stored_bytes=0))
    await add(tasks)
    with pytest.raises(QuotaExceeded):
        await add(tasks)
    raised = await tasks.set_quota("cust-a", 3, None)
    assert (raised.pending_tasks_limit, raised.pending_tasks_limit_is) == (3, "customer")
    assert (raised.stored_bytes_limit, raised.stored_bytes_limit_is) == (0, "default")
    await add(tasks)
    await add(tasks)
    with pytest.raises(QuotaExceeded):
        await add(tasks)
    unlimited = await tasks.set_quota("cust-a", 0, None)
    assert unlimited.pending_tasks_limit == 0
    await add(tasks)
    reset = await tasks.set_quota("cust-a", "default", None)
    assert (reset.pending_tasks_limit, reset.pending_tasks_limit_is) == (1, "default")
    assert reset.pending_tasks == 4
    with pytest.raises(QuotaExceeded):
        await add(tasks)


async def test_a_counter_starts_from_the_tasks_already_there(db: AsyncDatabase) -> None:
    """A customer whose tasks were stored before quotas existed: its pending tasks count."""
    tasks = TaskRepository(db, quotas=QuotaLimits(pending_tasks=3, stored_bytes=0))
    for _ in range(3):
        await add(tasks)
    await db[USAGE].delete_many({})
    with pytest.raises(QuotaExceeded):
        await add(tasks)


async def test_reconciling_corrects_a_quiet_customers_drift_only(db: AsyncDatabase) -> None:
    defaults = QuotaLimits(pending_tasks=10, stored_bytes=0)
    tasks = TaskRepository(db, quotas=defaults)
    usage = CustomerUsage(db, defaults)
    kept = [await add(tasks, customer) for customer in ("quiet", "busy")]
    # What a crash between a reservation and its insert leaves: too much counted.
    for customer in ("quiet", "busy"):
        await usage.reserve(customer, T0, 1, 1_000)
    now = utcnow()
    await db[USAGE].update_one({"_id": "busy"}, {"$set": {"changed_at": now}})
    quiet = timedelta(minutes=5)

    assert await usage.reconcile(now, quiet) == 1
    size = task_bytes(kept[0])
    assert (
        (await usage.quota("quiet")).pending_tasks,
        (await usage.quota("quiet")).stored_bytes,
    ) == (1, size)
    assert (await usage.quota("busy")).pending_tasks == 2  # changed a moment ago: left alone
    assert await usage.reconcile(now, quiet) == 0  # nothing changed since
    assert await usage.reconcile(now + quiet + timedelta(seconds=1), quiet) == 1
    assert (await usage.quota("busy")).pending_tasks == 1


async def test_retention_deletes_only_finished_published_tasks_that_ended_long_ago(
    db: AsyncDatabase,
) -> None:
    tasks = TaskRepository(db, quotas=QuotaLimits(pending_tasks=0, stored_bytes=0))
    now = utcnow()
    long_ago, lately = now - timedelta(days=40), now - timedelta(days=1)

    async def finished(at: datetime, status: str, published: bool = True) -> str:
        record = await add(tasks)
        if status == "canceled":
            changed, raised = domain.cancel_task(record, at)
        else:
            leased = domain.lease_to(record, "w", at, at + timedelta(hours=1))
            changed, raised = domain.submit_work(leased, "w", "big", at)
        saved = await tasks.save(changed, stamp_all(raised, at), at)
        assert saved is not None
        if published:  # the outbox emptied, as the publisher does
            await db[TASKS].update_one(
                {"_id": ObjectId(record.task_id)},
                {"$set": {"outbox": []}, "$unset": {"outbox_at": ""}},
            )
        return record.task_id

    old = [await finished(long_ago, status) for status in ("completed", "canceled") * 3]
    recent = await finished(lately, "completed")
    unpublished = await finished(long_ago, "canceled", published=False)
    pending = await add(tasks)
    before = (await tasks.quota("cust-a")).stored_bytes

    retention = TaskRetention(db, CustomerUsage(db, QuotaLimits()))
    cutoff = now - timedelta(days=30)
    assert await retention.delete_expired(cutoff, 2, now) == 4  # two of each status
    assert await retention.delete_expired(cutoff, 2, now) == 2
    assert await retention.delete_expired(cutoff, 2, now) == 0

    left = {str(doc["_id"]) async for doc in db[TASKS].find({}, {"_id": 1})}
    assert left == {recent, unpublished, pending.task_id}
    assert not set(old) & left
    assert (await tasks.quota("cust-a")).stored_bytes == before - 6 * task_bytes(pending)


async def test_two_copies_deleting_at_once_give_each_tasks_bytes_back_once(
    db: AsyncDatabase,
) -> None:
    tasks = TaskRepository(db, quotas=QuotaLimits(pending_tasks=0, stored_bytes=0))
    now = utcnow()
    for _ in range(20):
        record = await add(tasks)
        canceled, raised = domain.cancel_task(record, now - timedelta(days=2))
        assert await tasks.save(canceled, stamp_all(raised, now), now) is not None
    await db[TASKS].update_many({}, {"$unset": {"outbox_at": ""}})
    copies = [TaskRetention(db, CustomerUsage(db, QuotaLimits())) for _ in range(2)]
    deleted = await asyncio.gather(
        *(copy.delete_expired(now - timedelta(days=1), 100, now) for copy in copies)
    )
    assert sum(deleted) == 20
    assert (await tasks.quota("cust-a")).stored_bytes == 0
