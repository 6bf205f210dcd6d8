"""MongoDB adapter: tasks (with their outbox), customers and credentials.

Written for an engine that applies a conditional write atomically (MongoDB 7, FerretDB 2
on DocumentDB): every change of a task is one `find_one_and_update` whose filter holds
what the change was decided on (the task's version, or the claimable state), so two
writers can never both win. No transactions (DocumentDB accepts and ignores them): what
must change together lives in one document, the task and the events it raised (its
outbox). Every query of a hot path has an index (`ensure_indexes`).
"""

from __future__ import annotations

import builtins
import contextlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, ReturnDocument, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from humantask_shared.core.errors import Unavailable
from humantask_shared.core.messages.commands import Account, Principal, Role
from humantask_shared.core.messages.envelope import StampedEvent
from humantask_shared.core.models import (
    MAX_LIST_SPAN_SECONDS,
    ListCursor,
    TaskListQuery,
    TaskParams,
    TaskResponse,
)
from humantask_shared.core.timeutil import as_utc
from humantask_shared.runtime.mongo import Document, is_unique_conflict

from .batching import GroupWriter
from .domain import TaskRecord
from .ports import TaskExists

TASKS = "tasks"
CUSTOMERS = "customers"
WORKERS = "workers"
CREDENTIALS = "credentials"

# Index names, so that tests can check with `explain` that a query uses the right one.
LIST_INDEX = "customer_created"
LIST_BY_STATUS_INDEX = "customer_status_created"
UNIQUE_ID_INDEX = "customer_unique_id"
POOL_INDEX = "pool"
LEASE_INDEX = "one_lease_per_worker"
OUTBOX_INDEX = "outbox_at"

# Only tasks holding a string in the field are in these partial indexes (and a filter
# spelled with `$type` lets the planner see it is within one): a task without a
# unique_id, or nobody's lease, is not.
_HAS_UNIQUE_ID = {"unique_id": {"$type": "string"}}
HAS_LEASE = {"lease_worker_id": {"$type": "string"}}


async def ensure_indexes(db: AsyncDatabase[Document]) -> None:
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
    # One lease per worker (API.md section 6): a second claim by the same worker cannot
    # write its id into another task. An expired lease is cleared before its worker claims.
    await tasks.create_index(
        [("lease_worker_id", ASCENDING)],
        name=LEASE_INDEX,
        unique=True,
        partialFilterExpression=HAS_LEASE,
    )
    # The outbox relay: only tasks holding unpublished events carry `outbox_at`.
    await tasks.create_index([("outbox_at", ASCENDING)], name=OUTBOX_INDEX, sparse=True)


def _record_to_document(record: TaskRecord) -> dict[str, Any]:
    document = {
        "_id": ObjectId(record.task_id),
        "customer_id": record.customer_id,
        "created_at": record.created_at,
        "callback_url": record.callback_url,
        "callback_format": record.callback_format,
        "instruction": record.instruction,
        "params": record.params.model_dump(),
        "status": record.status,
        # Kept opaque: customer keys may hold '.' or '$', which MongoDB-likes reject.
        "metadata_json": None
        if record.metadata is None
        else orjson.dumps(record.metadata).decode(),
        "completed_at": record.completed_at,
        "canceled_at": record.canceled_at,
        "response": None if record.response is None else record.response.model_dump(),
        "lease_worker_id": record.lease_worker_id,
        "lease_expires_at": record.lease_expires_at,
        "completed_by": record.completed_by,
        "version": record.version,
        "request_id": record.request_id,
    }
    if record.unique_id is not None:  # absent, not null: see UNIQUE_ID_INDEX
        document["unique_id"] = record.unique_id
        document["fingerprint"] = record.fingerprint
    return document


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
        fingerprint=doc.get("fingerprint"),
        completed_at=as_utc(doc["completed_at"]) if doc.get("completed_at") else None,
        canceled_at=as_utc(doc["canceled_at"]) if doc.get("canceled_at") else None,
        response=TaskResponse.model_validate(doc["response"]) if doc.get("response") else None,
        lease_worker_id=doc.get("lease_worker_id"),
        lease_expires_at=as_utc(doc["lease_expires_at"]) if doc.get("lease_expires_at") else None,
        completed_by=doc.get("completed_by"),
        version=doc.get("version", 0),
        request_id=doc.get("request_id"),
    )


