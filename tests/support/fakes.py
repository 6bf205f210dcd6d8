"""In-memory fakes of the services' ports (`humantask_taskstore.ports`,
`humantask_notifier.ports`), for the handlers' unit tests.

Each keeps the promises its real adapter makes and the handlers rely on: conditional
writes on a task's version, one task per id and per customer's `unique_id`, one lease per
worker, a customer's oldest claimable task of a pool leased first and never more leases
than free slots, a customer in the fair pool from its first insert until a look finds it
has none, each worker's increments written once per key, one claim per callback
attempt. tests/integration/test_fake_contracts.py holds them to it: the same cases run
against each fake and its real adapter. What only the real adapters do with the database
(indexes, atomicity under races, spans) is tested against a real server in
tests/integration.
"""

from __future__ import annotations

import builtins
import copy
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from humantask_notifier.domain import (
    MAX_ATTEMPTS,
    Attempt,
    Delivery,
    SigningSecrets,
    delivery_id,
)
from humantask_notifier.ports import SendResult
from humantask_shared.core.errors import QuotaExceeded, StorageQuotaExceeded
from humantask_shared.core.messages.base import Event
from humantask_shared.core.messages.commands import Account, CallbackSecret, Principal, Role
from humantask_shared.core.messages.envelope import StampedEvent
from humantask_shared.core.messages.events import CredentialChanged, TaskReopened
from humantask_shared.core.messages.quotas import CustomerQuota, QuotaSetting
from humantask_shared.core.models import ListCursor, TaskListQuery
from humantask_shared.core.scale_models import BatchCounts, BatchListQuery, ScaleTaskListQuery
from humantask_taskstore import quality
from humantask_taskstore.batches import BatchRecord
from humantask_taskstore.domain import (
    DEFAULT_WEIGHT,
    PoolCustomer,
    PoolKind,
    TaskRecord,
    claimable_by,
    lease_to,
    next_free_at,
)
from humantask_taskstore.fair_pool import FairPool
from humantask_taskstore.ports import BatchExists, ProjectExists, TaskExists, WorkerHoldsLease
from humantask_taskstore.projects import ParamsVersion, ProjectRecord, with_version
from humantask_taskstore.repository.documents import task_bytes
from humantask_taskstore.repository.usage import QuotaLimits
from humantask_taskstore.workers import (
    Applied,
    QualityContext,
    Standing,
    WorkerRecord,
    WorkerStanding,
)

# -- the task-store ----------------------------------------------------------------------


