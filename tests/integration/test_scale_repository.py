"""`/scale/v1`'s storage against a real server (FerretDB 2 on DocumentDB, or MongoDB):
every query of its task list, counts, projects and batches reads an index (`explain`),
a batch completes once when its last tasks settle at the same moment in two
task-stores, and the list pages through wide spans of creation times. What the
adapters promise besides is held to their fakes in test_fake_contracts.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from humantask_shared.core.messages.commands import ClaimWork, SubmitWork
from humantask_shared.core.messages.events import BatchCompleted, TaskCompleted
from humantask_shared.core.messages.scale_commands import (
    AuditTask,
    CreateProject,
    CreateScaleTask,
)
from humantask_shared.core.models import CreateTaskRequest, TaskResponse, new_task_id
from humantask_shared.core.scale_models import (
    AuditRequest,
    BatchCounts,
    CreateBatchRequest,
    CreateProjectRequest,
    ProjectParams,
    ScaleTaskListQuery,
    TaskPlacement,
)
from humantask_shared.core.timeutil import utcnow
from humantask_shared.runtime.publishing import stamp_all
from humantask_taskstore import (
    batch_handlers,
    batches,
    domain,
    project_handlers,
    scale_handlers,
    work_handlers,
)
from humantask_taskstore.cursors import CursorSigner
from humantask_taskstore.ports import Dependencies
from humantask_taskstore.repository import (
    AccountRepository,
    BatchRepository,
    PoolRepository,
    ProjectRepository,
    QualityRepository,
    TaskRepository,
    TaskSearch,
    ensure_indexes,
    indexes,
)
from humantask_taskstore.repository.documents import TASKS
from humantask_taskstore.repository.retention import TaskRetention
from humantask_taskstore.repository.search import search_criteria
from humantask_taskstore.repository.usage import CustomerUsage, QuotaLimits
from tests.support.fakes import RecordingAnnouncer, RecordingOutbox, RecordingPublisher

from .test_task_repository import _explain_find, _index_names, _scans_collection

SEED: dict[str, Any] = {
    "callback_url": "http://www.example.com/test_callback",
    "instruction": "Would you say this item is big or small?",
    "attachment_type": "text",
    "attachment": "car",
    "categories": ["big", "small"],
}
T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
async def db(fresh_database: Any) -> AsyncIterator[AsyncDatabase]:
    async for database in fresh_database(ensure_indexes):
        yield database


async def add(
    tasks: TaskRepository,
    customer_id: str = "cust-a",
    created_at: datetime = T0,
    unique_id: str | None = None,
    **placement: Any,
) -> domain.TaskRecord:
    request = CreateTaskRequest.model_validate({**SEED, "unique_id": unique_id})
    record, events = domain.create_task(
        new_task_id(),
        customer_id,
        request,
        created_at,
        placement=TaskPlacement.model_validate(placement),
    )
    await tasks.add(record, stamp_all(events, created_at), created_at)
    return record


@pytest.fixture
async def crowded(db: AsyncDatabase) -> None:
    """Enough tasks of several customers, projects, batches, tags and audits for a
    planner to prefer an index to a scan."""
    tasks = TaskRepository(db)
    for i in range(300):
        record = await add(
            tasks,
            f"cust-{i % 10}",
            T0 + timedelta(seconds=i),
            unique_id=f"u-{i}",
            project=f"p-{i % 7}",
            batch=f"b-{i % 13}",
            tags=[f"t-{i % 5}", f"t-{i % 3}"],
        )
        if i % 4 == 0:
            done = replace(
                record,
                status="completed",
                completed_at=record.created_at + timedelta(minutes=1),
                response=TaskResponse(category="big"),
                customer_review_status="accepted" if i % 8 == 0 else None,
            )
            assert await tasks.save(done, [], T0) is not None


async def _explain(
    db: AsyncDatabase, collection: str, criteria: dict[str, Any], sort: dict[str, int], hint: str
) -> dict[str, Any]:
    find: dict[str, Any] = {"find": collection, "filter": criteria, "limit": 101, "hint": hint}
    if sort:
        find["sort"] = sort
    explained = await db.command("explain", find, verbosity="queryPlanner")
    plan: dict[str, Any] = explained["queryPlanner"]
    return plan


async def test_every_query_of_the_scale_list_reads_its_index(
    db: AsyncDatabase, crowded: None
) -> None:
    """Each filter of `GET /scale/v1/tasks`, as the repository spells it with a page's
    span, reads the index the repository names (DocumentDB plans show the index scans
    by their MongoDB names)."""
    now = T0 + timedelta(days=1)
    span = {"created_at": {"$gte": T0, "$lt": now}}
    queries = {
        indexes.PROJECT_INDEX: ScaleTaskListQuery(project="p-3"),
        indexes.BATCH_INDEX: ScaleTaskListQuery(batch="b-3", status="pending"),
        indexes.TAGS_INDEX: ScaleTaskListQuery(tags=["t-1", "t-2"]),
        indexes.REVIEW_INDEX: ScaleTaskListQuery(customer_review_status=["accepted"]),
        indexes.LIST_BY_STATUS_INDEX: ScaleTaskListQuery(completed_after=T0),
        indexes.UNIQUE_ID_INDEX: ScaleTaskListQuery(unique_id=["u-3", "u-13"]),
        indexes.LIST_INDEX: ScaleTaskListQuery(type="categorization"),
    }
    for expected, query in queries.items():
        criteria, index = search_criteria("cust-3", query)
        assert index == expected, (query, index)
        window = {} if query.unique_id else span
        plan = await _explain_find(
            db, criteria | window, [("created_at", -1), ("_id", -1)], 101, hint=index
        )
        assert not _scans_collection(plan), (index, plan)
        assert index in _index_names(plan), (index, plan)


async def test_a_batchs_counts_and_its_pending_task_read_its_index(
    db: AsyncDatabase, crowded: None
) -> None:
    criteria = {
        "customer_id": "cust-3",
        **indexes.holding("batch", {"$eq": "b-3"}),
        "status": "pending",
    }
    found = await _explain_find(db, criteria, [], 1)
    counted = await db.command("explain", {"count": TASKS, "query": criteria})
    for plan in (found, counted):
        assert not _scans_collection(plan), plan
        assert indexes.BATCH_STATUS_INDEX in _index_names(plan), plan


async def test_projects_and_batches_are_found_by_name_and_listed_by_index(
    db: AsyncDatabase,
) -> None:
    batch_repository = BatchRepository(db)
    for n in range(200):
        request = CreateBatchRequest(project="p", name=f"b{n}")
        await batch_repository.add(
            batches.new_batch(new_task_id(), f"cust-{n % 10}", request, T0 + timedelta(seconds=n))
        )
    by_name = await _explain(
        db, indexes.BATCHES, {"customer_id": "cust-3", "name": "b13"}, {}, indexes.BATCH_NAME_INDEX
    )
    newest = await _explain(
        db,
        indexes.BATCHES,
        {"customer_id": "cust-3"},
        {"created_at": -1, "_id": -1},
        indexes.BATCH_LIST_INDEX,
    )
    relay = await _explain(
        db, indexes.BATCHES, {"outbox_at": {"$lt": T0}}, {}, indexes.OUTBOX_INDEX
    )
    project = await _explain(
        db, indexes.PROJECTS, {"customer_id": "c", "name": "p"}, {}, indexes.PROJECT_NAME_INDEX
    )
    for index, plan in (
        (indexes.BATCH_NAME_INDEX, by_name),
        (indexes.BATCH_LIST_INDEX, newest),
        (indexes.OUTBOX_INDEX, relay),
        (indexes.PROJECT_NAME_INDEX, project),
    ):
        assert not _scans_collection(plan), (index, plan)
        assert index in _index_names(plan), (index, plan)


def _deps(db: AsyncDatabase, batch_outbox: RecordingOutbox) -> Dependencies:
    return Dependencies(
        pool=PoolRepository(db),
        quality=QualityRepository(db),
        publish=RecordingPublisher(),
        tasks=TaskRepository(db),
        accounts=AccountRepository(db),
        outbox=RecordingOutbox(),
        announce=RecordingAnnouncer(),
        work_lease_seconds=600,
        search=TaskSearch(db),
        projects=ProjectRepository(db),
        batches=BatchRepository(db),
        batch_outbox=batch_outbox,
        list_tokens=CursorSigner(bytes(32)),
    )


async def test_a_batch_settled_by_two_task_stores_at_once_completes_once(
    db: AsyncDatabase,
) -> None:
    """Both see no pending task and try the conditional write: one wins, one event."""
    batch_repository = BatchRepository(db)
    batch = batches.new_batch(
        new_task_id(), "cust-a", CreateBatchRequest(project="p", name="b"), T0
    )
    await batch_repository.add(batch)
    record = await add(TaskRepository(db), batch="b", project="p")
    finalized, raised = batches.finalize(batch, T0)
    assert await batch_repository.save(finalized, stamp_all(raised, T0), T0) is not None
    canceled, _ = domain.cancel_task(record, utcnow())
    assert await TaskRepository(db).save(canceled, [], T0) is not None

    outboxes = [RecordingOutbox() for _ in range(8)]
    await asyncio.gather(
        *(batch_handlers.settle_batch(_deps(db, outbox), "cust-a", "b") for outbox in outboxes)
    )
    completions = [
        stamped.event
        for outbox in outboxes
        for _, events in outbox.published
        for stamped in events
        if isinstance(stamped.event, BatchCompleted)
    ]
    assert len(completions) == 1
    stored = await batch_repository.get("cust-a", "b")
    assert stored is not None and stored.status == "completed"
    assert stored.counts is not None and stored.counts.canceled == 1
    doc = await db[indexes.BATCHES].find_one({"name": "b"})
    assert doc is not None
    assert [entry for entry in doc["outbox"] if "batch.completed" in entry]


async def test_the_list_pages_a_project_spread_over_years_once_each(db: AsyncDatabase) -> None:
    """Dense and sparse spans alike: each task once, newest first, with the cursor
    carried as the SDK carries `next_token`."""
    tasks = TaskRepository(db)
    moments = [T0 + timedelta(seconds=n) for n in range(30)] + [
        T0 - timedelta(days=400 * n) for n in range(1, 6)
    ]
    made = [await add(tasks, created_at=moment, project="p") for moment in moments]
    await add(tasks, created_at=T0, project="other")
    search = TaskSearch(db)
    query = ScaleTaskListQuery(project="p", limit=7)
    seen: list[str] = []
    cursor = None
    total = None
    while True:
        records, cursor, counted = await search.page(
            "cust-a", query, utcnow(), cursor, count=not seen
        )
        total = total if seen else counted
        seen += [record.task_id for record in records]
        if cursor is None:
            break
    newest_first = sorted(made, key=lambda r: (r.created_at, r.task_id), reverse=True)
    assert seen == [record.task_id for record in newest_first]
    assert total == len(made)


async def test_retention_deletes_a_batchs_finished_tasks_and_the_batch_stays(
    db: AsyncDatabase,
) -> None:
    """A batch outlives its tasks (docs/operations/hardening.md, "Retention"): retention
    deletes the finished ones, the batch stays as it completed, and its counts count the
    tasks still stored."""
    tasks, batch_repository = TaskRepository(db), BatchRepository(db)
    batch = batches.new_batch(
        new_task_id(), "cust-a", CreateBatchRequest(project="p", name="b"), T0
    )
    await batch_repository.add(batch)
    finished = [await add(tasks, batch="b", project="p") for _ in range(2)]
    await add(tasks, batch="b", project="p")  # pending: never deleted
    for record in finished:
        canceled, _ = domain.cancel_task(record, T0)
        assert await tasks.save(canceled, [], T0) is not None
    await db[TASKS].update_many({}, {"$set": {"outbox": []}, "$unset": {"outbox_at": ""}})
    search = TaskSearch(db)
    assert await search.batch_counts("cust-a", "b") == BatchCounts(pending=1, canceled=2)

    retention = TaskRetention(db, CustomerUsage(db, QuotaLimits()))
    assert await retention.delete_expired(T0 + timedelta(days=1), 10, T0 + timedelta(days=2)) == 2
    assert await search.batch_counts("cust-a", "b") == BatchCounts(pending=1)
    assert await batch_repository.get("cust-a", "b") == batch


async def test_an_audit_reopens_a_three_worker_task_for_three_new_workers(
    db: AsyncDatabase,
) -> None:
    """Against the real repositories (the claim's filter, the answers' conditional
    writes, the fair pool): after a rejection the three workers who answered are never
    served it again, three others complete it, and its customer waits in the pool again
    though the pool had let it go when the task completed."""
    deps = _deps(db, RecordingOutbox())
    project = CreateProjectRequest(
        type="categorization", name="three", params=ProjectParams(min_workers=3, max_workers=3)
    )
    await project_handlers.create_project(
        CreateProject(customer_id="cust-a", request=project), deps
    )
    created = await scale_handlers.create_scale_task(
        CreateScaleTask(
            customer_id="cust-a", fields=SEED, placement=TaskPlacement(project="three")
        ),
        deps,
    )

    async def answer(worker_id: str, category: str) -> str | None:
        claimed = await work_handlers.claim_work(ClaimWork(worker_id=worker_id), deps)
        if claimed.item is None:
            return None
        submit = SubmitWork(worker_id=worker_id, task_id=claimed.item.task_id, category=category)
        await work_handlers.submit_work(submit, deps)
        return claimed.item.task_id

    for worker in ("w1", "w2", "w3"):
        assert await answer(worker, "big") == created.task_id
    waiting = await deps.pool.customer("cust-a")
    assert waiting is not None and await deps.pool.set_idle(waiting)  # as the quality queue does

    audit = AuditTask(
        customer_id="cust-a", task_id=created.task_id, audit=AuditRequest(accepted=False)
    )
    rejected = await scale_handlers.audit_task(audit, deps)
    assert rejected.status == "pending"
    assert await deps.pool.customer("cust-a") is not None  # waiting again
    for worker in ("w1", "w2", "w3"):
        assert await answer(worker, "small") is None
    for worker in ("w4", "w5", "w6"):
        assert await answer(worker, "small") == created.task_id
    doc = await db[TASKS].find_one({"customer_id": "cust-a"})
    assert doc is not None and doc["status"] == "completed" and doc["reopened"] == 1
    assert [(a["worker_id"], a["counted"]) for a in doc["answers"]] == [
        ("w1", False),
        ("w2", False),
        ("w3", False),
        ("w4", True),
        ("w5", True),
        ("w6", True),
    ]
    assert doc["response"]["category"] == "small"
    completed = [
        stamped.event
        for _, events in deps.outbox.published  # type: ignore[attr-defined]
        for stamped in events
        if isinstance(stamped.event, TaskCompleted)
    ]
    assert [event.completion for event in completed] == [1, 2]
