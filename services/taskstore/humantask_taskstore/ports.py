"""What the handlers need from the outside world, as protocols.

The MongoDB adapters (`repository`), the outbox (`outbox`) and the broker fulfil them in
the service (`bootstrap` wires them); the unit tests pass in-memory fakes with the same
promises (`tests/support/fakes.py`). Each promise the handlers rely on is said here.
"""

from __future__ import annotations

import builtins
import random
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from humantask_shared.core.messages.base import Event
from humantask_shared.core.messages.commands import Account, CallbackSecret, Principal, Role
from humantask_shared.core.messages.envelope import StampedEvent
from humantask_shared.core.messages.events import CredentialChanged
from humantask_shared.core.messages.quotas import CustomerQuota, QuotaSetting
from humantask_shared.core.models import ListCursor, TaskListQuery
from humantask_shared.core.scale_models import (
    BatchCounts,
    BatchListQuery,
    ScaleListToken,
    ScaleTaskListQuery,
)

from .batches import BatchRecord
from .domain import (
    Applied,
    PoolCustomer,
    PoolKind,
    QualityContext,
    Standing,
    TaskRecord,
    WorkerRecord,
    quality,
)
from .projects import ParamsVersion, ProjectRecord


class TaskExists(Exception):
    """An insert met a task that is already there: the same task id (a redelivered
    command), or the same customer's `unique_id`. `existing` is that task."""

    def __init__(self, existing: TaskRecord) -> None:
        super().__init__(existing.task_id)
        self.existing = existing


class ProjectExists(Exception):
    """An insert met a project that is already there: the same id (a redelivered
    command), or the same customer's name. `existing` is that project."""

    def __init__(self, existing: ProjectRecord) -> None:
        super().__init__(existing.name)
        self.existing = existing


class BatchExists(Exception):
    """An insert met a batch that is already there (its id or its name)."""

    def __init__(self, existing: BatchRecord) -> None:
        super().__init__(existing.name)
        self.existing = existing


class Tasks(Protocol):
    """Tasks with their outbox of unpublished events, written in one document each."""

    async def get(self, task_id: str, customer_id: str | None = None) -> TaskRecord | None:
        """The task, if it exists (and belongs to `customer_id`, when given); an id that
        is not a task id is simply not found."""

    async def add(self, record: TaskRecord, events: Sequence[StampedEvent], now: datetime) -> None:
        """Insert a new task and its events; `TaskExists` when its id or its customer's
        `unique_id` is taken (whatever the race, one insert wins)."""

    async def save(
        self, record: TaskRecord, events: Sequence[StampedEvent], now: datetime
    ) -> TaskRecord | None:
        """Write a changed task only if it is still at the version it was read at (and
        bump the version); None when another writer got there first; `TaskExists` when
        it takes a `unique_id` another of its customer's tasks has."""

    async def save_answer(
        self,
        read: TaskRecord,
        answered: TaskRecord,
        worker_id: str,
        events: Sequence[StampedEvent],
        now: datetime,
    ) -> TaskRecord | None:
        """Write `answered` (an answer to `read` and what it decided) if the task's answers
        are as read and the worker still holds its live lease, in one conditional write
        that leases others took meanwhile do not spoil: they stay, and the slots are
        counted again with them. None when another answer (or the lease's end) came first."""

    async def release(self, worker_id: str, task_id: str, now: datetime) -> TaskRecord | None:
        """Drop the worker's live lease on the task; None if it holds none there."""

    async def held_lease(self, worker_id: str, now: datetime) -> TaskRecord | None:
        """The pending task the worker holds a live lease on; a lease of its that ran out
        is dropped on the way (a worker holds one lease at most, live or not)."""

    async def lease_oldest(
        self,
        worker_id: str,
        customer_id: str,
        pool: PoolKind,
        now: datetime,
        lease_expires_at: datetime,
    ) -> TaskRecord | None:
        """Lease the customer's oldest task of `pool` that the worker may claim
        (`domain.claimable_by`) to it, in one atomic write: concurrent claims never put
        more leases on a task than it has free slots. None when there is none;
        `WorkerHoldsLease` when the worker leased another task at the same moment."""

    async def has_pool_work(self, customer_id: str) -> bool:
        """Whether any regular task of the customer's waits in the pool."""

    async def open_answered_by(self, customer_id: str, worker_id: str) -> builtins.list[str]:
        """The ids of the customer's pending regular tasks where the worker's answer counts."""

    async def list(
        self,
        customer_id: str,
        query: TaskListQuery,
        now: datetime,
        cursor: ListCursor | None = None,
    ) -> tuple[builtins.list[TaskRecord], ListCursor | None]:
        """A page of the customer's tasks, newest first, after `cursor` (where the page
        before ended) when given, and where the next one starts. A page ends early
        rather than pass its byte budget, and always holds a task if any is left."""

    async def quota(self, customer_id: str) -> CustomerQuota:
        """The customer's quotas and its usage: pending tasks (`add` reserves one, a
        change out of `pending` gives it back) and bytes stored (`add` reserves the
        task's size; past either quota `add` raises `QuotaExceeded` or
        `StorageQuotaExceeded` and stores nothing)."""

    async def set_quota(
        self, customer_id: str, pending_tasks: QuotaSetting, stored_bytes: QuotaSetting
    ) -> CustomerQuota:
        """Set the customer's own limits (a number, 0: none; "default"; None: unchanged)."""