def _new_document(
    record: TaskRecord, events: Sequence[StampedEvent], now: datetime
) -> dict[str, Any]:
    """A new task's document, its events in its outbox."""
    document = _record_to_document(record) | {"outbox": _serialize_events(events)}
    if events:
        document["outbox_at"] = now
    return document


def _serialize_events(events: Sequence[StampedEvent]) -> list[str]:
    """The outbox holds events as the JSON text that will be published, byte for byte."""
    return [event.body for event in events]


def _claimable(now: datetime, bottom: datetime, top: datetime) -> dict[str, Any]:
    """Pending, no live lease, and created in [bottom, top)."""
    return {
        "status": "pending",
        "created_at": {"$gte": bottom, "$lt": top},
        "$or": [{"lease_expires_at": None}, {"lease_expires_at": {"$lte": now}}],
    }


def _live_lease(worker_id: str, now: datetime) -> dict[str, Any]:
    """`domain.holds_live_lease` as a filter."""
    return {**_lease_of(worker_id), "status": "pending", "lease_expires_at": {"$gt": now}}


def _unique_id_of(customer_id: str, unique_id: str) -> dict[str, Any]:
    # Spelled with `$type` so that the planner sees it is within UNIQUE_ID_INDEX's filter.
    return {"customer_id": customer_id, "unique_id": {"$type": "string", "$eq": unique_id}}


def _lease_of(worker_id: str) -> dict[str, Any]:
    # Spelled with `$type` so that the planner sees it is within LEASE_INDEX's filter.
    return {"lease_worker_id": {"$type": "string", "$eq": worker_id}}


# Lists and claims read spans of creation times (DocumentDB sorts in memory whatever a
# filter matched, so each query is kept to a span): a list's first span covers this much
# and each next one SPAN_GROWTH times more, down to LIST_FLOOR (the oldest time a query
# may name); a claim's spans start at the pool's floor (`PoolFloor`).
FIRST_LIST_SPAN_SECONDS = 1.0
FIRST_CLAIM_SPAN_SECONDS = 60.0
MIN_CLAIM_SPAN_SECONDS = 0.01
SPAN_GROWTH = 16
LIST_FLOOR = datetime(1970, 1, 1, tzinfo=UTC)
# How far ahead of this task-store's clock another one's may be: a task it stamps is
# never older than the floor this one computed.
CLOCK_SKEW = timedelta(minutes=5)

# A new task, its events and when: what `TaskRepository.add` writes.
NewTask = tuple[TaskRecord, Sequence[StampedEvent], datetime]
MAX_INSERTS_PER_WRITE = 128

# Writes that race on a unique index: one wins, the others find the winner's document
# on their next look (or, rarely, try once more while the winner is still landing).
RACE_ATTEMPTS = 3


def _without_events(published: list[str]) -> list[dict[str, Any]]:
    """An update (pipeline) that removes `published` from the outbox, in order otherwise,
    and `outbox_at` with the last event: one write whatever else the outbox holds."""
    remaining = {
        "$filter": {"input": "$outbox", "cond": {"$not": [{"$in": ["$$this", published]}]}}
    }
    return [
        {"$set": {"outbox": remaining}},
        {
            "$set": {
                "outbox_at": {
                    "$cond": [{"$eq": [{"$size": "$outbox"}, 0]}, "$$REMOVE", "$outbox_at"]
                }
            }
        },
    ]


@dataclass(frozen=True)
class PendingOutbox:
    task_id: str
    events: list[str]


PENDING: dict[str, Any] = {"status": "pending"}


async def oldest_pending_created_at(tasks: AsyncCollection[Document]) -> datetime | None:
    """When the oldest pending task was created (DocumentDB sorts the pool for it)."""
    oldest = await tasks.find_one(PENDING, {"created_at": 1}, sort=[("created_at", ASCENDING)])
    return None if oldest is None else as_utc(oldest["created_at"])


def expired_leases(now: datetime) -> dict[str, Any]:
    """Pending tasks whose worker's lease ran out and that nobody has claimed since."""
    return {**HAS_LEASE, "lease_expires_at": {"$lte": now}, "status": "pending"}


