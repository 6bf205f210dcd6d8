"""MongoDB adapter: tasks (with their outbox), unique ids, customers and credentials.

FerretDB v1 is a supported backend, so this sticks to what it implements: no partial or
sparse indexes, no transactions. Anything that must be atomic lives in one document.

FerretDB v1 also runs a conditional update (`findAndModify`, `update` with a filter) as
"read, then write the whole document": two writers can both match the same version and
the second overwrites the first. So a changed task is written only by the writer that
first *reserved* its next version: an insert into `task_versions` keyed by
`<task_id>:<version>`, which both MongoDB and FerretDB make atomic through the unique
`_id`. The version check in the update stays, and is all MongoDB itself would need.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from humantask_shared.messages.commands import Principal, Role
from humantask_shared.messages.events import Event
from humantask_shared.models import TaskListQuery, TaskParams, TaskResponse
from humantask_shared.timeutil import as_utc

from .domain import TaskRecord

TASKS = "tasks"
TASK_VERSIONS = "task_versions"
UNIQUE_IDS = "task_unique_ids"
CUSTOMERS = "customers"
WORKERS = "workers"
CREDENTIALS = "credentials"


async def ensure_indexes(db: AsyncDatabase) -> None:
    tasks = db[TASKS]
    # GET /v1/tasks: a customer's tasks, newest first, optionally by status or unique_id.
    await tasks.create_index([("customer_id", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)])
    await tasks.create_index([("customer_id", ASCENDING), ("status", ASCENDING), ("created_at", DESCENDING)])
    await tasks.create_index([("customer_id", ASCENDING), ("unique_id", ASCENDING)])
    # The worker pool: pending tasks, oldest first; and the lease a worker holds.
    await tasks.create_index([("status", ASCENDING), ("created_at", ASCENDING)])
    await tasks.create_index([("lease_worker_id", ASCENDING), ("status", ASCENDING)])
    await tasks.create_index([("outbox_pending", ASCENDING), ("outbox_at", ASCENDING)])
    # Customers' unique_id records are keyed by `_id` ("<customer>:<unique_id>"), which is
    # the unique index; a partial unique index on tasks would need what FerretDB lacks.


def _record_to_document(record: TaskRecord) -> dict[str, Any]:
    return {
        "_id": ObjectId(record.task_id),
        "customer_id": record.customer_id,
        "created_at": record.created_at,
        "callback_url": record.callback_url,
        "callback_format": record.callback_format,
        "instruction": record.instruction,
        "params": record.params.model_dump(),
        "status": record.status,
        # Kept opaque: customer keys may hold '.' or '$', which MongoDB-likes reject.
        "metadata_json": None if record.metadata is None else orjson.dumps(record.metadata).decode(),
        "unique_id": record.unique_id,
        "completed_at": record.completed_at,
        "canceled_at": record.canceled_at,
        "response": None if record.response is None else record.response.model_dump(),
        "lease_worker_id": record.lease_worker_id,
        "lease_expires_at": record.lease_expires_at,
        "completed_by": record.completed_by,
        "version": record.version,
        "request_id": record.request_id,
    }


def _document_to_record(doc: dict[str, Any]) -> TaskRecord:
    return TaskRecord(
        task_id=str(doc["_id"]),
        customer_id=doc["customer_id"],
        created_at=as_utc(doc["created_at"]),
        callback_url=doc["callback_url"],
        callback_format=doc.get("callback_format", "form"),
        instruction=doc["instruction"],
        params=TaskParams.model_validate(doc["params"]),
        status=doc["status"],
        metadata=None if doc.get("metadata_json") is None else orjson.loads(doc["metadata_json"]),
        unique_id=doc.get("unique_id"),
        completed_at=as_utc(doc["completed_at"]) if doc.get("completed_at") else None,
        canceled_at=as_utc(doc["canceled_at"]) if doc.get("canceled_at") else None,
        response=TaskResponse.model_validate(doc["response"]) if doc.get("response") else None,
        lease_worker_id=doc.get("lease_worker_id"),
        lease_expires_at=as_utc(doc["lease_expires_at"]) if doc.get("lease_expires_at") else None,
        completed_by=doc.get("completed_by"),
        version=doc.get("version", 0),
        request_id=doc.get("request_id"),
    )


def serialize_event(event: Event) -> str:
    """The outbox holds events as the JSON text that will be published, byte for byte;
    the task in it is the customer's view, without the fields that do not apply."""
    return event.model_dump_json(exclude_none=True)


def _serialize_events(events: list[Event]) -> list[str]:
    return [serialize_event(event) for event in events]


@dataclass(frozen=True)
class UniqueIdClaim:
    task_id: str
    fingerprint: str


