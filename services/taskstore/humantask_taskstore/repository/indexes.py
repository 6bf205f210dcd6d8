"""The indexes of the task-store's collections, and the filters spelled so that the
planners of both engines (MongoDB, DocumentDB) answer them from the right one. Every
query of a hot path has an index, and `tests/integration/test_task_repository.py`
checks the main ones with `explain`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from humantask_shared.runtime.mongo import Document

from .accounts import CREDENTIALS
from .documents import TASKS

BATCHES = "batches"
PROJECTS = "projects"

# Index names, so that a query can name its index (`hint`) and tests can check it.
LIST_INDEX = "customer_created"
LIST_BY_STATUS_INDEX = "customer_status_created"
UNIQUE_ID_INDEX = "customer_unique_id"
POOL_INDEX = "pool"
LEASE_INDEX = "one_lease_per_worker"
OUTBOX_INDEX = "outbox_at"
# `GET /scale/v1/tasks` (docs/reference/api.md §11): a customer's tasks of a project, of a
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

# Only tasks holding a string in the field are in these partial indexes (and a filter
# spelled with `$type` lets the planner see it is within one): a task without a
# unique_id, or nobody's lease, is not.
_HAS_UNIQUE_ID = {"unique_id": {"$type": "string"}}
HAS_LEASE = {"lease_worker_id": {"$type": "string"}}

PENDING: dict[str, Any] = {"status": "pending"}

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
    # The worker pool, oldest first.
    await tasks.create_index([("status", ASCENDING), ("created_at", ASCENDING)], name=POOL_INDEX)
    # One lease per worker (docs/reference/api.md §6): a second claim by the same worker
    # cannot write its id into another task. An expired lease is cleared before its
    # worker claims.
    await tasks.create_index(
        [("lease_worker_id", ASCENDING)],
        name=LEASE_INDEX,
        unique=True,
        partialFilterExpression=HAS_LEASE,
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
    now: datetime, bottom: datetime, top: datetime, worker_id: str | None = None
) -> dict[str, Any]:
    """Pending, no live lease, and created in [bottom, top) (POOL_INDEX); with a
    `worker_id`, not a task that worker may no longer answer (`excluded_workers`: it
    answered it before an audit rejected the answer)."""
    criteria: dict[str, Any] = {
        "status": "pending",
        "created_at": {"$gte": bottom, "$lt": top},
        "$or": [{"lease_expires_at": None}, {"lease_expires_at": {"$lte": now}}],
    }
    if worker_id is not None:
        criteria["excluded_workers"] = {"$ne": worker_id}
    return criteria


def live_lease(worker_id: str, now: datetime) -> dict[str, Any]:
    """`domain.holds_live_lease` as a filter (LEASE_INDEX)."""
    return {**lease_of(worker_id), "status": "pending", "lease_expires_at": {"$gt": now}}


def unique_id_of(customer_id: str, unique_id: str) -> dict[str, Any]:
    # Spelled with `$type` so that the planner sees it is within UNIQUE_ID_INDEX's filter.
    return {"customer_id": customer_id, "unique_id": {"$type": "string", "$eq": unique_id}}


def lease_of(worker_id: str) -> dict[str, Any]:
    # Spelled with `$type` so that the planner sees it is within LEASE_INDEX's filter.
    return {"lease_worker_id": {"$type": "string", "$eq": worker_id}}


def expired(status: str, before: datetime) -> dict[str, Any]:
    """Tasks of a finished `status` that ended before `before`, their events published
    (RETENTION_INDEXES)."""
    return {
        ENDED[status]: {"$type": "date", "$lt": before},
        "status": status,
        "outbox_at": {"$exists": False},
    }


def expired_leases(now: datetime) -> dict[str, Any]:
    """Pending tasks whose worker's lease ran out and that nobody has claimed since."""
    return {**HAS_LEASE, "lease_expires_at": {"$lte": now}, "status": "pending"}
