"""Domain events the task-store publishes on the `humantask.events` topic exchange.

Each carries an id (consumers deduplicate on it), a timestamp and a schema version. Task
events carry the full task, so that no consumer has to call back for more; a credential
event says whose credential changed, never the credential itself.
"""

from __future__ import annotations

import uuid
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..models import CallbackFormat, Task, Timestamp
from ..timeutil import utcnow
from ..tracing import current_trace_context
from .commands import Role


class Event(BaseModel):
    model_config = ConfigDict(frozen=True)

    routing_key: ClassVar[str]

    event_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    occurred_at: Timestamp = Field(default_factory=utcnow)
    schema_version: Literal[1] = 1
    request_id: str | None = None
    # The W3C trace context (`traceparent`, `tracestate`) of the change that raised the
    # event (the trace current when it was made), kept with it in the outbox so that the
    # relay publishes it in that trace (tracing.py).
    trace_context: dict[str, str] | None = Field(default_factory=current_trace_context)


class TaskEvent(Event):
    customer_id: str
    callback_format: CallbackFormat
    task: Task


class TaskCreated(TaskEvent):
    routing_key = "task.created"
    event_type: Literal["task.created"] = "task.created"


class TaskCompleted(TaskEvent):
    routing_key = "task.completed"
    event_type: Literal["task.completed"] = "task.completed"


class TaskCanceled(TaskEvent):
    routing_key = "task.canceled"
    event_type: Literal["task.canceled"] = "task.canceled"


CredentialChange = Literal["revoked", "key_rotated", "secret_rotated"]


class CredentialChanged(Event):
    """A customer's or worker's credential was revoked or rotated.

    Every gateway forgets what it cached for the principal (a revoked or rotated-away key
    is `401` at once) and every notifier forgets the customer's callback secret. It only
    ever makes a cache forget, so a stray or repeated one costs a lookup, nothing more.
    """

    routing_key = "credential.changed"
    event_type: Literal["credential.changed"] = "credential.changed"

    role: Role
    principal_id: str
    change: CredentialChange


EVENTS: dict[str, type[Event]] = {
    cls.routing_key: cls for cls in (TaskCreated, TaskCompleted, TaskCanceled, CredentialChanged)
}
