"""Metrics that need the real database or network: the task-store's gauges (outbox backlog
and the age of its oldest event, the pending pool and its oldest task, expired leases,
tasks waiting for more answers, blocked workers), read through indexes; and why a
callback attempt failed, as the sender reports it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest
from bson import ObjectId
from prometheus_client import REGISTRY
from pymongo.asynchronous.database import AsyncDatabase

from humantask_notifier.sender import CallbackSender, create_session
from humantask_shared.core.models import CreateTaskRequest, new_task_id
from humantask_shared.core.timeutil import format_timestamp, utcnow
from humantask_shared.runtime.publishing import stamp_all
from humantask_taskstore import domain, gauges, quality
from humantask_taskstore.repository import (
    OutboxStore,
    QualityRepository,
    TaskRepository,
    ensure_indexes,
)
from humantask_taskstore.repository.documents import TASKS
from humantask_taskstore.repository.indexes import (
    LEASE_INDEX,
    OUTBOX_INDEX,
    PENDING,
    POOL_INDEX,
    WAITING_FOR_ANSWERS,
    WAITING_INDEX,
    expired_leases,
)
from humantask_taskstore.repository.outbox_store import IN_OUTBOX, first_event_time
from tests.support.services import free_port

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


async def add_task(tasks: TaskRepository, age: timedelta) -> domain.TaskRecord:
    """A pending task created `age` ago, its task.created event still in its outbox."""
    created = utcnow() - age
    record, events = domain.create_task(
        new_task_id(), "cust-a", CreateTaskRequest.model_validate(SEED), created
    )
    await tasks.add(record, stamp_all(events, created), created)
    return record


async def refresh(db: AsyncDatabase, now: datetime | None = None) -> gauges.TaskGauges:
    return await gauges.refresh_task_gauges(
        TaskRepository(db), OutboxStore(db), QualityRepository(db), now
    )


async def lease(
    tasks: TaskRepository, worker: str, now: datetime, until: datetime
) -> domain.TaskRecord | None:
    held = await tasks.held_lease(worker, now)
    return held or await tasks.lease_oldest(worker, "cust-a", "work", now, until)


def metric(name: str) -> float | None:
    return REGISTRY.get_sample_value(name)


async def test_the_gauges_read_zero_on_an_empty_collection(db: AsyncDatabase) -> None:
    read = await refresh(db)
    assert read == gauges.TaskGauges(0, 0.0, 0, 0.0, 0, 0, 0)
    assert metric("humantask_outbox_backlog_tasks") == 0
    assert metric("humantask_oldest_pending_task_age_seconds") == 0


async def test_the_outbox_backlog_and_its_oldest_event(db: AsyncDatabase) -> None:
    tasks, outboxes = TaskRepository(db), OutboxStore(db)
    old = await add_task(tasks, timedelta(minutes=10))
    await add_task(tasks, timedelta(minutes=1))
    now = utcnow()
    # Its event happened ten minutes ago, and the relay retried it a moment ago (which
    # moves outbox_at): the age still comes from the event.
    [event] = await outboxes.events(old.task_id)
    aged = {**orjson.loads(event), "occurred_at": format_timestamp(now - timedelta(minutes=10))}
    await db[TASKS].update_one(
        {"_id": ObjectId(old.task_id)},
        {"$set": {"outbox": [orjson.dumps(aged).decode()], "outbox_at": now}},
    )

    read = await refresh(db, now)
    assert read.outbox_backlog_tasks == 2
    assert 600 <= read.outbox_oldest_event_age_seconds < 660
    assert metric("humantask_outbox_backlog_tasks") == 2
    assert (
        metric("humantask_outbox_oldest_event_age_seconds") == read.outbox_oldest_event_age_seconds
    )

    # Published: both leave the outbox, the gauges go back to zero.
    async for doc in db[TASKS].find({}, {"_id": 1}):
        await outboxes.remove([(str(doc["_id"]), await outboxes.events(str(doc["_id"])))])
    read = await refresh(db)
    assert (read.outbox_backlog_tasks, read.outbox_oldest_event_age_seconds) == (0, 0.0)
    assert metric("humantask_outbox_backlog_tasks") == 0


async def test_the_oldest_pending_task_and_expired_leases(db: AsyncDatabase) -> None:
    tasks = TaskRepository(db)
    oldest = await add_task(tasks, timedelta(hours=2))
    await add_task(tasks, timedelta(minutes=5))
    now = utcnow()
    read = await refresh(db, now)
    assert read.pending_tasks == 2
    assert 7200 <= read.oldest_pending_task_age_seconds < 7260
    assert metric("humantask_pending_tasks") == 2
    assert (
        metric("humantask_oldest_pending_task_age_seconds") == read.oldest_pending_task_age_seconds
    )
    assert read.expired_leases == 0

    # A worker claims the oldest, and its lease runs out: an expired lease, still pending.
    then = now - timedelta(minutes=11)
    claimed = await lease(tasks, "alice", then, now - timedelta(minutes=1))
    assert claimed is not None and claimed.task_id == oldest.task_id
    assert await lease(tasks, "bob", then, now + timedelta(minutes=10)) is not None  # live
    read = await refresh(db, now)
    assert read.expired_leases == 1
    assert metric("humantask_expired_leases") == 1
    # Claimed again, it is no longer an expired lease.
    assert await lease(tasks, "carol", now, now + timedelta(minutes=10)) is not None
    assert (await refresh(db, now)).expired_leases == 0
    assert metric("humantask_expired_leases") == 0


async def test_tasks_waiting_for_more_answers_and_blocked_workers(db: AsyncDatabase) -> None:
    tasks, qualities = TaskRepository(db), QualityRepository(db)
    now = utcnow()
    record, events = domain.create_task(
        new_task_id(),
        "cust-a",
        CreateTaskRequest.model_validate({**SEED, "max_workers": 3, "min_workers": 3}),
        now,
    )
    await tasks.add(record, stamp_all(events, now), now)
    assert (await refresh(db, now)).tasks_waiting_for_answers == 0
    leased = await lease(tasks, "alice", now, now + timedelta(minutes=10))
    assert leased is not None
    answered, raised = domain.submit_work(leased, "alice", "big", now)
    assert await tasks.save_answer(leased, answered, "alice", stamp_all(raised, now), now)
    await qualities.apply_worker(
        "cust-a",
        "bob",
        "answer:t",
        quality.Increments(workers={"bob": quality.WorkerIncrement(answers=1)}),
    )
    await qualities.block("cust-a", "bob", now)
    read = await refresh(db, now)
    assert (read.tasks_waiting_for_answers, read.blocked_workers) == (1, 1)
    assert metric("humantask_tasks_waiting_for_answers") == 1
    assert metric("humantask_blocked_workers") == 1


def _index_names(plan: Any) -> set[str]:
    if isinstance(plan, dict):
        found = {plan[key] for key in ("indexName", "Index Name") if key in plan}
        return found.union(*(_index_names(value) for value in plan.values()))
    if isinstance(plan, list):
        return set().union(*(_index_names(value) for value in plan))
    return set()


async def test_the_gauges_queries_use_indexes(db: AsyncDatabase) -> None:
    tasks, outboxes = TaskRepository(db), OutboxStore(db)
    for minutes in range(300):  # enough for a planner to prefer an index to a scan
        record = await add_task(tasks, timedelta(minutes=minutes))
        if minutes % 3:
            await outboxes.remove([(record.task_id, await outboxes.events(record.task_id))])
    now = utcnow()
    queries = {
        OUTBOX_INDEX: ({"filter": IN_OUTBOX}),
        POOL_INDEX: ({"filter": PENDING, "sort": {"created_at": 1}, "limit": 1}),
        LEASE_INDEX: ({"filter": expired_leases(now)}),
        WAITING_INDEX: ({"filter": WAITING_FOR_ANSWERS}),
    }
    for index, find in queries.items():
        explained = await db.command("explain", {"find": TASKS, **find}, verbosity="queryPlanner")
        plan = explained["queryPlanner"]
        assert "COLLSCAN" not in repr(plan) and "Seq Scan" not in repr(plan), (index, plan)
        # Expired leases are pending tasks: the pool's index serves too.
        usable = {index, POOL_INDEX} if index == LEASE_INDEX else {index}
        assert usable & _index_names(plan), (index, plan)


async def test_a_failed_attempt_says_why() -> None:
    """The reason label of `humantask_callback_attempts_total`, from the sender itself."""

    async def post(url: str, allow_private: bool) -> str:
        session = create_session(2, allow_private)
        try:
            return (await CallbackSender(session, 2, allow_private).post(url, b"x", {})).kind
        finally:
            await session.close()

    assert await post("ftp://example.com/hook", allow_private=False) == "invalid_url"
    assert await post("http://10.0.0.1/hook", allow_private=False) == "refused_address"
    closed = free_port()  # nothing listens there
    assert await post(f"http://127.0.0.1:{closed}/hook", allow_private=True) == "connect"


def test_outbox_scan_reads_the_first_event_only() -> None:
    doc = {"outbox": [orjson.dumps({"occurred_at": "2024-05-01T12:00:00.000Z"}).decode()]}
    assert first_event_time(doc).isoformat() == "2024-05-01T12:00:00+00:00"
    assert first_event_time({"outbox": ["not json"]}) is None
