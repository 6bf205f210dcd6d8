"""Tasks: the task-store's main aggregate, one document each with its outbox.

Every change of a task is one `find_one_and_update` whose filter holds what the change
was decided on (the task's version, or the claimable state), so two writers can never
both win; what must change together (the task and the events it raised) is one
document. Inserts let the unique indexes decide (no read before), and concurrent ones
share one `insert_many`. Lists and claims read spans of creation times (`spans`);
lists cost a page whatever their offset (`listing`).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from humantask_shared.core.errors import QuotaExceeded, StorageQuotaExceeded, Unavailable
from humantask_shared.core.messages.envelope import StampedEvent
from humantask_shared.core.messages.events import TaskCanceled, TaskCompleted, TaskReopened
from humantask_shared.core.messages.quotas import CustomerQuota, QuotaSetting
from humantask_shared.core.models import ListCursor, TaskListQuery
from humantask_shared.core.timeutil import as_utc, utcnow
from humantask_shared.runtime.mongo import Document, is_unique_conflict

from ..batching import GroupWriter
from ..domain import PoolKind, TaskRecord
from ..ports import TaskExists, WorkerHoldsLease
from .documents import (
    OPTIONAL_FIELDS,
    TASKS,
    outbox_entries,
    record_fields,
    task_bytes,
    task_document,
    task_record,
)
from .indexes import (
    LIST_BY_STATUS_INDEX,
    LIST_INDEX,
    PENDING,
    UNIQUE_ID_INDEX,
    WAITING_FOR_ANSWERS,
    answer_update,
    answered_at,
    claimable,
    drop_lease_update,
    expired_leases,
    held_by,
    in_pool,
    lease_update,
    live_lease_of,
    ran_out,
    unique_id_of,
)
from .listing import ListLimits, TaskLists
from .pool import PoolRepository
from .spans import ClaimSpans
from .usage import CustomerUsage, QuotaLimits

# A new task, its events and when: what `TaskRepository.add` writes.
NewTask = tuple[TaskRecord, Sequence[StampedEvent], datetime]
MAX_INSERTS_PER_WRITE = 128

# Changes made once per database, by name, in `migrations`.
MIGRATIONS = "migrations"
POOL_MIGRATION = "tasks-in-pools"

# What an answer changes of its task besides its leases, slots and outbox.
_ANSWER_FIELDS = (
    "answers",
    "answers_version",
    "status",
    "completed_at",
    "response",
    "posterior",
    "pool",
    "request_id",
)

_GOLD_ANSWER_FIELDS = ("request_id",)

# Writes that race on a unique index: one wins, the others find the winner's document
# on their next look (or, rarely, try once more while the winner is still landing).
RACE_ATTEMPTS = 3


def leaves_pending(events: Sequence[StampedEvent]) -> bool:
    """Whether a change took its task out of `pending` (the domain raises one of these
    exactly then)."""
    return any(isinstance(stamped.event, (TaskCompleted, TaskCanceled)) for stamped in events)


def enters_pending(events: Sequence[StampedEvent]) -> bool:
    """Whether a change put its task back in `pending` (an audit rejected it)."""
    return any(isinstance(stamped.event, TaskReopened) for stamped in events)


@dataclass(frozen=True)
class WorkerPool:
    pending: int  # tasks waiting for a worker
    oldest_created_at: datetime | None  # the oldest of them
    expired_leases: int  # pending tasks whose lease ran out, unclaimed since
    waiting_for_answers: int = 0  # regular tasks with counted answers, not complete yet


class TaskRepository:
    def __init__(
        self,
        db: AsyncDatabase[Document],
        lists: ListLimits | None = None,
        quotas: QuotaLimits | None = None,
    ) -> None:
        self._tasks = db[TASKS]
        self._migrations = db[MIGRATIONS]
        self._pool = PoolRepository(db)
        self._lists = TaskLists(self._tasks, lists or ListLimits())
        self._usage = CustomerUsage(db, quotas or QuotaLimits())
        self._inserts: GroupWriter[NewTask] = GroupWriter(self._insert_group, MAX_INSERTS_PER_WRITE)
        # Where each customer's claims look, per pool (`spans.ClaimSpans`).
        self._claim_spans: dict[tuple[str, PoolKind], ClaimSpans] = {}

    async def get(self, task_id: str, customer_id: str | None = None) -> TaskRecord | None:
        """The task, if it exists (and belongs to `customer_id`, when given)."""
        if not ObjectId.is_valid(task_id):
            return None
        criteria: dict[str, Any] = {"_id": ObjectId(task_id)}
        if customer_id is not None:
            criteria["customer_id"] = customer_id
        doc = await self._tasks.find_one(criteria)
        return None if doc is None else task_record(doc)

    async def add(self, record: TaskRecord, events: Sequence[StampedEvent], now: datetime) -> None:
        """Insert a new task with its events in its outbox; concurrent adds share one
        `insert_many` (`GroupWriter`). Raises `TaskExists` when the task id or the
        customer's `unique_id` is taken; no read before: the unique indexes decide, and
        only a duplicate costs more round trips. The customer's quotas are reserved
        first (`usage`, once per customer in the group): past one, `QuotaExceeded` or
        `StorageQuotaExceeded`, and nothing is stored."""
        await self._inserts.submit((record, events, now))

    async def _insert_group(
        self, group: builtins.list[NewTask]
    ) -> builtins.list[BaseException | None]:
        outcomes: builtins.list[BaseException | None] = [None] * len(group)
        admitted = await self._reserve(group, outcomes)
        inserted = await self._insert_all([group[index] for index in admitted])
        not_stored: dict[str, tuple[int, int]] = {}
        for index, outcome in zip(admitted, inserted, strict=True):
            outcomes[index] = outcome
            if isinstance(outcome, (TaskExists, Unavailable)):  # its reservation goes back
                record = group[index][0]
                count, size = not_stored.get(record.customer_id, (0, 0))
                not_stored[record.customer_id] = (count + 1, size + task_bytes(record))
        # Any other failure may have inserted it: that reservation stays (reconciled later).
        now = group[0][2]
        for customer_id, (count, size) in not_stored.items():
            await self._usage.give_back(customer_id, count, size, now)
        return outcomes

    async def _reserve(
        self, group: builtins.list[NewTask], outcomes: builtins.list[BaseException | None]
    ) -> builtins.list[int]:
        """Reserve each customer's new tasks at once (the customers side by side); when
        they do not all fit, one at a time, in order. The indexes of those admitted;
        `outcomes` says why the others were not."""
        by_customer: dict[str, builtins.list[int]] = {}
        for index, (record, _, _) in enumerate(group):
            by_customer.setdefault(record.customer_id, []).append(index)

        async def reserve(customer_id: str, indexes: builtins.list[int]) -> builtins.list[int]:
            sizes = [task_bytes(group[index][0]) for index in indexes]
            now = group[indexes[0]][2]
            try:
                await self._usage.reserve(customer_id, now, len(indexes), sum(sizes))
                return indexes
            except (QuotaExceeded, StorageQuotaExceeded) as exc:
                if len(indexes) == 1:
                    outcomes[indexes[0]] = exc
                    return []
            admitted = []
            for index, size in zip(indexes, sizes, strict=True):
                try:
                    await self._usage.reserve(customer_id, now, 1, size)
                    admitted.append(index)
                except (QuotaExceeded, StorageQuotaExceeded) as exc:
                    outcomes[index] = exc
            return admitted

        reserved = await asyncio.gather(*(reserve(c, i) for c, i in by_customer.items()))
        return sorted(index for indexes in reserved for index in indexes)

    async def _insert_all(
        self, group: builtins.list[NewTask]
    ) -> builtins.list[BaseException | None]:
        if not group:
            return []
        documents = [task_document(record, events, now) for record, events, now in group]
        # Their customers wait in the fair pool, marked after the inserts (pool.py).
        waiting = [record.customer_id for record, _, _ in group if record.pool == "work"]
        try:
            await self._tasks.insert_many(documents, ordered=False)
            await self._pool.touch(waiting)
            return [None] * len(group)
        except BulkWriteError as exc:
            await self._pool.touch(waiting)
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
        document = task_document(record, events, now)
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
        doc = await self._tasks.find_one(unique_id_of(customer_id, unique_id))
        return None if doc is None else task_record(doc)

    async def save(
        self, record: TaskRecord, events: Sequence[StampedEvent], now: datetime
    ) -> TaskRecord | None:
        """Write a changed task if nobody changed it since it was read (its version), in
        one conditional write; None when another writer got there first. `TaskExists`
        when it takes a unique_id another of its customer's tasks has."""
        changed = record_fields(record)
        del changed["_id"]
        changed["version"] = record.version + 1
        # What the task counts against its quota, when it counts (it was read so: stored
        # since quotas exist), changes with its metadata or unique_id (`/scale/v1`).
        grown = 0
        if record.size_bytes is not None:
            grown = task_bytes(record) - record.size_bytes
            changed["size_bytes"] = record.size_bytes + grown
        update: dict[str, Any] = {"$set": changed}
        gone = {name: "" for name in OPTIONAL_FIELDS if name not in changed}
        if gone:
            update["$unset"] = gone
        if events:
            update["$push"] = {"outbox": {"$each": outbox_entries(events)}}
            # Keep the oldest unpublished event's time: the relay goes by it.
            update["$min"] = {"outbox_at": now}
        try:
            doc = await self._tasks.find_one_and_update(
                {"_id": ObjectId(record.task_id), "version": record.version},
                update,
                return_document=ReturnDocument.AFTER,
            )
        except PyMongoError as exc:
            if not is_unique_conflict(exc) or record.unique_id is None:
                raise
            holder = await self.find_by_unique_id(record.customer_id, record.unique_id)
            if holder is None:  # let go of it meanwhile: the caller tries again
                return None
            raise TaskExists(holder) from None
        if doc is None:
            return None
        # Each is raised once per change, and only one save of a version wins. A task an
        # audit reopened counts again, whatever the quota (it was admitted once); a
        # larger task counts its new size, never refused either.
        pending = (1 if leaves_pending(events) else 0) - (1 if enters_pending(events) else 0)
        if pending or grown:
            await self._usage.give_back(record.customer_id, pending, -grown, now)
        if enters_pending(events) and record.pool == "work":
            # Back in the pool: its customer waits there again (as after an insert).
            await self._pool.touch([record.customer_id])
        return task_record(doc)

    # --- quotas ---------------------------------------------------------------------------

    async def quota(self, customer_id: str) -> CustomerQuota:
        return await self._usage.quota(customer_id)

    async def set_quota(
        self, customer_id: str, pending_tasks: QuotaSetting, stored_bytes: QuotaSetting
    ) -> CustomerQuota:
        return await self._usage.set_quota(customer_id, pending_tasks, stored_bytes)

    async def save_answer(
        self,
        read: TaskRecord,
        answered: TaskRecord,
        worker_id: str,
        events: Sequence[StampedEvent],
        now: datetime,
    ) -> TaskRecord | None:
        """Write an answer and what it decided, if the task's answers are still as they
        were read and the worker still holds its live lease: one conditional write, which
        leases other workers took meanwhile do not spoil (they stay, and the slots are
        counted again with them). None when the answers changed (or the lease ended).
        A gold task's answer decides nothing: it is appended to whatever answers others
        gave meanwhile."""
        fields = record_fields(answered)
        gold = answered.is_gold
        changed = {name: fields[name] for name in (_GOLD_ANSWER_FIELDS if gold else _ANSWER_FIELDS)}
        if answered.status == "completed":  # what its customer sees changed (`/scale/v1`)
            changed["updated_at"] = fields["updated_at"]
        update = answer_update(
            changed,
            worker_id,
            now,
            outbox_entries(events),
            answered.status == "pending",
            appended=fields["answers"][-1] if gold else None,
        )
        version = None if gold else read.answers_version
        doc = await self._tasks.find_one_and_update(
            {"_id": ObjectId(read.task_id), **answered_at(worker_id, version, now)},
            update,
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            return None
        if leaves_pending(events):  # only the answer that completed it raises this
            await self._usage.give_back(read.customer_id, 1, 0, now)
        return task_record(doc)

    async def release(self, worker_id: str, task_id: str, now: datetime) -> TaskRecord | None:
        """Drop the worker's live lease on the task, in one write whatever leases others
        take meanwhile; None if it holds none."""
        if not ObjectId.is_valid(task_id):
            return None
        doc = await self._tasks.find_one_and_update(
            {"_id": ObjectId(task_id), **live_lease_of(worker_id, now)},
            drop_lease_update(worker_id, now),
            return_document=ReturnDocument.AFTER,
        )
        return None if doc is None else task_record(doc)

    # --- the worker pool ----------------------------------------------------------------

    async def held_lease(self, worker_id: str, now: datetime) -> TaskRecord | None:
        """The pending task the worker holds a live lease on, if any; a lease of the
        worker's that ran out is dropped (it would keep the worker from leasing another:
        LEASE_INDEX)."""
        doc = await self._tasks.find_one(held_by(worker_id))
        if doc is None:
            return None
        record = task_record(doc)
        if record.lease_of(worker_id, now) is not None:
            return record
        await self._tasks.update_one(
            {"_id": doc["_id"], **ran_out(worker_id, now)}, drop_lease_update(worker_id, now)
        )
        return None

    async def lease_oldest(
        self,
        worker_id: str,
        customer_id: str,
        pool: PoolKind,
        now: datetime,
        lease_expires_at: datetime,
    ) -> TaskRecord | None:
        """Lease the customer's oldest task of `pool` the worker may claim
        (`domain.claimable_by`), span by span upwards from that pool's floor, in one
        atomic write per span; None when there is none. `WorkerHoldsLease` when a claim of
        the same worker leased another task at the same moment (the unique lease index)."""

        async def lease(bottom: datetime, top: datetime) -> dict[str, Any] | None:
            return await self._tasks.find_one_and_update(
                claimable(pool, customer_id, worker_id, now, bottom, top),
                lease_update(worker_id, now, lease_expires_at),
                sort=[("created_at", ASCENDING), ("_id", ASCENDING)],
                return_document=ReturnDocument.AFTER,
            )

        async def oldest() -> datetime | None:
            return await self._oldest_in(pool, customer_id)

        spans = self._claim_spans.get((customer_id, pool))
        if spans is None:
            spans = self._claim_spans[(customer_id, pool)] = ClaimSpans()
        try:
            doc = await spans.lease_oldest(lease, oldest, now)
        except PyMongoError as exc:
            if is_unique_conflict(exc):
                raise WorkerHoldsLease(worker_id) from exc
            raise
        return None if doc is None else task_record(doc)

    async def has_pool_work(self, customer_id: str) -> bool:
        """Whether any regular task of the customer's waits in the pool (claimable or not)."""
        return await self._tasks.find_one(in_pool("work", customer_id), {"_id": 1}) is not None

    async def open_answered_by(self, customer_id: str, worker_id: str) -> builtins.list[str]:
        """The customer's pending regular tasks on which the worker's answer counts."""
        cursor = self._tasks.find(
            {
                **in_pool("work", customer_id),
                "answers": {"$elemMatch": {"worker_id": worker_id, "counted": True}},
            },
            {"_id": 1},
        )
        return [str(doc["_id"]) async for doc in cursor]

    async def _oldest_in(self, pool: PoolKind, customer_id: str) -> datetime | None:
        """When the customer's oldest task in the pool was created (DocumentDB sorts the
        customer's pool for it: kept a while by `spans.PoolFloor`)."""
        oldest = await self._tasks.find_one(
            in_pool(pool, customer_id), {"created_at": 1}, sort=[("created_at", ASCENDING)]
        )
        return None if oldest is None else as_utc(oldest["created_at"])

    async def oldest_pending(self) -> datetime | None:
        """When the oldest pending task was created (DocumentDB sorts the pool for it)."""
        oldest = await self._tasks.find_one(
            PENDING, {"created_at": 1}, sort=[("created_at", ASCENDING)]
        )
        return None if oldest is None else as_utc(oldest["created_at"])

    async def pool(self, now: datetime) -> WorkerPool:
        """The worker pool as the gauges show it, through the indexes the hot paths have."""
        pending = await self._tasks.count_documents(PENDING)
        return WorkerPool(
            pending=pending,
            oldest_created_at=await self.oldest_pending() if pending else None,
            expired_leases=await self._tasks.count_documents(expired_leases(now)),
            waiting_for_answers=await self._tasks.count_documents(WAITING_FOR_ANSWERS),
        )

    async def upgrade_pool(self) -> builtins.list[str]:
        """Tasks written before there were several workers per task wait in no pool (they
        have no `pool` field, and maybe a lease of the old shape): put every such pending
        task in the regular pool, its old lease dropped (that worker's submit is a `409`).
        Returns the customers whose tasks it moved. Done once per database (a document in
        `migrations` says so afterwards), reading the pending tasks through POOL_INDEX."""
        if await self._migrations.find_one({"_id": POOL_MIGRATION}) is not None:
            return []
        old = {**PENDING, "pool": {"$exists": False}}
        customers = await self._tasks.distinct("customer_id", old)
        if customers:
            await self._tasks.update_many(
                old,
                {
                    "$set": {"pool": "work", "free_at": None},
                    "$unset": {"lease_worker_id": "", "lease_expires_at": ""},
                    "$inc": {"version": 1},
                },
            )
        with contextlib.suppress(DuplicateKeyError):  # another task-store did it too
            await self._migrations.insert_one({"_id": POOL_MIGRATION, "at": utcnow()})
        return [str(customer) for customer in customers]

    # --- lists --------------------------------------------------------------------------

    # `list` names this method in the class body: annotations below say `builtins.list`.
    async def list(
        self,
        customer_id: str,
        query: TaskListQuery,
        now: datetime,
        cursor: ListCursor | None = None,
    ) -> tuple[builtins.list[TaskRecord], ListCursor | None]:
        """A page of the customer's tasks, newest first, from `cursor` on (a verified
        `next_token`), and where the next page starts (None when no task follows), at
        the cost of a page (`listing`)."""
        criteria: dict[str, Any] = {"customer_id": customer_id}
        index = LIST_INDEX
        if query.status is not None:
            criteria["status"] = query.status
            index = LIST_BY_STATUS_INDEX
        if query.unique_id is not None:  # at most one task: no spans needed
            criteria.update(unique_id_of(customer_id, query.unique_id))
            return await self._lists.at_most_one(criteria, UNIQUE_ID_INDEX, query), None
        return await self._lists.page(criteria, index, query, cursor, now)