@dataclass
class FakeTasks:
    """`ports.Tasks` in a dictionary; `outboxes` holds what each write left to publish."""

    records: dict[str, TaskRecord] = field(default_factory=dict)
    outboxes: dict[str, list[StampedEvent]] = field(default_factory=dict)
    # The fair pool its inserts mark customers waiting in, as the repository's do.
    pool: FakePool | None = None
    # The defaults, and the limits set per customer (field -> limit; None: the default).
    quotas: QuotaLimits = field(default_factory=QuotaLimits)
    own_limits: dict[str, dict[str, int | None]] = field(default_factory=dict)

    async def get(self, task_id: str, customer_id: str | None = None) -> TaskRecord | None:
        record = self.records.get(task_id)
        if record is None or customer_id not in (None, record.customer_id):
            return None
        return record

    async def add(self, record: TaskRecord, events: Sequence[StampedEvent], now: datetime) -> None:
        quota = await self.quota(record.customer_id)
        if quota.pending_tasks_limit and quota.pending_tasks >= quota.pending_tasks_limit:
            raise QuotaExceeded(f"quota: {quota.pending_tasks_limit} pending tasks")
        limit = quota.stored_bytes_limit
        if limit and quota.stored_bytes + task_bytes(record) > limit:
            raise StorageQuotaExceeded(f"quota: past the stored-bytes quota of {limit}")
        existing = self.records.get(record.task_id)
        if existing is None and record.unique_id is not None:
            existing = next(
                (
                    other
                    for other in self.records.values()
                    if (other.customer_id, other.unique_id)
                    == (record.customer_id, record.unique_id)
                ),
                None,
            )
        if existing is not None:
            raise TaskExists(existing)
        self.records[record.task_id] = record
        self.outboxes[record.task_id] = list(events)
        if self.pool is not None and record.pool == "work":
            await self.pool.touch([record.customer_id])

    async def save(
        self, record: TaskRecord, events: Sequence[StampedEvent], now: datetime
    ) -> TaskRecord | None:
        current = self.records.get(record.task_id)
        if current is None or current.version != record.version:
            return None
        if record.unique_id is not None:
            holder = next(
                (
                    other
                    for other in self.records.values()
                    if other.task_id != record.task_id
                    and (other.customer_id, other.unique_id)
                    == (record.customer_id, record.unique_id)
                ),
                None,
            )
            if holder is not None:
                raise TaskExists(holder)
        saved = self._write(replace(record, version=record.version + 1), events)
        reopened = any(isinstance(stamped.event, TaskReopened) for stamped in events)
        if reopened and self.pool is not None and saved.pool == "work":
            await self.pool.touch([saved.customer_id])
        return saved

    async def save_answer(
        self,
        read: TaskRecord,
        answered: TaskRecord,
        worker_id: str,
        events: Sequence[StampedEvent],
        now: datetime,
    ) -> TaskRecord | None:
        current = self.records.get(read.task_id)
        if current is None or current.lease_of(worker_id, now) is None:
            return None
        if answered.is_gold:  # appended to whatever answers others gave meanwhile
            answered = replace(
                current,
                answers=(*current.answers, answered.answers[-1]),
                answers_version=current.answers_version + 1,
                request_id=answered.request_id,
            )
        elif current.answers_version != read.answers_version:
            return None
        others = tuple(x for x in current.live_leases(now) if x.worker_id != worker_id)
        written = replace(answered, leases=others if answered.status == "pending" else ())
        written = replace(written, free_at=next_free_at(written, now), version=current.version + 1)
        return self._write(written, events)

    async def release(self, worker_id: str, task_id: str, now: datetime) -> TaskRecord | None:
        current = self.records.get(task_id)
        if current is None or current.lease_of(worker_id, now) is None:
            return None
        kept = tuple(x for x in current.live_leases(now) if x.worker_id != worker_id)
        released = replace(current, leases=kept)
        released = replace(
            released, free_at=next_free_at(released, now), version=current.version + 1
        )
        return self._write(released, [])

    async def held_lease(self, worker_id: str, now: datetime) -> TaskRecord | None:
        for record in list(self.records.values()):
            if not any(lease.worker_id == worker_id for lease in record.leases):
                continue
            if record.lease_of(worker_id, now) is not None:
                return record
            kept = replace(
                record, leases=tuple(x for x in record.leases if x.worker_id != worker_id)
            )
            kept = replace(kept, free_at=next_free_at(kept, now), version=record.version + 1)
            self._write(kept, [])
        return None

    async def lease_oldest(
        self,
        worker_id: str,
        customer_id: str,
        pool: PoolKind,
        now: datetime,
        lease_expires_at: datetime,
    ) -> TaskRecord | None:
        claimable = [
            record
            for record in self.records.values()
            if record.customer_id == customer_id
            and record.pool == pool
            and claimable_by(record, worker_id, now)
        ]
        if not claimable:
            return None
        if any(lease.worker_id == worker_id for r in self.records.values() for lease in r.leases):
            raise WorkerHoldsLease(worker_id)  # as the unique lease index would
        oldest = min(claimable, key=lambda record: (record.created_at, record.task_id))
        leased = lease_to(oldest, worker_id, now, lease_expires_at)
        return self._write(replace(leased, version=oldest.version + 1), [])

    async def has_pool_work(self, customer_id: str) -> bool:
        return any(
            record.customer_id == customer_id and record.pool == "work"
            for record in self.records.values()
        )

    async def open_answered_by(self, customer_id: str, worker_id: str) -> builtins.list[str]:
        return [
            record.task_id
            for record in self.records.values()
            if record.customer_id == customer_id
            and record.pool == "work"
            and any(a.worker_id == worker_id and a.counted for a in record.answers)
        ]

    async def list(
        self,
        customer_id: str,
        query: TaskListQuery,
        now: datetime,
        cursor: ListCursor | None = None,
    ) -> tuple[builtins.list[TaskRecord], ListCursor | None]:
        def wanted(record: TaskRecord) -> bool:
            return (
                record.customer_id == customer_id
                and query.status in (None, record.status)
                and query.unique_id in (None, record.unique_id)
                and (query.start_time is None or record.created_at >= query.start_time)
                and (query.end_time is None or record.created_at < query.end_time)
            )

        def newest_first(record: TaskRecord) -> tuple[datetime, str]:
            return record.created_at, record.task_id

        found = sorted(filter(wanted, self.records.values()), key=newest_first, reverse=True)
        if cursor is not None:
            after = (cursor.created_at, cursor.task_id)
            found = [record for record in found if newest_first(record) < after]
        page = found[query.offset :][: query.limit]
        if query.unique_id is not None or len(found) <= query.offset + query.limit or not page:
            return page, None
        last = page[-1]
        return page, ListCursor(created_at=last.created_at, task_id=last.task_id, span_seconds=1)

    async def quota(self, customer_id: str) -> CustomerQuota:
        """Counted from the records themselves: what the real counters promise to be."""
        mine = [record for record in self.records.values() if record.customer_id == customer_id]
        own = self.own_limits.get(customer_id, {})
        pending_own, bytes_own = own.get("pending_limit"), own.get("bytes_limit")
        return CustomerQuota(
            customer_id=customer_id,
            pending_tasks=sum(record.status == "pending" for record in mine),
            pending_tasks_limit=self.quotas.pending_tasks if pending_own is None else pending_own,
            pending_tasks_limit_is="default" if pending_own is None else "customer",
            stored_bytes=sum(task_bytes(record) for record in mine),
            stored_bytes_limit=self.quotas.stored_bytes if bytes_own is None else bytes_own,
            stored_bytes_limit_is="default" if bytes_own is None else "customer",
        )

    async def set_quota(
        self, customer_id: str, pending_tasks: QuotaSetting, stored_bytes: QuotaSetting
    ) -> CustomerQuota:
        own = self.own_limits.setdefault(customer_id, {})
        for setting, name in ((pending_tasks, "pending_limit"), (stored_bytes, "bytes_limit")):
            if setting is not None:
                own[name] = None if setting == "default" else setting
        return await self.quota(customer_id)

    def _write(self, record: TaskRecord, events: Sequence[StampedEvent]) -> TaskRecord:
        self.records[record.task_id] = record
        self.outboxes.setdefault(record.task_id, []).extend(events)
        return record


