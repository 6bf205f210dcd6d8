"""The indexes of the task-store's collections, and the filters spelled so that the
planners of both engines (MongoDB, DocumentDB) answer them from the right one. Every
query of a hot path has an index, and `tests/integration/test_task_repository.py`
checks the main ones with `explain`."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

from humantask_shared.runtime.mongo import Document

from ..domain import PoolKind
from .accounts import CREDENTIALS
from .documents import TASKS
from .pool import ensure_pool_indexes
from .quality import ensure_quality_indexes

BATCHES = "batches"
PROJECTS = "projects"

# Index names, so that a query can name its index (`hint`) and tests can check it.
LIST_INDEX = "customer_created"
LIST_BY_STATUS_INDEX = "customer_status_created"
UNIQUE_ID_INDEX = "customer_unique_id"
POOL_INDEX = "pool"
CLAIM_INDEX = "claim_pool"
LEASE_INDEX = "one_lease_per_worker_across_tasks"
WAITING_INDEX = "waiting_for_answers"
OUTBOX_INDEX = "outbox_at"
# `GET /scale/v1/tasks` (docs/reference/contract.md §11): a customer's tasks of a project, of a
# batch, with a tag, with an audit result, newest first; each holds only the tasks that
# have the field (a partial index), so tasks without any cost them nothing.
PROJECT_INDEX = "customer_project_created"
BATCH_INDEX = "customer_batch_created"
TAGS_INDEX = "customer_tags_created"
REVIEW_INDEX = "customer_review_created"
# A batch's tasks by status: its counts, and whether any is still pending.
BATCH_STATUS_INDEX = "customer_batch_status"
# Projects and batches by name (unique per customer), batches newest first.
PROJECT_NAME_INDEX = "customer_project_name"
BATCH_NAME_INDEX = "customer_batch_name"
BATCH_LIST_INDEX = "customer_batches_created"
# What an index of the one-lease-per-task days was called: dropped at start.
_OLD_LEASE_INDEX = "one_lease_per_worker"

# Only tasks holding a string in the field are in these partial indexes (and a filter
# spelled with `$type` lets the planner see it is within one): a task without a
# unique_id, out of the pool, or leased to nobody, is not.
_HAS_UNIQUE_ID = {"unique_id": {"$type": "string"}}
HAS_LEASE = {"leases.worker_id": {"$type": "string"}}
_IN_POOL = {"pool": {"$type": "string"}}

PENDING: dict[str, Any] = {"status": "pending"}
# Regular tasks with counted answers that wait for more (a gauge; WAITING_INDEX).
WAITING_FOR_ANSWERS: dict[str, Any] = {
    "pool": {"$type": "string", "$eq": "work"},
    "answers.counted": True,
}

# Retention (`retention`): when each finished status ended, and a partial index of the
# tasks that have that time (a filter spelled with `$type`, so the planner sees it).
ENDED = {"completed": "completed_at", "canceled": "canceled_at"}
RETENTION_INDEXES = {status: f"retention_{status}" for status in ENDED}


async def ensure_indexes(db: AsyncDatabase[Document]) -> None:
    """Every index of the task-store's collections (idempotent)."""
    tasks = db[TASKS]
    # GET /v1/tasks: a customer's tasks, newest first, optionally by status.
    await tasks.create_index(
        [("customer_id", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)],
        name=LIST_INDEX,
    )
    await tasks.create_index(
        [("customer_id", ASCENDING), ("status", ASCENDING), ("created_at", DESCENDING)],
        name=LIST_BY_STATUS_INDEX,
    )
    # unique_id makes creation idempotent per customer: the insert itself hits this index.
    await tasks.create_index(
        [("customer_id", ASCENDING), ("unique_id", ASCENDING)],
        name=UNIQUE_ID_INDEX,
        unique=True,
        partialFilterExpression=_HAS_UNIQUE_ID,
    )
    # The pending tasks, oldest first (the gauges, and each start's upgrade of old tasks).
    await tasks.create_index([("status", ASCENDING), ("created_at", ASCENDING)], name=POOL_INDEX)
    # Claims: a customer's regular or gold tasks waiting for workers, oldest first; only
    # pending tasks have a `pool`, so the index holds the pool and nothing else.
    await tasks.create_index(
        [("pool", ASCENDING), ("customer_id", ASCENDING), ("created_at", ASCENDING)],
        name=CLAIM_INDEX,
        partialFilterExpression=_IN_POOL,
    )
    # One lease per worker (docs/reference/contract.md §6) across tasks: a second claim by the
    # same worker cannot write its id into another task's leases (a multikey unique index
    # holds across documents; within one, the claim's filter sees to it). A lease that ran
    # out stays until its worker claims again, which clears it first.
    with contextlib.suppress(OperationFailure):
        await tasks.drop_index(_OLD_LEASE_INDEX)
    await tasks.create_index(
        [("leases.worker_id", ASCENDING)],
        name=LEASE_INDEX,
        unique=True,
        partialFilterExpression=HAS_LEASE,
    )
    # The gauge of tasks waiting for more answers: only those are in it.
    await tasks.create_index(
        [("pool", ASCENDING)],
        name=WAITING_INDEX,
        partialFilterExpression={"pool": {"$type": "string"}, "answers.counted": True},
    )
    # The outbox relay: only tasks holding unpublished events carry `outbox_at`.
    await tasks.create_index([("outbox_at", ASCENDING)], name=OUTBOX_INDEX, sparse=True)
    # Retention finds the tasks that ended long enough ago (a periodic job).
    for status, ended in ENDED.items():
        await tasks.create_index(
            [(ended, ASCENDING)],
            name=RETENTION_INDEXES[status],
            partialFilterExpression={ended: {"$type": "date"}},
        )
    await _ensure_scale_indexes(db)
    # Revoking and rotating find a principal's credentials (operator commands, rare).
    await db[CREDENTIALS].create_index([("principal_id", ASCENDING)], name="principal")
    await ensure_quality_indexes(db)
    await ensure_pool_indexes(db)