class TaskSearch(Protocol):
    """`/scale/v1`'s reads of many tasks (docs/reference/contract.md §11)."""

    async def page(
        self,
        customer_id: str,
        query: ScaleTaskListQuery,
        now: datetime,
        cursor: ListCursor | None = None,
        count: bool = False,
    ) -> tuple[builtins.list[TaskRecord], ListCursor | None, int | None]:
        """A page of the customer's tasks matching the query, newest first, after
        `cursor`; where the next one starts; and with `count`, how many match in all, up
        to a bound. Bounded as `/v1`'s list (bytes of a page, one time limit for all its
        queries: `Unavailable` past it)."""

    async def batch_counts(self, customer_id: str, batch: str) -> BatchCounts: ...

    async def batch_has_pending(self, customer_id: str, batch: str) -> bool: ...


class Projects(Protocol):
    """Projects by (customer, name)."""

    async def add(self, project: ProjectRecord) -> None:
        """Insert a new project; `ProjectExists` when its id or its name is taken."""

    async def get(self, customer_id: str, name: str) -> ProjectRecord | None: ...

    async def list(self, customer_id: str) -> builtins.list[ProjectRecord]:
        """The customer's projects, oldest first."""

    async def add_version(
        self, project: ProjectRecord, version: ParamsVersion, now: datetime
    ) -> ProjectRecord | None:
        """Append a version of params if the project is still at the version it was read
        at; None when another writer got there first."""


class Batches(Protocol):
    """Batches by (customer, name), each with its outbox of unpublished events."""

    async def add(self, batch: BatchRecord) -> None:
        """Insert a new batch; `BatchExists` when its id or its name is taken."""

    async def get(self, customer_id: str, name: str) -> BatchRecord | None: ...

    async def save(
        self, batch: BatchRecord, events: Sequence[StampedEvent], now: datetime
    ) -> BatchRecord | None:
        """Write a changed batch and its events only if it is still at the version it
        was read at; None when another writer got there first."""

    async def list(
        self, customer_id: str, query: BatchListQuery
    ) -> tuple[builtins.list[BatchRecord], int]:
        """A page of the customer's batches, newest first, and how many match in all."""


class WorkerHoldsLease(Exception):
    """A claim of the same worker leased a task at the same moment: that one is its."""


class Pool(Protocol):
    """The fair pool's customers (`repository.pool`)."""

    async def waiting(self) -> list[PoolCustomer]:
        """The customers with regular tasks in the pool (or that had some a moment ago)."""

    def take_turn(self, customers: Sequence[PoolCustomer]) -> PoolCustomer | None:
        """The customer whose turn it is among these (`fair_pool.FairPool`, this
        process's turns), its turn taken at once so that a claim at the same moment takes
        the next one; None when there is none."""

    def give_back_turn(self, customer: PoolCustomer) -> None:
        """The turn served nothing (no task for the worker): it does not count."""

    async def customer(self, customer_id: str) -> PoolCustomer | None:
        """The customer as the pool has it, if it is waiting."""

    async def touch(self, customer_ids: Iterable[str]) -> None:
        """These customers have tasks in the pool (called after the tasks are written)."""

    async def set_idle(self, customer: PoolCustomer) -> bool:
        """The customer has no task in the pool, as a look after `customer` was read
        found: idle, unless touched since it was read."""

    async def set_weight(self, customer_id: str, weight: float) -> None: ...


class Quality(Protocol):
    """What each customer knows of its workers (`repository.quality`)."""

    async def standings(self, worker_id: str) -> dict[str, Standing]:
        """The worker's standing (blocked, started) with every customer it has one with."""

    async def mark_started(self, customer_id: str, worker_id: str) -> None:
        """The worker was served a task of the customer's."""

    async def context(self, customer_id: str, worker_ids: Sequence[str]) -> QualityContext:
        """What an answer's decision reads: the customer's pooled state and calibration,
        these workers' states and whether each is blocked."""

    async def apply_worker(
        self, customer_id: str, worker_id: str, key: str, increments: quality.Increments
    ) -> Applied:
        """The worker's part of the increments, written once per key."""

    async def apply_customer(self, customer_id: str, increments: quality.Increments) -> int:
        """The customer's part; returns its gold answers since."""

    async def customer_state(self, customer_id: str) -> quality.CustomerState: ...

    async def save_calibration(
        self, customer_id: str, calibration: quality.Calibration
    ) -> None: ...

    async def block(self, customer_id: str, worker_id: str, now: datetime) -> bool:
        """Block the worker for the customer; False if it was already."""

    async def workers_of(self, customer_id: str) -> list[WorkerRecord]:
        """The customer's workers who answered any of its tasks."""

    async def pseudonym_key(self, customer_id: str) -> bytes:
        """The customer's secret for its workers' pseudonyms (the same every time)."""