def _newest_first(record: TaskRecord) -> tuple[datetime, str]:
    return record.created_at, record.task_id


@dataclass
class FakeTaskSearch:
    """`ports.TaskSearch` over a `FakeTasks`' records."""

    tasks: FakeTasks
    max_count: int = 10_000

    def _matching(self, customer_id: str, query: ScaleTaskListQuery) -> list[TaskRecord]:
        def wanted(record: TaskRecord) -> bool:
            completed = record.completed_at
            return (
                record.customer_id == customer_id
                and query.status in (None, record.status)
                and query.project in (None, record.project)
                and query.batch in (None, record.batch)
                and (not query.unique_id or record.unique_id in query.unique_id)
                and all(tag in record.tags for tag in query.tags)
                and (
                    not query.customer_review_status
                    or record.customer_review_status in query.customer_review_status
                )
                and (query.start_time is None or record.created_at >= query.start_time)
                and (query.end_time is None or record.created_at < query.end_time)
                and (
                    (query.completed_after is None and query.completed_before is None)
                    or (
                        completed is not None
                        and (query.completed_after is None or completed >= query.completed_after)
                        and (query.completed_before is None or completed < query.completed_before)
                    )
                )
            )

        return sorted(filter(wanted, self.tasks.records.values()), key=_newest_first, reverse=True)

    async def page(
        self,
        customer_id: str,
        query: ScaleTaskListQuery,
        now: datetime,
        cursor: ListCursor | None = None,
        count: bool = False,
    ) -> tuple[builtins.list[TaskRecord], ListCursor | None, int | None]:
        matching = self._matching(customer_id, query)
        found = matching
        if cursor is not None:
            found = [r for r in found if _newest_first(r) < (cursor.created_at, cursor.task_id)]
        total = min(len(matching), self.max_count) if count else None
        page = found[: query.limit]
        if len(found) <= query.limit or not page:
            return page, None, total
        last = page[-1]
        following = ListCursor(created_at=last.created_at, task_id=last.task_id, span_seconds=1)
        return page, following, total

    async def batch_counts(self, customer_id: str, batch: str) -> BatchCounts:
        statuses = [
            record.status
            for record in self.tasks.records.values()
            if (record.customer_id, record.batch) == (customer_id, batch)
        ]
        return BatchCounts(**{status: statuses.count(status) for status in set(statuses)})

    async def batch_has_pending(self, customer_id: str, batch: str) -> bool:
        return (await self.batch_counts(customer_id, batch)).pending > 0


