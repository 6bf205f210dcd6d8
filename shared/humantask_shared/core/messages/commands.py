"""Commands one service sends another, each declared with the result it is answered
with: `class CreateTask(Command[Task])`.

Most go from the gateway to the task-store; the notifier asks the task-store for a
customer's callback secret, the gateway asks the notifier for a callback log, and the
operator's `humantask-admin` asks the task-store to create, list, revoke and rotate
credentials. A command's `senders` are the services allowed to send it (the receiver
checks the message's broker-validated `user_id`, see `broker_access`); which service
answers it is said once, by the queue that carries it (`core/topology.py`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..models import (
    TASK_ID_PATTERN,
    CallbackAttempt,
    CreateTaskRequest,
    Task,
    TaskListQuery,
    TaskPage,
    new_task_id,
)
from ..worker_models import ClaimResult, CompletedWork, WorkReleased
from .base import Command

Role = Literal["customer", "worker"]

# An operator's name for a customer or worker.
AccountName = Annotated[str, Field(min_length=1, max_length=200)]


class Principal(BaseModel):
    """Who a credential belongs to."""

    model_config = ConfigDict(frozen=True)

    principal_id: str
    role: Role


class Authenticate(Command[Principal]):
    """Look up a credential by its SHA-256; the secret itself never crosses the broker."""

    routing_key = "auth.authenticate"
    persistent = False

    credential_hash: str
    role: Role


class EnsureCustomer(Command[Principal]):
    """Create the customer owning this credential unless it exists (the demo key)."""

    routing_key = "customer.ensure"

    customer_name: str
    credential_hash: str


class CreateTask(Command[Task]):
    """The sender picks the new task's id, so a redelivered command finds the task it
    already made by `_id` (idempotent without another lookup)."""

    routing_key = "task.create"

    task_id: str = Field(default_factory=new_task_id, pattern=TASK_ID_PATTERN.pattern)
    customer_id: str
    request: CreateTaskRequest


class GetTask(Command[Task]):
    routing_key = "task.get"
    persistent = False

    customer_id: str
    task_id: str


class ListTasks(Command[TaskPage]):
    routing_key = "task.list"
    persistent = False

    customer_id: str
    query: TaskListQuery


class CancelTask(Command[Task]):
    routing_key = "task.cancel"

    customer_id: str
    task_id: str


class ClaimWork(Command[ClaimResult]):
    """Lease the oldest pending task to a worker, or give back the one it already holds."""

    routing_key = "work.claim"

    worker_id: str


class SubmitWork(Command[CompletedWork]):
    """Complete a task the worker holds the live lease on, with one of its categories."""

    routing_key = "work.submit"

    worker_id: str
    task_id: str
    category: str


class ReleaseWork(Command[WorkReleased]):
    """Give a lease back; the task returns to the pool at once."""

    routing_key = "work.release"

    worker_id: str
    task_id: str


class WorkerQuality(BaseModel):
    """One worker as a customer sees it (`GET /v1/quality/workers`): a pseudonym, never
    the worker's id (docs/reference/contract.md §10)."""

    model_config = ConfigDict(frozen=True)

    worker: str
    answers: int
    gold_answers: int
    gold_correct: int
    accuracy: float
    blocked: bool


class WorkerQualityList(BaseModel):
    workers: list[WorkerQuality]


class ListWorkerQuality(Command[WorkerQualityList]):
    """The customer's view of the workers who answered any of its tasks."""

    routing_key = "quality.workers"
    persistent = False

    customer_id: str


class CallbackSecret(BaseModel):
    """A customer's callback signing secret and, during a rotation's overlap window, the
    one it replaced and when that stops signing (callbacks carry both signatures until
    then: docs/operations/accounts.md)."""

    model_config = ConfigDict(frozen=True)

    callback_secret: str
    previous_secret: str | None = None
    previous_until: datetime | None = None


class GetCallbackSecret(Command[CallbackSecret]):
    """The notifier asks the task-store (which owns customers) for the key to sign with."""

    routing_key = "customer.callback_secret"
    persistent = False
    senders = frozenset({"notifier"})

    customer_id: str


class CallbackLog(BaseModel):
    """A task's callback attempts, oldest first."""

    attempts: list[CallbackAttempt]


class ListCallbacks(Command[CallbackLog]):
    """The gateway asks the notifier (which owns delivery records) for a task's log."""

    routing_key = "callback.list"
    persistent = False

    customer_id: str
    task_id: str


class CallbackRedelivery(BaseModel):
    """A redelivery on its way: the task's callback is sent again as this delivery."""

    model_config = ConfigDict(frozen=True)

    task_id: str
    delivery: int


# Whose callback a delivery is: a task's id, or a batch's (`batch-<batch id>`).
CALLBACK_SUBJECT_PATTERN = r"^(batch-)?[0-9a-f]{24}$"