class Accounts(Protocol):
    """Customers, workers and their credentials (by the SHA-256 of the key or token)."""

    async def authenticate(self, credential_hash: str, role: Role) -> Principal | None: ...

    async def owner_of(self, credential_hash: str, role: Role) -> Principal | None:
        """Whose credential this is, revoked or not."""

    async def add_customer(
        self, name: str, credential_hash: str, callback_secret: str, now: datetime
    ) -> Principal: ...

    async def add_worker(self, name: str, credential_hash: str, now: datetime) -> Principal: ...

    async def ensure_customer(
        self, name: str, credential_hash: str, callback_secret: str, now: datetime
    ) -> Principal | None:
        """The customer of this key, created if there is none; None if it was revoked."""

    async def callback_secret(self, customer_id: str) -> str | None: ...

    async def signing_secrets(self, customer_id: str) -> CallbackSecret | None:
        """The secret and, if a rotation kept one, the replaced secret and until when it
        signs too (whether that time has passed or not)."""

    async def accounts(self, role: Role) -> list[Account]:
        """Every customer or worker, oldest first."""

    async def account(self, role: Role, principal_id: str) -> Account | None: ...

    async def revoke(self, role: Role, principal_id: str, now: datetime) -> Account | None:
        """Revoke the principal and its credentials, for good; None if there is none."""

    async def rotate_credential(
        self, role: Role, principal_id: str, credential_hash: str, now: datetime
    ) -> Account | None:
        """This credential replaces every other of the principal (a repeat is a no-op)."""

    async def rotate_callback_secret(
        self, customer_id: str, callback_secret: str, previous_until: datetime | None = None
    ) -> bool:
        """The new secret; the one it replaces is kept, to sign too until `previous_until`
        (None: it is dropped). False if there is no such customer."""


class ListTokens(Protocol):
    """The `next_token`s of lists, signed so that only cursors the task-store made come
    back (`cursors.CursorSigner`)."""

    def sign(self, cursor: ListCursor, customer_id: str, query: TaskListQuery) -> str: ...

    def verify(self, token: str, customer_id: str, query: TaskListQuery) -> ListCursor:
        """The cursor of a token signed for this customer and query's filters; otherwise
        `InvalidRequest` naming `next_token`."""

    def sign_scale(
        self, token: ScaleListToken, customer_id: str, query: ScaleTaskListQuery
    ) -> str: ...

    def verify_scale(
        self, token: str, customer_id: str, query: ScaleTaskListQuery
    ) -> ScaleListToken:
        """`/scale/v1`'s: its page, when signed for this customer and query's filters."""


class Outbox(Protocol):
    def publish_after_reply(self, task_id: str, events: Sequence[StampedEvent]) -> None:
        """Publish events already written to the task's outbox (or the batch's, for the
        batches' outbox), in the background."""


# Publishes `credential.changed` and returns once the broker has it (confirmed).
AnnounceCredentialChange = Callable[[CredentialChanged], Awaitable[None]]
# Publishes an event with no task behind it (persistent, confirmed).
PublishEvent = Callable[[Event], Awaitable[None]]


@dataclass(frozen=True)
class QualitySettings:
    """GOLD_RATE and WORKER_MIN_ACCURACY (docs/reference/contract.md §10)."""

    gold_rate: float = 0.1
    blocking: quality.BlockingParams = quality.DEFAULT_BLOCKING


@dataclass(frozen=True)
class Dependencies:
    """What every task-store handler gets (`handler_table.bind_handlers`)."""

    tasks: Tasks
    accounts: Accounts
    outbox: Outbox
    announce: AnnounceCredentialChange
    work_lease_seconds: float
    pool: Pool
    quality: Quality
    publish: PublishEvent
    # `/scale/v1` (docs/reference/contract.md §11): its task reads, projects, batches, and the
    # outbox of the batches' events.
    search: TaskSearch
    projects: Projects
    batches: Batches
    batch_outbox: Outbox
    list_tokens: ListTokens
    quality_settings: QualitySettings = QualitySettings()
    # A draw in [0, 1): whether a claim serves gold at GOLD_RATE (seeded in tests).
    draw: Callable[[], float] = random.random
    # The SHA-256 of the task-store's own HUMANTASK_DEMO_API_KEY: the one key
    # `customer.ensure` may make a customer for (None: the demo is off, it makes none).
    demo_customer_key_hash: str | None = None