@dataclass
class FakeProjects:
    """`ports.Projects`: one project per (customer, name), versions on the last read."""

    projects: dict[tuple[str, str], ProjectRecord] = field(default_factory=dict)

    async def add(self, project: ProjectRecord) -> None:
        for existing in self.projects.values():
            if existing.project_id == project.project_id:
                raise ProjectExists(existing)
        existing = self.projects.get((project.customer_id, project.name))
        if existing is not None:
            raise ProjectExists(existing)
        self.projects[(project.customer_id, project.name)] = project

    async def get(self, customer_id: str, name: str) -> ProjectRecord | None:
        return self.projects.get((customer_id, name))

    async def list(self, customer_id: str) -> builtins.list[ProjectRecord]:
        mine = [p for (owner, _), p in self.projects.items() if owner == customer_id]
        listed = sorted(mine, key=lambda p: (p.created_at, p.project_id))
        return [replace(p, history=p.history[-1:]) for p in listed]  # the current params

    async def add_version(
        self, project: ProjectRecord, version: ParamsVersion, now: datetime
    ) -> ProjectRecord | None:
        key = (project.customer_id, project.name)
        current = self.projects.get(key)
        if current is None or current.current.version != project.current.version:
            return None
        self.projects[key] = with_version(current, version)
        return self.projects[key]


@dataclass
class FakeBatches:
    """`ports.Batches`: one batch per (customer, name), conditional on its version;
    `outboxes` holds what each write left to publish."""

    batches: dict[tuple[str, str], BatchRecord] = field(default_factory=dict)
    outboxes: dict[str, list[StampedEvent]] = field(default_factory=dict)

    async def add(self, batch: BatchRecord) -> None:
        for existing in self.batches.values():
            if existing.batch_id == batch.batch_id:
                raise BatchExists(existing)
        existing = self.batches.get((batch.customer_id, batch.name))
        if existing is not None:
            raise BatchExists(existing)
        self.batches[(batch.customer_id, batch.name)] = batch

    async def get(self, customer_id: str, name: str) -> BatchRecord | None:
        return self.batches.get((customer_id, name))

    async def save(
        self, batch: BatchRecord, events: Sequence[StampedEvent], now: datetime
    ) -> BatchRecord | None:
        key = (batch.customer_id, batch.name)
        current = self.batches.get(key)
        if current is None or current.version != batch.version:
            return None
        self.batches[key] = replace(batch, version=batch.version + 1)
        self.outboxes.setdefault(batch.batch_id, []).extend(events)
        return self.batches[key]

    async def list(
        self, customer_id: str, query: BatchListQuery
    ) -> tuple[builtins.list[BatchRecord], int]:
        found = sorted(
            (
                b
                for (owner, _), b in self.batches.items()
                if owner == customer_id
                and query.project in (None, b.project)
                and query.status in (None, b.status)
                and (query.start_time is None or b.created_at >= query.start_time)
                and (query.end_time is None or b.created_at < query.end_time)
            ),
            key=lambda b: (b.created_at, b.batch_id),
            reverse=True,
        )
        return found[query.offset :][: query.limit], len(found)


def scale_ports(tasks: FakeTasks) -> dict[str, Any]:
    """The ports of `/scale/v1` (`Dependencies`' `search`, `projects`, `batches`,
    `batch_outbox`), in memory, over `tasks`."""
    return {
        "search": FakeTaskSearch(tasks),
        "projects": FakeProjects(),
        "batches": FakeBatches(),
        "batch_outbox": RecordingOutbox(),
    }