async def _ensure_scale_indexes(db: AsyncDatabase[Document]) -> None:
    """The indexes of `/scale/v1`: its task filters, projects and batches."""
    tasks = db[TASKS]
    newest = [("created_at", DESCENDING), ("_id", DESCENDING)]
    for name, field in (
        (PROJECT_INDEX, "project"),
        (BATCH_INDEX, "batch"),
        (TAGS_INDEX, "tags"),
        (REVIEW_INDEX, "customer_review_status"),
    ):
        await tasks.create_index(
            [("customer_id", ASCENDING), (field, ASCENDING), *newest],
            name=name,
            partialFilterExpression=has(field),
        )
    await tasks.create_index(
        [("customer_id", ASCENDING), ("batch", ASCENDING), ("status", ASCENDING)],
        name=BATCH_STATUS_INDEX,
        partialFilterExpression=has("batch"),
    )
    await db[PROJECTS].create_index(
        [("customer_id", ASCENDING), ("name", ASCENDING)], name=PROJECT_NAME_INDEX, unique=True
    )
    batches = db[BATCHES]
    await batches.create_index(
        [("customer_id", ASCENDING), ("name", ASCENDING)], name=BATCH_NAME_INDEX, unique=True
    )
    await batches.create_index(
        [("customer_id", ASCENDING), ("created_at", DESCENDING)], name=BATCH_LIST_INDEX
    )
    await batches.create_index([("outbox_at", ASCENDING)], name=OUTBOX_INDEX, sparse=True)


def has(field: str) -> dict[str, Any]:
    """The partial filter of a field's index: the tasks holding a string there (an array
    of strings, for tags). A query spells its value with `$type` too (`holding`), so
    the planner sees it is within the index."""
    return {field: {"$type": "string"}}


def holding(field: str, condition: dict[str, Any]) -> dict[str, Any]:
    """`{field: condition}`, spelled within `has(field)`'s index."""
    return {field: {"$type": "string", **condition}}


def claimable(
    pool: PoolKind, customer_id: str, worker_id: str, now: datetime, bottom: datetime, top: datetime
) -> dict[str, Any]:
    """`domain.claimable_by` as a filter, for the customer's tasks of one pool created in
    [bottom, top) (CLAIM_INDEX): a free slot (a gold task always has one), and neither an
    answer nor a lease of the worker's."""
    criteria: dict[str, Any] = {
        "pool": {"$type": "string", "$eq": pool},
        "customer_id": customer_id,
        "created_at": {"$gte": bottom, "$lt": top},
        "answers.worker_id": {"$ne": worker_id},
        "leases.worker_id": {"$ne": worker_id},
    }
    if pool == "work":
        criteria["$or"] = [{"free_at": None}, {"free_at": {"$lte": now}}]
    return criteria


def in_pool(pool: PoolKind, customer_id: str) -> dict[str, Any]:
    """The customer's tasks waiting in a pool (CLAIM_INDEX)."""
    return {"pool": {"$type": "string", "$eq": pool}, "customer_id": customer_id}


def _live(now: datetime, keep: dict[str, Any] | None = None) -> dict[str, Any]:
    """The task's leases still live at `now` (and matching `keep`), as an expression."""
    cond: Any = {"$gt": ["$$this.expires_at", now]}
    if keep is not None:
        cond = {"$and": [cond, keep]}
    return {"$filter": {"input": {"$ifNull": ["$leases", []]}, "cond": cond}}


def _slots_stage() -> dict[str, Any]:
    """`domain.next_free_at` as a pipeline stage, on leases already live only: the first
    lease to end once counted answers and leases fill `max_workers` (a regular pending
    task), else null; and the version bumped."""
    counted = {
        "$size": {
            "$filter": {
                "input": {"$ifNull": ["$answers", []]},
                "cond": {"$eq": ["$$this.counted", True]},
            }
        }
    }
    capacity = {"$ifNull": ["$max_workers", {"$ifNull": ["$min_workers", 1]}]}
    full = {
        "$and": [
            {"$eq": ["$pool", "work"]},
            {"$gt": [{"$size": "$leases"}, 0]},
            {"$gte": [{"$add": [counted, {"$size": "$leases"}]}, capacity]},
        ]
    }
    return {
        "$set": {
            "free_at": {"$cond": [full, {"$min": "$leases.expires_at"}, None]},
            "version": {"$add": [{"$ifNull": ["$version", 0]}, 1]},
        }
    }


