"""Domain events the task-store publishes on the `humantask.events` topic exchange.

An event says what happened, and is built where it happened (the task-store's domain)
from that alone; the runtime stamps it as it leaves (`envelope.py`). Task events carry
the full task, so that no consumer has to call back for more; a credential event says
whose credential changed, never the credential itself.
"""

from __future__ import annotations

from typing import Literal

from ..models import CallbackFormat, Task, TaskStatus
from ..scale_models import Batch, BatchCounts
from .base import Event
from .commands import Role


class TaskEvent(Event):
    customer_id: str
    callback_format: CallbackFormat
    task: Task


class TaskCreated(TaskEvent):
    routing_key = "task.created"


class TaskCompleted(TaskEvent):
    routing_key = "task.completed"

    # Which completion of the task this is: a task its customer rejects in an audit
    # (docs/reference/contract.md §11) completes again, and is called back again.
    completion: int = 1


class TaskCanceled(TaskEvent):
    routing_key = "task.canceled"


class TaskReopened(TaskEvent):
    """A completed task its customer rejected in an audit: pending again, for a worker
    who has not answered it."""

    routing_key = "task.reopened"


class BatchTaskSettled(Event):
    """A task of a batch was completed or canceled: the batch may be done. Raised with
    the task's change (in its outbox), for the task-store's batch progress."""

    routing_key = "batch.task_settled"

    customer_id: str
    batch: str
    task_id: str


class BatchEvent(Event):
    customer_id: str
    # The batch's own id (its name is the customer's): what its callback is keyed by.
    batch_id: str
    batch: Batch


class BatchFinalized(BatchEvent):
    """No more tasks join the batch; it completes once its tasks are done."""

    routing_key = "batch.finalized"


class BatchCompleted(BatchEvent):
    """Every task of a finalized batch is completed or canceled: its callback is due.
    Raised once per batch (a conditional write decides it)."""

    routing_key = "batch.completed"

    counts: BatchCounts


CredentialChange = Literal["revoked", "key_rotated", "secret_rotated"]


class CredentialChanged(Event):
    """A customer's or worker's credential was revoked or rotated.

    Every gateway forgets what it cached for the principal (a revoked or rotated-away key
    is `401` at once) and every notifier forgets the customer's callback secret. It only
    ever makes a cache forget, so a stray or repeated one costs a lookup, nothing more.
    """

    routing_key = "credential.changed"

    role: Role
    principal_id: str
    change: CredentialChange


class TaskAnswered(Event):
    """A worker answered a task (docs/reference/contract.md §10): written with the answer in the
    task's outbox. The task-store's own quality queue hears it and counts the answer for
    the worker (and scores it when the task is gold). It names the worker: it is for the
    task-store, never for a customer, and no other service may read it."""

    routing_key = "task.answered"

    customer_id: str
    task_id: str
    worker_id: str
    category: str
    # Whether it counts towards the task's completion (a blocked worker's does not).
    counted: bool
    gold: bool = False
    # The task as this answer left it.
    status: TaskStatus = "pending"


class WorkerScored(Event):
    """A worker's gold answer was scored: its gold record for this customer now."""

    routing_key = "worker.scored"

    customer_id: str
    worker_id: str
    task_id: str
    correct: bool
    gold_answers: int
    gold_correct: int
    accuracy: float
    blocked: bool


class WorkerBlocked(Event):
    """A worker's gold record made it blocked for a customer (docs/reference/contract.md §10):
    it gets none of the customer's tasks any more, and its answers on the customer's open
    tasks stop counting. The task-store's quality queue hears it and takes those answers
    out of their tasks' counts (idempotent: hearing it twice changes nothing more)."""

    routing_key = "worker.blocked"

    customer_id: str
    worker_id: str
    gold_answers: int
    gold_correct: int
    accuracy: float


# Every event there is, whether a queue carries it yet or not (the contract lists each).
EVENTS: tuple[type[Event], ...] = (
    TaskCreated,
    TaskCompleted,
    TaskCanceled,
    TaskReopened,
    BatchTaskSettled,
    BatchFinalized,
    BatchCompleted,
    CredentialChanged,
    TaskAnswered,
    WorkerScored,
    WorkerBlocked,
)