@dataclass
class FakePool:
    """`ports.Pool`: customers by id, active or idle, with their weights."""

    active: dict[str, bool] = field(default_factory=dict)
    touched: dict[str, int] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    turns: FairPool = field(default_factory=FairPool)

    async def waiting(self) -> list[PoolCustomer]:
        customers = [
            PoolCustomer(c, self.weights.get(c, DEFAULT_WEIGHT), self.touched.get(c, 0))
            for c, active in self.active.items()
            if active
        ]
        self.turns.forget(customers)
        return customers

    def take_turn(self, customers: Sequence[PoolCustomer]) -> PoolCustomer | None:
        customer = self.turns.next_turn(customers)
        if customer is not None:
            self.turns.take_turn(customer)
        return customer

    def give_back_turn(self, customer: PoolCustomer) -> None:
        self.turns.give_back_turn(customer)

    async def customer(self, customer_id: str) -> PoolCustomer | None:
        if not self.active.get(customer_id):
            return None
        return PoolCustomer(
            customer_id,
            self.weights.get(customer_id, DEFAULT_WEIGHT),
            self.touched.get(customer_id, 0),
        )

    async def touch(self, customer_ids: Iterable[str]) -> None:
        for customer_id in dict.fromkeys(customer_ids):
            self.active[customer_id] = True
            self.touched[customer_id] = self.touched.get(customer_id, 0) + 1

    async def set_idle(self, customer: PoolCustomer) -> bool:
        c = customer.customer_id
        if not self.active.get(c) or self.touched.get(c, 0) != customer.touched:
            return False
        self.active[c] = False
        return True

    async def set_weight(self, customer_id: str, weight: float) -> None:
        self.weights[customer_id] = weight


@dataclass
class _FakeWorker:
    state: quality.WorkerState = field(default_factory=quality.WorkerState)
    blocked: bool = False
    started: bool = False
    applied: list[str] = field(default_factory=list)


@dataclass
class FakeQuality:
    """`ports.Quality` in dictionaries, updated by `quality.apply` as `$inc` does."""

    customers: dict[str, quality.CustomerState] = field(default_factory=dict)
    calibrations: dict[str, quality.Calibration] = field(default_factory=dict)
    workers: dict[tuple[str, str], _FakeWorker] = field(default_factory=dict)
    keys: dict[str, bytes] = field(default_factory=dict)

    applied_kept: int = 64

    def _worker(self, customer_id: str, worker_id: str) -> _FakeWorker:
        return self.workers.setdefault((customer_id, worker_id), _FakeWorker())

    def _record(self, customer_id: str, worker_id: str) -> WorkerRecord:
        worker = self._worker(customer_id, worker_id)
        return WorkerRecord(
            customer_id=customer_id,
            worker_id=worker_id,
            answers=worker.state.answers,
            gold_answers=worker.state.gold_answers,
            gold_correct=worker.state.gold_correct,
            blocked=worker.blocked,
        )

    async def standings(self, worker_id: str) -> dict[str, Standing]:
        return {
            customer_id: Standing(blocked=w.blocked, started=w.started)
            for (customer_id, worker), w in self.workers.items()
            if worker == worker_id
        }

    async def mark_started(self, customer_id: str, worker_id: str) -> None:
        self._worker(customer_id, worker_id).started = True

    async def context(self, customer_id: str, worker_ids: Sequence[str]) -> QualityContext:
        standings = {
            worker_id: WorkerStanding(copy.deepcopy(w.state), w.blocked)
            for worker_id in worker_ids
            if (w := self.workers.get((customer_id, worker_id))) is not None
        }
        return QualityContext(
            customer=copy.deepcopy(self.customers.get(customer_id, quality.CustomerState())),
            calibration=self.calibrations.get(customer_id, quality.IDENTITY),
            workers=standings,
        )

    async def apply_worker(
        self, customer_id: str, worker_id: str, key: str, increments: quality.Increments
    ) -> Applied:
        worker = self._worker(customer_id, worker_id)
        if key in worker.applied:
            return Applied(self._record(customer_id, worker_id), written=False)
        own = quality.Increments(workers={worker_id: increments.workers[worker_id]})
        quality.apply(own, quality.CustomerState(), {worker_id: worker.state})
        worker.applied = [*worker.applied, key][-self.applied_kept :]
        return Applied(self._record(customer_id, worker_id), written=True)

    async def apply_customer(self, customer_id: str, increments: quality.Increments) -> int:
        state = self.customers.setdefault(customer_id, quality.CustomerState())
        quality.apply(quality.Increments(customer=increments.customer), state, {})
        return state.gold_answers

    async def customer_state(self, customer_id: str) -> quality.CustomerState:
        return copy.deepcopy(self.customers.get(customer_id, quality.CustomerState()))

    async def save_calibration(self, customer_id: str, calibration: quality.Calibration) -> None:
        self.calibrations[customer_id] = calibration

    async def block(self, customer_id: str, worker_id: str, now: datetime) -> bool:
        worker = self.workers.get((customer_id, worker_id))
        if worker is None or worker.blocked:
            return False
        worker.blocked = True
        return True

    async def workers_of(self, customer_id: str) -> list[WorkerRecord]:
        return [
            self._record(c, w)
            for (c, w), worker in self.workers.items()
            if c == customer_id and worker.state.answers > 0
        ]

    async def pseudonym_key(self, customer_id: str) -> bytes:
        return self.keys.setdefault(customer_id, secrets.token_bytes(32))


