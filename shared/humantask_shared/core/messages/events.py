"""Domain events the task-store publishes on the `humantask.events` topic exchange.

An event says what happened, and is built where it happened (the task-store's domain)
from that alone; the runtime stamps it as it leaves (`envelope.py`). Task events carry
the full task, so that no consumer has to call back for more; a credential event says
whose credential changed, never the credential itself.
"""

from __future__ import annotations

from typing import Literal

from ..models import CallbackFormat, Task
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


# Every event there is, whether a queue carries it yet or not (the contract lists each).
EVENTS: tuple[type[Event], ...] = (TaskCreated, TaskCompleted, TaskCanceled, CredentialChanged)