class PoolFloor:
    """A time no pending task is older than, kept a while by each task-store process:
    the oldest pending task's `created_at`, or `now - CLOCK_SKEW` if that is earlier (a
    task another process stamps later is never older than that). Finding the oldest
    pending task sorts the pool, so it is looked up again only every few seconds; a floor
    that went stale is merely low, which costs a claim a few empty spans."""

    def __init__(self, refresh: timedelta = timedelta(seconds=30)) -> None:
        self._refresh = refresh
        self._floor: datetime | None = None
        self._found_at: datetime | None = None

    async def get(self, tasks: AsyncCollection[Document], now: datetime) -> datetime:
        if self._floor is None or self._found_at is None or now - self._found_at > self._refresh:
            oldest = await oldest_pending_created_at(tasks)
            newest_possible = now - CLOCK_SKEW
            self._floor = newest_possible if oldest is None else min(oldest, newest_possible)
            self._found_at = now
        return self._floor


class TaskRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._tasks = db[TASKS]
        self._inserts: GroupWriter[NewTask] = GroupWriter(self._insert_group, MAX_INSERTS_PER_WRITE)
        self._pool_floor = PoolFloor()
        self._claim_span = FIRST_CLAIM_SPAN_SECONDS

    async def get(self, task_id: str, customer_id: str | None = None) -> TaskRecord | None:
        """The task, if it exists (and belongs to `customer_id`, when given)."""
        if not ObjectId.is_valid(task_id):
            return None
        criteria: dict[str, Any] = {"_id": ObjectId(task_id)}
        if customer_id is not None:
            criteria["customer_id"] = customer_id
        doc = await self._tasks.find_one(criteria)
        return None if doc is None else _document_to_record(doc)

    async def add(self, record: TaskRecord, events: Sequence[StampedEvent], now: datetime) -> None:
        """Insert a new task with its events in its outbox; concurrent adds share one
        `insert_many` (`GroupWriter`). Raises `TaskExists` when the task id or the
        customer's `unique_id` is taken; no read before: the unique indexes decide, and
        only a duplicate costs more round trips."""
        await self._inserts.submit((record, events, now))

    async def _insert_group(
        self, group: builtins.list[NewTask]
    ) -> builtins.list[BaseException | None]:
        documents = [_new_document(record, events, now) for record, events, now in group]
        try:
            await self._tasks.insert_many(documents, ordered=False)
            return [None] * len(group)
        except BulkWriteError as exc:
            refused = {error["index"] for error in exc.details.get("writeErrors", [])}
            if not refused:
                raise
        outcomes: builtins.list[BaseException | None] = []
        for index, new_task in enumerate(group):
            try:
                if index in refused:  # one at a time decides why: a duplicate, or a race
                    await self._add_one(*new_task)
                outcomes.append(None)
            except (TaskExists, Unavailable, PyMongoError) as exc:
                outcomes.append(exc)
        return outcomes

    async def _add_one(
        self, record: TaskRecord, events: Sequence[StampedEvent], now: datetime
    ) -> None:
        document = _new_document(record, events, now)
        for _ in range(RACE_ATTEMPTS):
            try:
                await self._tasks.insert_one(document)
                return
            except PyMongoError as exc:
                if not is_unique_conflict(exc):
                    raise
            existing = await self.get(record.task_id)
            if existing is None and record.unique_id is not None:
                existing = await self.find_by_unique_id(record.customer_id, record.unique_id)
            if existing is not None:
                raise TaskExists(existing)
            # The racing insert has not landed (yet): try again.
        raise Unavailable("the task could not be stored, try again")

    async def find_by_unique_id(self, customer_id: str, unique_id: str) -> TaskRecord | None:
        doc = await self._tasks.find_one(_unique_id_of(customer_id, unique_id))
        return None if doc is None else _document_to_record(doc)

    async def save(
        self, record: TaskRecord, events: Sequence[StampedEvent], now: datetime
    ) -> TaskRecord | None:
        """Write a changed task if nobody changed it since it was read (its version), in
        one conditional write; None when another writer got there first."""
        changed = _record_to_document(record)
        del changed["_id"]
        changed["version"] = record.version + 1
        update: dict[str, Any] = {"$set": changed}
        if events:
            update["$push"] = {"outbox": {"$each": _serialize_events(events)}}
            # Keep the oldest unpublished event's time: the relay goes by it.
            update["$min"] = {"outbox_at": now}
        doc = await self._tasks.find_one_and_update(
            {"_id": ObjectId(record.task_id), "version": record.version},
            update,
            return_document=ReturnDocument.AFTER,
        )
        return None if doc is None else _document_to_record(doc)

    # --- the worker pool ----------------------------------------------------------------

    async def live_lease_of(self, worker_id: str, now: datetime) -> TaskRecord | None:
        """The pending task `worker_id` holds a live lease on, if any."""
        doc = await self._tasks.find_one(_live_lease(worker_id, now))
        return None if doc is None else _document_to_record(doc)

    async def claim(
        self, worker_id: str, now: datetime, lease_expires_at: datetime
    ) -> TaskRecord | None:
        """Lease the oldest claimable task to `worker_id`, or give back the one it holds;
        None when the pool is empty. One atomic write picks and leases the task; the
        unique lease index turns concurrent claims of one worker into one lease."""
        for _ in range(RACE_ATTEMPTS):
            held = await self.live_lease_of(worker_id, now)
            if held is not None:
                return held
            # The worker's expired lease, if any, would block the unique index.
            await self._tasks.update_many(
                {**_lease_of(worker_id), "lease_expires_at": {"$lte": now}},
                {
                    "$set": {"lease_worker_id": None, "lease_expires_at": None},
                    "$inc": {"version": 1},
                },
            )
            try:
                doc = await self._claim_oldest(worker_id, now, lease_expires_at)
            except PyMongoError as exc:
                if not is_unique_conflict(exc):
                    raise
                # Another claim of this worker won a task at the same moment: that one
                # is ours, as the next round's lookup finds.
                continue
            return None if doc is None else _document_to_record(doc)
        raise Unavailable("too many claims of this worker at once, try again")

    async def _claim_oldest(
        self, worker_id: str, now: datetime, lease_expires_at: datetime
    ) -> dict[str, Any] | None:
        """Lease the oldest claimable task, reading the pool span by span upwards from its
        floor: each `find_one_and_update` sorts only the pending tasks of its span."""
        floor = await self._pool_floor.get(self._tasks, now)
        bottom, span = floor, self._claim_span
        while bottom <= now + CLOCK_SKEW:
            top = bottom + timedelta(seconds=span)
            doc = await self._tasks.find_one_and_update(
                _claimable(now, bottom, top),
                {
                    "$set": {"lease_worker_id": worker_id, "lease_expires_at": lease_expires_at},
                    "$inc": {"version": 1},
                },
                sort=[("created_at", ASCENDING), ("_id", ASCENDING)],
                return_document=ReturnDocument.AFTER,
            )
            if doc is not None:
                # Found in the first span: the pool is dense here, look at less next time.
                first = bottom == floor
                self._claim_span = max(MIN_CLAIM_SPAN_SECONDS, span / 2) if first else span
                return doc
            bottom, span = top, span * SPAN_GROWTH
        return None

    # `list` names this method in the class body: annotations below say `builtins.list`.
    async def list(
        self, customer_id: str, query: TaskListQuery, now: datetime
    ) -> tuple[builtins.list[TaskRecord], ListCursor | None]:
        """A page of the customer's tasks, newest first, and where the next page starts
        (None when no task follows).

        The page is read span by span of creation times, newest span first, each as wide
        as the density just seen says the rest of the page needs (2 to 16 times the last),
        until the page is full: DocumentDB sorts what a filter matched in memory, so a
        query over all of a large customer's tasks would cost what the customer has, not
        what the page needs. Spans keep a page's cost near the page's size at any depth;
        the cursor carries the span that filled the page, so the next one usually needs
        one query."""
        criteria: dict[str, Any] = {"customer_id": customer_id}
        index = LIST_INDEX
        if query.status is not None:
            criteria["status"] = query.status
            index = LIST_BY_STATUS_INDEX
        if query.unique_id is not None:  # at most one task: no spans needed
            criteria.update(_unique_id_of(customer_id, query.unique_id))
            found = await self._find_page(criteria, query.offset, query.limit + 1, UNIQUE_ID_INDEX)
            return found[query.offset :][: query.limit], None

        floor = query.start_time or LIST_FLOOR
        cursor = query.next_token
        # Without a cursor or an end_time the newest span is open above (clock skew).
        top = cursor.created_at if cursor else query.end_time
        span = cursor.span_seconds if cursor else FIRST_LIST_SPAN_SECONDS
        wanted = query.offset + query.limit + 1
        records: list[TaskRecord] = []
        while True:
            bottom = max(floor, (top or now) - timedelta(seconds=span))
            created: dict[str, Any] = {"$gte": bottom}
            if top is not None:
                created["$lt"] = top
            window: dict[str, Any] = {"created_at": created}
            if cursor is not None and top == cursor.created_at:  # after the cursor's task
                window = {
                    "$or": [
                        window,
                        {"created_at": cursor.created_at, "_id": {"$lt": ObjectId(cursor.task_id)}},
                    ]
                }
            found = await self._find_page(criteria | window, 0, wanted - len(records), index)
            records += found
            if len(records) >= wanted or bottom <= floor:
                break
            # Wide enough for what is missing at the density just seen, within 2 to 16 times.
            guess = span * 1.5 * (wanted - len(records)) / max(len(found), 1)
            top, span = bottom, min(max(guess, span * 2), span * SPAN_GROWTH, MAX_LIST_SPAN_SECONDS)
        page = records[query.offset :][: query.limit]
        if len(records) < wanted or not page:
            return page, None
        last = page[-1]
        return page, ListCursor(created_at=last.created_at, task_id=last.task_id, span_seconds=span)

    async def _find_page(
        self, criteria: dict[str, Any], skip: int, limit: int, index: str
    ) -> builtins.list[TaskRecord]:
        # Named, not left to the planner: DocumentDB's picks (customer, status, created_at)
        # for a span of all statuses too, and then cannot use the span (3x slower).
        cursor = (
            self._tasks.find(criteria)
            .sort([("created_at", DESCENDING), ("_id", DESCENDING)])
            .skip(skip)
            .limit(limit)
            .hint(index)
        )
        return [_document_to_record(doc) async for doc in cursor]

    # --- outbox ------------------------------------------------------------------------

    async def outbox(self, task_id: str) -> builtins.list[str]:
        doc = await self._tasks.find_one({"_id": ObjectId(task_id)}, {"outbox": 1})
        return [] if doc is None else list(doc.get("outbox") or [])

    async def remove_from_outboxes(
        self, published: builtins.list[tuple[str, builtins.list[str]]]
    ) -> None:
        """Drop each task's published events, keeping any that a later change added; a
        task left with none leaves the relay's index. One round trip for all of them."""
        await self._tasks.bulk_write(
            [
                UpdateOne({"_id": ObjectId(task_id)}, _without_events(events))
                for task_id, events in published
            ],
            ordered=False,
        )

    async def take_stale_outbox(self, older_than: datetime, now: datetime) -> PendingOutbox | None:
        """One task whose events were not published in time, marked as taken just now
        so that other task-store processes relaying at the same moment skip it."""
        doc = await self._tasks.find_one_and_update(
            {"outbox_at": {"$lt": older_than}},
            {"$set": {"outbox_at": now}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            return None
        return PendingOutbox(task_id=str(doc["_id"]), events=list(doc.get("outbox") or []))


class AccountRepository:
    """Customers, workers and their credentials (stored as SHA-256, never in clear).

    A credential document (`_id` = the SHA-256 of the key or token) names its principal;
    revoking or rotating it away sets its `revoked_at`, so it can never come back (not
    even as the demo key at the next start). A revoked principal has `revoked_at` too.
    """

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._customers = db[CUSTOMERS]
        self._workers = db[WORKERS]
        self._credentials = db[CREDENTIALS]

    async def ensure_indexes(self) -> None:
        # Revoking and rotating find a principal's credentials (operator commands, rare).
        await self._credentials.create_index([("principal_id", ASCENDING)], name="principal")

    async def authenticate(self, credential_hash: str, role: Role) -> Principal | None:
        doc = await self._credentials.find_one({"_id": credential_hash})
        if doc is None or doc["role"] != role or doc.get("revoked_at") is not None:
            return None
        if not hmac.compare_digest(doc["_id"], credential_hash):
            return None
        return Principal(principal_id=doc["principal_id"], role=role)

    async def owner_of(self, credential_hash: str, role: Role) -> Principal | None:
        """Whose credential this is, revoked or not."""
        doc = await self._credentials.find_one({"_id": credential_hash})
        if doc is None or doc["role"] != role:
            return None
        return Principal(principal_id=doc["principal_id"], role=role)

    async def add_customer(
        self, name: str, credential_hash: str, callback_secret: str, now: datetime
    ) -> Principal:
        customer_id = str(ObjectId())
        await self._customers.insert_one(
            {
                "_id": customer_id,
                "name": name,
                "callback_secret": callback_secret,
                "created_at": now,
            }
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
    ) -> Principal | None:
        """The customer of this key, created if there is none; None if it was revoked."""
        if await self.owner_of(credential_hash, "customer") is None:
            # DuplicateKeyError: another gateway created it at the same moment.
            with contextlib.suppress(DuplicateKeyError):
                await self.add_customer(name, credential_hash, callback_secret, now)
        return await self.authenticate(credential_hash, "customer")

    async def callback_secret(self, customer_id: str) -> str | None:
        doc = await self._customers.find_one({"_id": customer_id}, {"callback_secret": 1})
        return None if doc is None else doc["callback_secret"]

    async def accounts(self, role: Role) -> list[Account]:
        """Every customer or worker, oldest first; no secret is read."""
        cursor = (
            self._principals(role)
            .find({}, {"name": 1, "created_at": 1, "revoked_at": 1})
            .sort([("created_at", ASCENDING), ("_id", ASCENDING)])
        )
        return [self._account(role, doc) async for doc in cursor]

    async def account(self, role: Role, principal_id: str) -> Account | None:
        doc = await self._principals(role).find_one(
            {"_id": principal_id}, {"name": 1, "created_at": 1, "revoked_at": 1}
        )
        return None if doc is None else self._account(role, doc)

    async def revoke(self, role: Role, principal_id: str, now: datetime) -> Account | None:
        """Revoke the principal and every credential of it; None if there is no such one.

        Credentials first: from that write on the key is refused, whatever happens next
        (running it again finishes the job)."""
        if await self.account(role, principal_id) is None:
            return None
        await self._revoke_credentials(role, principal_id, now)
        await self._principals(role).update_one(
            {"_id": principal_id, "revoked_at": {"$exists": False}}, {"$set": {"revoked_at": now}}
        )
        return await self.account(role, principal_id)

    async def rotate_credential(
        self, role: Role, principal_id: str, credential_hash: str, now: datetime
    ) -> Account | None:
        """The principal's credential becomes this one and every other is revoked. The
        caller checks that the principal exists and is not revoked."""
        try:
            await self._add_credential(credential_hash, role, principal_id, now)
        except DuplicateKeyError:  # a redelivered command: it is ours already
            owner = await self.owner_of(credential_hash, role)
            if owner is None or owner.principal_id != principal_id:
                raise
        await self._revoke_credentials(role, principal_id, now, keep=credential_hash)
        return await self.account(role, principal_id)

    async def rotate_callback_secret(self, customer_id: str, callback_secret: str) -> bool:
        result = await self._customers.update_one(
            {"_id": customer_id}, {"$set": {"callback_secret": callback_secret}}
        )
        return result.matched_count == 1

    def _principals(self, role: Role) -> AsyncCollection[Document]:
        return self._customers if role == "customer" else self._workers

    @staticmethod
    def _account(role: Role, doc: dict[str, Any]) -> Account:
        revoked_at = doc.get("revoked_at")
        return Account(
            role=role,
            principal_id=doc["_id"],
            name=doc["name"],
            created_at=as_utc(doc["created_at"]),
            revoked_at=None if revoked_at is None else as_utc(revoked_at),
        )

    async def _revoke_credentials(
        self, role: Role, principal_id: str, now: datetime, keep: str | None = None
    ) -> None:
        query: dict[str, Any] = {
            "principal_id": principal_id,
            "role": role,
            "revoked_at": {"$exists": False},
        }
        if keep is not None:
            query["_id"] = {"$ne": keep}
        await self._credentials.update_many(query, {"$set": {"revoked_at": now}})

    async def _add_credential(
        self, credential_hash: str, role: Role, principal_id: str, now: datetime
    ) -> None:
        await self._credentials.insert_one(
            {"_id": credential_hash, "role": role, "principal_id": principal_id, "created_at": now}
        )