@dataclass
class RecordingPublisher:
    """`ports.PublishEvent`: the events published, in order."""

    published: list[Event] = field(default_factory=list)

    async def __call__(self, event: Event) -> None:
        self.published.append(event)

    def of(self, event_type: type[Event]) -> list[Any]:
        return [event for event in self.published if isinstance(event, event_type)]


@dataclass
class RecordingOutbox:
    """`ports.Outbox`: what the handlers handed over to publish, in order."""

    published: list[tuple[str, list[StampedEvent]]] = field(default_factory=list)

    def publish_after_reply(self, task_id: str, events: Sequence[StampedEvent]) -> None:
        self.published.append((task_id, list(events)))

    def event_types(self) -> list[str]:
        return [event.routing_key for _, events in self.published for event in events]


@dataclass
class RecordingAnnouncer:
    """`ports.AnnounceCredentialChange`: the `credential.changed` events published."""

    announced: list[CredentialChanged] = field(default_factory=list)

    async def __call__(self, event: CredentialChanged) -> None:
        self.announced.append(event)

    def changes(self) -> list[tuple[Role, str, str]]:
        return [(event.role, event.principal_id, event.change) for event in self.announced]


@dataclass
class _Credential:
    role: Role
    principal_id: str
    revoked_at: datetime | None = None