@dataclass(frozen=True)
class PendingOutbox:
    task_id: str
    events: list[str]


# A version reserved by a writer that never wrote it (it crashed in between) stops
# blocking the task after this long: the next writer skips that version.
ABANDONED_RESERVATION = timedelta(seconds=30)
MAX_SKIPPED_VERSIONS = 5


class TaskRepository:
    def __init__(self, db: AsyncDatabase) -> None:
        self._tasks = db[TASKS]
        self._versions = db[TASK_VERSIONS]
        self._unique_ids = db[UNIQUE_IDS]

    async def get(self, task_id: str, customer_id: str | None = None) -> TaskRecord | None:
        """The task, if it exists (and belongs to `customer_id`, when given)."""
        if not ObjectId.is_valid(task_id):
            return None
        # By `_id` alone, the owner checked here: FerretDB turns only a bare `_id` filter
        # into a key lookup and scans the collection for anything more.
        doc = await self._tasks.find_one({"_id": ObjectId(task_id)})
        if doc is None or (customer_id is not None and doc["customer_id"] != customer_id):
            return None
        return _document_to_record(doc)

    async def add(self, record: TaskRecord, events: list[Event], now: datetime) -> bool:
        """Insert a new task with its events in its outbox; False if it exists already."""
        document = _record_to_document(record) | {
            "outbox": _serialize_events(events),
            "outbox_pending": bool(events),
            "outbox_at": now,
        }
        try:
            await self._tasks.insert_one(document)
        except DuplicateKeyError:
            return False
        return True

    async def save(
        self, record: TaskRecord, events: list[Event], now: datetime, writer: str | None = None
    ) -> TaskRecord | None:
        """Write a changed task if nobody else changed it since it was read (its version);
        None when another writer got there first. A `writer` that retries (same value)
        may reuse the version it reserved on an earlier try whose write did not land."""
        version = await self._reserve_next_version(record, now, writer)
        if version is None:
            return None
        changed = _record_to_document(record)
        del changed["_id"]
        changed["version"] = version
        update: dict[str, Any] = {"$set": changed}
        if events:
            update["$push"] = {"outbox": {"$each": _serialize_events(events)}}
            changed |= {"outbox_pending": True, "outbox_at": now}
        doc = await self._tasks.find_one_and_update(
            {"_id": ObjectId(record.task_id), "version": record.version},
            update,
            return_document=ReturnDocument.AFTER,
        )
        return None if doc is None else _document_to_record(doc)

    async def _reserve_next_version(
        self, record: TaskRecord, now: datetime, writer: str | None
    ) -> int | None:
        """The version this writer alone may write next, or None if another has it."""
        version = record.version + 1
        for _ in range(MAX_SKIPPED_VERSIONS):
            key = f"{record.task_id}:{version}"
            try:
                await self._versions.insert_one({"_id": key, "reserved_at": now, "writer": writer})
                return version
            except DuplicateKeyError:
                taken = await self._versions.find_one({"_id": key})
            if taken is not None and writer is not None and taken.get("writer") == writer:
                return version  # ours, from a try whose write missed: the task is still at it
            if taken is None or as_utc(taken["reserved_at"]) > now - ABANDONED_RESERVATION:
                return None
            version += 1
        return None

    # --- the worker pool ----------------------------------------------------------------

    async def live_lease_of(self, worker_id: str, now: datetime) -> TaskRecord | None:
        """The pending task `worker_id` holds a live lease on, if any."""
        doc = await self._tasks.find_one(
            {"lease_worker_id": worker_id, "status": "pending", "lease_expires_at": {"$gt": now}}
        )
        return None if doc is None else _document_to_record(doc)

    async def claimable(self, now: datetime, limit: int) -> list[TaskRecord]:
        """The oldest pending tasks nobody holds a live lease on (`domain.is_claimable`)."""
        cursor = (
            self._tasks.find({
                "status": "pending",
                "$or": [{"lease_expires_at": None}, {"lease_expires_at": {"$lte": now}}],
            })
            .sort([("created_at", ASCENDING), ("_id", ASCENDING)])
            .limit(limit)
        )
        return [_document_to_record(doc) async for doc in cursor]

    async def list(self, customer_id: str, query: TaskListQuery) -> tuple[list[TaskRecord], bool]:
        """A page of the customer's tasks, newest first, and whether more follow."""
        criteria: dict[str, Any] = {"customer_id": customer_id}
        for name in ("status", "type", "unique_id"):
            value = getattr(query, name)
            if value is not None and name != "type":
                criteria[name] = value
        created: dict[str, datetime] = {}
        if query.start_time is not None:
            created["$gte"] = as_utc(query.start_time)
        if query.end_time is not None:
            created["$lt"] = as_utc(query.end_time)
        if created:
            criteria["created_at"] = created
        cursor = (
            self._tasks.find(criteria)
            .sort([("created_at", DESCENDING), ("_id", DESCENDING)])
            .skip(query.offset)
            .limit(query.limit + 1)
        )
        records = [_document_to_record(doc) async for doc in cursor]
        return records[: query.limit], len(records) > query.limit

    # --- unique_id idempotency -------------------------------------------------------

    async def claim_unique_id(
        self, customer_id: str, unique_id: str, task_id: str, fingerprint: str, now: datetime
    ) -> UniqueIdClaim | None:
        """Reserve `unique_id` for `task_id`; if it was taken, the claim that holds it."""
        key = f"{customer_id}:{unique_id}"
        try:
            await self._unique_ids.insert_one(
                {"_id": key, "task_id": task_id, "fingerprint": fingerprint, "created_at": now}
            )
            return None
        except DuplicateKeyError:
            doc = await self._unique_ids.find_one({"_id": key})
            if doc is None:  # removed in between; cannot happen today, be safe anyway
                return await self.claim_unique_id(customer_id, unique_id, task_id, fingerprint, now)
            return UniqueIdClaim(task_id=doc["task_id"], fingerprint=doc["fingerprint"])

    # --- outbox ------------------------------------------------------------------------

    async def outbox(self, task_id: str) -> list[str]:
        doc = await self._tasks.find_one({"_id": ObjectId(task_id)}, {"outbox": 1})
        return [] if doc is None else list(doc.get("outbox") or [])

    async def remove_from_outbox(self, task_id: str, event: str) -> None:
        _id = ObjectId(task_id)
        await self._tasks.update_one({"_id": _id}, {"$pull": {"outbox": event}})
        await self._tasks.update_one({"_id": _id, "outbox": []}, {"$set": {"outbox_pending": False}})

    async def take_stale_outbox(self, older_than: datetime, now: datetime) -> PendingOutbox | None:
        """One task whose events were not published in time, marked as taken just now
        so that other task-store processes relaying at the same moment skip it."""
        doc = await self._tasks.find_one_and_update(
            # Only tasks that still hold events: on FerretDB every update rewrites the
            # whole document, so touching a task needlessly can undo a concurrent write.
            {"outbox_pending": True, "outbox_at": {"$lt": older_than}, "outbox": {"$ne": []}},
            {"$set": {"outbox_at": now}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            return None
        return PendingOutbox(task_id=str(doc["_id"]), events=list(doc.get("outbox") or []))


class AccountRepository:
    """Customers, workers and their credentials (stored as SHA-256, never in clear)."""

    def __init__(self, db: AsyncDatabase) -> None:
        self._customers = db[CUSTOMERS]
        self._workers = db[WORKERS]
        self._credentials = db[CREDENTIALS]

    async def authenticate(self, credential_hash: str, role: Role) -> Principal | None:
        doc = await self._credentials.find_one({"_id": credential_hash})
        if doc is None or doc["role"] != role:
            return None
        if not hmac.compare_digest(doc["_id"], credential_hash):
            return None
        return Principal(principal_id=doc["principal_id"], role=role)

    async def add_customer(
        self, name: str, credential_hash: str, callback_secret: str, now: datetime
    ) -> Principal:
        customer_id = str(ObjectId())
        await self._customers.insert_one(
            {"_id": customer_id, "name": name, "callback_secret": callback_secret, "created_at": now}
        )
        await self._add_credential(credential_hash, "customer", customer_id, now)
        return Principal(principal_id=customer_id, role="customer")

    async def add_worker(self, name: str, credential_hash: str, now: datetime) -> Principal:
        worker_id = str(ObjectId())
        await self._workers.insert_one({"_id": worker_id, "name": name, "created_at": now})
        await self._add_credential(credential_hash, "worker", worker_id, now)
        return Principal(principal_id=worker_id, role="worker")

    async def ensure_customer(
        self, name: str, credential_hash: str, callback_secret: str, now: datetime
    ) -> Principal:
        existing = await self.authenticate(credential_hash, "customer")
        if existing is not None:
            return existing
        try:
            return await self.add_customer(name, credential_hash, callback_secret, now)
        except DuplicateKeyError:  # another gateway created it at the same moment
            found = await self.authenticate(credential_hash, "customer")
            assert found is not None
            return found

    async def callback_secret(self, customer_id: str) -> str | None:
        doc = await self._customers.find_one({"_id": customer_id}, {"callback_secret": 1})
        return None if doc is None else doc["callback_secret"]

    async def _add_credential(self, credential_hash: str, role: Role, principal_id: str, now: datetime) -> None:
        await self._credentials.insert_one(
            {"_id": credential_hash, "role": role, "principal_id": principal_id, "created_at": now}
        )