class RedeliverCallback(Command[CallbackRedelivery]):
    """Deliver a completed task's callback again: one new delivery with its own one retry.
    The gateway sends it for the task's customer; the operator's `humantask-admin` may
    leave `customer_id` out (any customer's task), and name a completed batch's callback
    (`batch-<batch id>`, as `callbacks failed` lists it)."""

    routing_key = "callback.redeliver"
    senders = frozenset({"gateway", "admin"})

    task_id: str = Field(pattern=CALLBACK_SUBJECT_PATTERN)
    customer_id: str | None = None


class FailedCallback(BaseModel):
    """A delivery whose attempts all failed and that no later delivery of its task
    replaced: what `humantask-admin callbacks failed` lists."""

    model_config = ConfigDict(frozen=True)

    task_id: str
    customer_id: str
    delivery: int
    callback_url: str
    failed_at: datetime  # when its last attempt started
    status_code: int | None = None
    error: str | None = None


class FailedCallbacks(BaseModel):
    callbacks: list[FailedCallback]


MAX_FAILED_CALLBACKS = 10_000


class ListFailedCallbacks(Command[FailedCallbacks]):
    """The deliveries that failed since a time, oldest first (the operator's)."""

    routing_key = "callback.list_failed"
    persistent = False
    senders = frozenset({"admin"})

    since: datetime
    customer_id: str | None = None
    limit: int = Field(default=1000, ge=1, le=MAX_FAILED_CALLBACKS)


# -- credentials: what `humantask-admin` asks of the task-store -------------------------
# API keys and worker tokens never cross the broker: the admin tool makes them and sends
# their SHA-256. Callback secrets are made by the task-store and travel only in replies.


class CreatedCustomer(BaseModel):
    model_config = ConfigDict(frozen=True)

    customer_id: str
    callback_secret: str


class CreateCustomer(Command[CreatedCustomer]):
    """A new customer whose API key has this SHA-256; the task-store makes its secret."""

    routing_key = "customer.create"
    senders = frozenset({"admin"})

    customer_name: AccountName
    credential_hash: str


class CreatedWorker(BaseModel):
    model_config = ConfigDict(frozen=True)

    worker_id: str


class CreateWorker(Command[CreatedWorker]):
    """A new worker whose token has this SHA-256."""

    routing_key = "worker.create"
    senders = frozenset({"admin"})

    worker_name: AccountName
    credential_hash: str


class Account(BaseModel):
    """A customer or worker as an operator sees it: never a key, token or secret."""

    model_config = ConfigDict(frozen=True)

    role: Role
    principal_id: str
    name: str
    created_at: datetime
    revoked_at: datetime | None = None


class AccountList(BaseModel):
    accounts: list[Account]


class ListAccounts(Command[AccountList]):
    """Every customer (or worker), oldest first."""

    routing_key = "account.list"
    persistent = False
    senders = frozenset({"admin"})

    role: Role


class RevokeAccount(Command[Account]):
    """The principal's key or token stops working, for good; a no-op once revoked."""

    routing_key = "account.revoke"
    senders = frozenset({"admin"})

    role: Role
    principal_id: str


class RotateCredential(Command[Account]):
    """The principal's key or token becomes the one with this SHA-256; the old one
    stops working. A revoked principal stays revoked (`409`)."""

    routing_key = "account.rotate_credential"
    senders = frozenset({"admin"})

    role: Role
    principal_id: str
    credential_hash: str


class CustomerWeight(BaseModel):
    """A customer's share of the worker pool, against the others' (default 1)."""

    model_config = ConfigDict(frozen=True)

    customer_id: str
    weight: float


class SetCustomerWeight(Command[CustomerWeight]):
    """Serve the customer's tasks in proportion to this weight (docs/reference/contract.md §6)."""

    routing_key = "customer.set_weight"
    senders = frozenset({"admin"})

    customer_id: str
    weight: Annotated[float, Field(gt=0, le=1000)]


# How long callbacks carry the replaced secret's signature too, unless the operator
# says otherwise (`humantask-admin customers rotate-secret ID --overlap 24h`).
DEFAULT_SECRET_OVERLAP_SECONDS = 24 * 3600
MAX_SECRET_OVERLAP_SECONDS = 30 * 24 * 3600


class RotateCallbackSecret(Command[CallbackSecret]):
    """A new callback secret for the customer; callbacks signed from now on use it and,
    for `overlap_seconds`, the secret it replaced too (0: the old one stops at once)."""

    routing_key = "customer.rotate_callback_secret"
    senders = frozenset({"admin"})

    customer_id: str
    overlap_seconds: int = Field(
        default=DEFAULT_SECRET_OVERLAP_SECONDS, ge=0, le=MAX_SECRET_OVERLAP_SECONDS
    )
