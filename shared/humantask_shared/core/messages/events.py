"""Domain events the task-store publishes on the `humantask.events` topic exchange.

An event says what happened, and is built where it happened (the task-store's domain)
from that alone; the runtime stamps it as it leaves (`envelope.py`). Task events carry
the full task, so that no consumer has to call back for more; a credential event says
whose credential changed, never the credential itself.
"""

from __future__ import annotations

from typing import Literal

from ..models import CallbackFormat, Task, TaskStatus
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


class TaskCanceled(TaskEvent):
    routing_key = "task.canceled"


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
    """A worker answered a task (docs/reference/api.md §10): written with the answer in the
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
    """A worker's gold record made it blocked for a customer (docs/reference/api.md §10):
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
    CredentialChanged,
    TaskAnswered,
    WorkerScored,
    WorkerBlocked,
)