def lease_update(worker_id: str, now: datetime, expires_at: datetime) -> list[dict[str, Any]]:
    """`domain.lease_to` as an update pipeline: leases that ran out dropped, the worker's
    added, the slots counted again, in the one atomic write of a claim."""
    new = [{"worker_id": worker_id, "expires_at": expires_at}]
    return [{"$set": {"leases": {"$concatArrays": [_live(now), new]}}}, _slots_stage()]


def answered_at(worker_id: str, answers_version: int | None, now: datetime) -> dict[str, Any]:
    """A pending task on which the worker holds a live lease, whose answers are as they
    were at `answers_version` (whatever leases others took since; None: whatever answers
    others gave since, for a gold task, which decides nothing on them)."""
    criteria: dict[str, Any] = {
        "status": "pending",
        "leases": {"$elemMatch": {"worker_id": worker_id, "expires_at": {"$gt": now}}},
    }
    if answers_version is None:
        return criteria
    version: dict[str, Any] = {"answers_version": answers_version}
    if answers_version == 0:  # never answered: the field may not be written yet
        version = {"$or": [version, {"answers_version": {"$exists": False}}]}
    return {**criteria, **version}


def answer_update(
    fields: dict[str, Any],
    worker_id: str,
    now: datetime,
    outbox: list[str],
    pending: bool,
    appended: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """An answer's write as an update pipeline: the fields it decided (as literals), or
    only the answer `appended` to those others gave meanwhile (a gold task); the worker's
    lease dropped (every lease, once the task is not pending), the events added to the
    outbox, the slots counted again on the leases as they are now."""
    other = {"$ne": ["$$this.worker_id", worker_id]}
    changed: dict[str, Any] = {name: {"$literal": value} for name, value in fields.items()}
    if appended is not None:
        changed["answers"] = {
            "$concatArrays": [{"$ifNull": ["$answers", []]}, {"$literal": [appended]}]
        }
        changed["answers_version"] = {"$add": [{"$ifNull": ["$answers_version", 0]}, 1]}
    changed["leases"] = _live(now, other) if pending else {"$literal": []}
    if outbox:
        changed["outbox"] = {"$concatArrays": [{"$ifNull": ["$outbox", []]}, {"$literal": outbox}]}
        changed["outbox_at"] = {"$ifNull": ["$outbox_at", {"$literal": now}]}
    return [{"$set": changed}, _slots_stage()]


def drop_lease_update(worker_id: str, now: datetime) -> list[dict[str, Any]]:
    """The worker's lease (given back, or run out) dropped from a task, with the leases
    that ran out, and the slots counted again."""
    other = {"$ne": ["$$this.worker_id", worker_id]}
    return [{"$set": {"leases": _live(now, other)}}, _slots_stage()]


def held_by(worker_id: str) -> dict[str, Any]:
    """The task the worker holds a lease on, live or run out (LEASE_INDEX: one at most)."""
    return {"leases.worker_id": {"$type": "string", "$eq": worker_id}}


def live_lease_of(worker_id: str, now: datetime) -> dict[str, Any]:
    """A pending task on which the worker holds a live lease."""
    return {
        "status": "pending",
        "leases": {"$elemMatch": {"worker_id": worker_id, "expires_at": {"$gt": now}}},
    }


def ran_out(worker_id: str, now: datetime) -> dict[str, Any]:
    """A task holding the worker's lease, run out at `now` (or on a task that is not
    pending any more)."""
    return {
        **held_by(worker_id),
        "$or": [
            {"leases": {"$elemMatch": {"worker_id": worker_id, "expires_at": {"$lte": now}}}},
            {"status": {"$ne": "pending"}},
        ],
    }


def unique_id_of(customer_id: str, unique_id: str) -> dict[str, Any]:
    # Spelled with `$type` so that the planner sees it is within UNIQUE_ID_INDEX's filter.
    return {"customer_id": customer_id, "unique_id": {"$type": "string", "$eq": unique_id}}


def expired(status: str, before: datetime) -> dict[str, Any]:
    """Tasks of a finished `status` that ended before `before`, their events published
    (RETENTION_INDEXES)."""
    return {
        ENDED[status]: {"$type": "date", "$lt": before},
        "status": status,
        "outbox_at": {"$exists": False},
    }


def expired_leases(now: datetime) -> dict[str, Any]:
    """Pending tasks holding a lease that ran out and that nobody has claimed since."""
    return {
        **HAS_LEASE,
        "leases": {"$elemMatch": {"expires_at": {"$lte": now}}},
        "status": "pending",
    }
