"""Commands one service sends another, each answered with a `Reply`.

Most go from the gateway to the task-store; the notifier asks the task-store for a
customer's callback secret, the gateway asks the notifier for a callback log, and the
operator's `humantask-admin` asks the task-store to create, list, revoke and rotate
credentials. Each command's `name` is its AMQP routing key and `type` property; its
`senders` are the services allowed to send it (the receiver checks the message's
broker-validated `user_id`, see `broker_access`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

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

Role = Literal["customer", "worker"]
# Who sends commands; each maps to a broker user (`broker_access.BrokerIdentities`).
Sender = Literal["gateway", "notifier", "admin"]

# An operator's name for a customer or worker.
AccountName = Annotated[str, Field(min_length=1, max_length=200)]


class Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: ClassVar[str]
    result_model: ClassVar[type[BaseModel] | None] = None
    # Who may send it; the receiver refuses it from anyone else.
    senders: ClassVar[frozenset[Sender]] = frozenset({"gateway"})
    # Whether the broker writes it to disk. A query lost in a broker crash costs only
    # the caller's retry (it gets a 503), so queries skip the disk.
    persistent: ClassVar[bool] = True


class Principal(BaseModel):
    """Who a credential belongs to."""

    model_config = ConfigDict(frozen=True)

    principal_id: str
    role: Role


class Authenticate(Command):
    """Look up a credential by its SHA-256; the secret itself never crosses the broker."""

    name = "auth.authenticate"
    persistent = False
    result_model = Principal

    credential_hash: str
    role: Role


class EnsureCustomer(Command):
    """Create the customer owning this credential unless it exists (the demo key)."""

    name = "customer.ensure"
    result_model = Principal

    customer_name: str
    credential_hash: str


class CreateTask(Command):
    """The sender picks the new task's id, so a redelivered command finds the task it
    already made by `_id` (idempotent without another lookup)."""

    name = "task.create"
    result_model = Task

    task_id: str = Field(default_factory=new_task_id, pattern=TASK_ID_PATTERN.pattern)
    customer_id: str
    request: CreateTaskRequest


class GetTask(Command):
    name = "task.get"
    persistent = False
    result_model = Task

    customer_id: str
    task_id: str


class ListTasks(Command):
    name = "task.list"
    persistent = False
    result_model = TaskPage

    customer_id: str
    query: TaskListQuery


class CancelTask(Command):
    name = "task.cancel"
    result_model = Task

    customer_id: str
    task_id: str


class ClaimWork(Command):
    """Lease the oldest pending task to a worker, or give back the one it already holds."""

    name = "work.claim"
    result_model = ClaimResult

    worker_id: str


class SubmitWork(Command):
    """Complete a task the worker holds the live lease on, with one of its categories."""

    name = "work.submit"
    result_model = CompletedWork

    worker_id: str
    task_id: str
    category: str


class ReleaseWork(Command):
    """Give a lease back; the task returns to the pool at once."""

    name = "work.release"
    result_model = WorkReleased

    worker_id: str
    task_id: str


class CallbackSecret(BaseModel):
    """A customer's callback signing secret."""

    model_config = ConfigDict(frozen=True)

    callback_secret: str


class GetCallbackSecret(Command):
    """The notifier asks the task-store (which owns customers) for the key to sign with."""

    name = "customer.callback_secret"
    persistent = False
    result_model = CallbackSecret
    senders = frozenset({"notifier"})

    customer_id: str


class CallbackLog(BaseModel):
    """A task's callback attempts, oldest first."""

    attempts: list[CallbackAttempt]


class ListCallbacks(Command):
    """The gateway asks the notifier (which owns delivery records) for a task's log."""

    name = "callback.list"
    persistent = False
    result_model = CallbackLog

    customer_id: str
    task_id: str


# -- credentials: what `humantask-admin` asks of the task-store -------------------------
# API keys and worker tokens never cross the broker: the admin tool makes them and sends
# their SHA-256. Callback secrets are made by the task-store and travel only in replies.


class CreatedCustomer(BaseModel):
    model_config = ConfigDict(frozen=True)

    customer_id: str
    callback_secret: str


class CreateCustomer(Command):
    """A new customer whose API key has this SHA-256; the task-store makes its secret."""

    name = "customer.create"
    result_model = CreatedCustomer
    senders = frozenset({"admin"})

    customer_name: AccountName
    credential_hash: str


class CreatedWorker(BaseModel):
    model_config = ConfigDict(frozen=True)

    worker_id: str


class CreateWorker(Command):
    """A new worker whose token has this SHA-256."""

    name = "worker.create"
    result_model = CreatedWorker
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


class ListAccounts(Command):
    """Every customer (or worker), oldest first."""

    name = "account.list"
    persistent = False
    result_model = AccountList
    senders = frozenset({"admin"})

    role: Role


class RevokeAccount(Command):
    """The principal's key or token stops working, for good; a no-op once revoked."""

    name = "account.revoke"
    result_model = Account
    senders = frozenset({"admin"})

    role: Role
    principal_id: str


class RotateCredential(Command):
    """The principal's key or token becomes the one with this SHA-256; the old one
    stops working. A revoked principal stays revoked (`409`)."""

    name = "account.rotate_credential"
    result_model = Account
    senders = frozenset({"admin"})

    role: Role
    principal_id: str
    credential_hash: str


class RotateCallbackSecret(Command):
    """A new callback secret for the customer; callbacks signed from now on use it."""

    name = "customer.rotate_callback_secret"
    result_model = CallbackSecret
    senders = frozenset({"admin"})

    customer_id: str


COMMANDS: dict[str, type[Command]] = {
    cls.name: cls
    for cls in (
        Authenticate,
        EnsureCustomer,
        CreateTask,
        GetTask,
        ListTasks,
        CancelTask,
        GetCallbackSecret,
        ListCallbacks,
        ClaimWork,
        SubmitWork,
        ReleaseWork,
        CreateCustomer,
        CreateWorker,
        ListAccounts,
        RevokeAccount,
        RotateCredential,
        RotateCallbackSecret,
    )
}


class ReplyError(BaseModel):
    code: str
    message: str


class Reply(BaseModel):
    """The answer to a command: a result or an error, never both."""

    ok: bool
    result: Any = None
    error: ReplyError | None = None