@dataclass
class FakeAccounts:
    """`ports.Accounts`: principals and credentials (by hash); a revoked credential
    stays revoked, and one hash belongs to one principal for good (another is refused
    with the error the unique index raises)."""

    customers: dict[str, Account] = field(default_factory=dict)
    workers: dict[str, Account] = field(default_factory=dict)
    callback_secrets: dict[str, str] = field(default_factory=dict)
    # customer id -> (the replaced secret, until when it signs too), after a rotation
    previous_secrets: dict[str, tuple[str | None, datetime | None]] = field(default_factory=dict)
    credentials: dict[str, _Credential] = field(default_factory=dict)

    async def authenticate(self, credential_hash: str, role: Role) -> Principal | None:
        credential = self.credentials.get(credential_hash)
        if credential is None or credential.role != role or credential.revoked_at is not None:
            return None
        return Principal(principal_id=credential.principal_id, role=role)

    async def owner_of(self, credential_hash: str, role: Role) -> Principal | None:
        credential = self.credentials.get(credential_hash)
        if credential is None or credential.role != role:
            return None
        return Principal(principal_id=credential.principal_id, role=role)

    async def add_customer(
        self, name: str, credential_hash: str, callback_secret: str, now: datetime
    ) -> Principal:
        principal = self._add("customer", name, credential_hash, now)
        self.callback_secrets[principal.principal_id] = callback_secret
        return principal

    async def add_worker(self, name: str, credential_hash: str, now: datetime) -> Principal:
        return self._add("worker", name, credential_hash, now)

    async def ensure_customer(
        self, name: str, credential_hash: str, callback_secret: str, now: datetime
    ) -> Principal | None:
        if await self.owner_of(credential_hash, "customer") is None:
            await self.add_customer(name, credential_hash, callback_secret, now)
        return await self.authenticate(credential_hash, "customer")

    async def callback_secret(self, customer_id: str) -> str | None:
        return self.callback_secrets.get(customer_id)

    async def accounts(self, role: Role) -> list[Account]:
        return sorted(
            self._principals(role).values(),
            key=lambda account: (account.created_at, account.principal_id),
        )

    async def account(self, role: Role, principal_id: str) -> Account | None:
        return self._principals(role).get(principal_id)

    async def revoke(self, role: Role, principal_id: str, now: datetime) -> Account | None:
        account = await self.account(role, principal_id)
        if account is None:
            return None
        self._revoke_credentials(role, principal_id, now)
        if account.revoked_at is None:
            account = account.model_copy(update={"revoked_at": now})
            self._principals(role)[principal_id] = account
        return account

    async def rotate_credential(
        self, role: Role, principal_id: str, credential_hash: str, now: datetime
    ) -> Account | None:
        owner = self.credentials.get(credential_hash)
        if owner is None:
            self.credentials[credential_hash] = _Credential(role, principal_id)
        elif (owner.role, owner.principal_id) != (role, principal_id):
            raise DuplicateKeyError("the hash is another principal's")
        self._revoke_credentials(role, principal_id, now, keep=credential_hash)
        return await self.account(role, principal_id)

    async def signing_secrets(self, customer_id: str) -> CallbackSecret | None:
        secret = self.callback_secrets.get(customer_id)
        if secret is None:
            return None
        previous, until = self.previous_secrets.get(customer_id, (None, None))
        return CallbackSecret(
            callback_secret=secret, previous_secret=previous, previous_until=until
        )

    async def rotate_callback_secret(
        self, customer_id: str, callback_secret: str, previous_until: datetime | None = None
    ) -> bool:
        if customer_id not in self.customers:
            return False
        replaced = self.callback_secrets[customer_id]
        if replaced == callback_secret:
            return True
        self.callback_secrets[customer_id] = callback_secret
        self.previous_secrets[customer_id] = (
            (replaced, previous_until) if previous_until is not None else (None, None)
        )
        return True

    def _add(self, role: Role, name: str, credential_hash: str, now: datetime) -> Principal:
        if credential_hash in self.credentials:
            raise DuplicateKeyError("the hash is taken")
        principal_id = secrets.token_hex(12)
        self._principals(role)[principal_id] = Account(
            role=role, principal_id=principal_id, name=name, created_at=now
        )
        self.credentials[credential_hash] = _Credential(role, principal_id)
        return Principal(principal_id=principal_id, role=role)

    def _principals(self, role: Role) -> dict[str, Account]:
        return self.customers if role == "customer" else self.workers

    def _revoke_credentials(
        self, role: Role, principal_id: str, now: datetime, keep: str | None = None
    ) -> None:
        for credential_hash, credential in self.credentials.items():
            if (
                (credential.role, credential.principal_id) == (role, principal_id)
                and credential.revoked_at is None
                and credential_hash != keep
            ):
                credential.revoked_at = now


# -- the notifier ------------------------------------------------------------------------


@dataclass
class FakeDeliveries:
    """`ports.Deliveries`: a second claim of one attempt number fails, as the unique
    `_id` of its MongoDB record makes it; so does a second delivery of one id."""

    deliveries: dict[str, Delivery] = field(default_factory=dict)
    attempts: dict[tuple[str, int], Attempt] = field(default_factory=dict)

    async def get(self, delivery_id: str) -> Delivery | None:
        found = self.deliveries.get(delivery_id)
        if found is None:
            return None
        claimed = sorted(
            (a for (d, _), a in self.attempts.items() if d == delivery_id),
            key=lambda a: a.number,
        )
        return replace(found, attempts=tuple(claimed))

    async def latest(self, task_id: str) -> Delivery | None:
        mine = [d for d in self.deliveries.values() if d.task_id == task_id]
        if not mine:
            return None
        return await self.get(max(mine, key=lambda d: d.number).delivery_id)

    async def last_number(self, task_id: str) -> int:
        numbers = [d.number for d in self.deliveries.values() if d.task_id == task_id]
        numbers += [
            a.delivery
            for (key, _), a in self.attempts.items()
            if key == task_id or key.startswith(f"{task_id}.")
        ]
        return max(numbers, default=0)

    async def of_completion(self, task_id: str, completion: int) -> Delivery | None:
        for delivery in self.deliveries.values():
            if (delivery.task_id, delivery.completion, delivery.origin) == (
                task_id,
                completion,
                "completion",
            ):
                return await self.get(delivery.delivery_id)
        return None

    async def create(self, delivery: Delivery) -> bool:
        if delivery.delivery_id in self.deliveries:
            return False
        self.deliveries[delivery.delivery_id] = delivery
        return True

    async def claim(self, delivery: Delivery, attempt: Attempt) -> bool:
        key = (delivery.delivery_id, attempt.number)
        if key in self.attempts:
            return False
        self.attempts[key] = attempt
        return True

    async def finish(self, delivery_id: str, attempt: Attempt) -> bool:
        if self.attempts[(delivery_id, attempt.number)].finished:
            return False
        self.attempts[(delivery_id, attempt.number)] = attempt
        return True

    async def mark_retry_scheduled(self, delivery_id: str) -> None:
        self.deliveries[delivery_id] = replace(self.deliveries[delivery_id], retry_scheduled=True)

    async def log(self, task_id: str, customer_id: str) -> list[Attempt]:
        found = [
            attempt
            for delivery in self.deliveries.values()
            if delivery.task_id == task_id and delivery.customer_id == customer_id
            for (delivery_id, _), attempt in self.attempts.items()
            if delivery_id == delivery.delivery_id and attempt.finished
        ]
        return sorted(found, key=lambda a: (a.delivery, a.number))

    async def failed(
        self, since: datetime, customer_id: str | None, limit: int
    ) -> list[tuple[Delivery, Attempt]]:
        found: list[tuple[Delivery, Attempt]] = []
        for key, attempt in self.attempts.items():
            delivery, number = await self.get(key[0]), key[1]
            if (
                delivery is None
                or number != MAX_ATTEMPTS
                or not attempt.finished
                or attempt.delivered
                or attempt.at < since
                or customer_id not in (None, delivery.customer_id)
            ):
                continue
            latest = await self.latest(delivery.task_id)
            if latest is not None and latest.number == delivery.number:
                found.append((delivery, attempt))
        return sorted(found, key=lambda pair: pair[1].at)[:limit]


@dataclass
class FakeSender:
    """`ports.Sender`: answers from `answers` in turn, then 200."""

    answers: list[SendResult] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> SendResult:
        self.sent.append({"url": url, "body": body, "headers": headers})
        return self.answers.pop(0) if self.answers else SendResult(status_code=200)


@dataclass
class FakeRetries:
    """`ports.Retries`: the delivery ids of the retries scheduled and of the redeliveries
    started, in order."""

    scheduled: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)

    async def schedule(self, task_id: str, delivery: int, request_id: str | None) -> None:
        self.scheduled.append(delivery_id(task_id, delivery))

    async def start(self, task_id: str, delivery: int, request_id: str | None) -> None:
        self.started.append(delivery_id(task_id, delivery))


@dataclass
class FakeDeferrals:
    """What a dispatcher puts back (`HostBusyDeferrals`): records it, by the trigger of its
    message."""

    deferred: list[str] = field(default_factory=list)

    async def defer(self, message: Any, trigger: str) -> None:
        self.deferred.append(trigger)


@dataclass
class FakeSigningKeys:
    """`ports.SigningKeys`: `whsec_<customer id>`, or `error` while it is set;
    `overlapping[customer id]`: a replaced secret and until when it signs too."""

    error: Exception | None = None
    overlapping: dict[str, tuple[str, datetime]] = field(default_factory=dict)

    async def get(self, customer_id: str) -> SigningSecrets:
        if self.error is not None:
            raise self.error
        previous, until = self.overlapping.get(customer_id, (None, None))
        return SigningSecrets(f"whsec_{customer_id}", previous, until)
