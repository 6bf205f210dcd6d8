"""Domain events the task-store publishes on the `humantask.events` topic exchange.

Each carries an id (consumers deduplicate on it), a timestamp, a schema version and the
full task, so that no consumer has to call back for more.
"""

from __future__ import annotations

import uuid
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..models import CallbackFormat, Task, Timestamp
from ..timeutil import utcnow


class Event(BaseModel):
    model_config = ConfigDict(frozen=True)

    routing_key: ClassVar[str]

    event_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    occurred_at: Timestamp = Field(default_factory=utcnow)
    schema_version: Literal[1] = 1
    request_id: str | None = None


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


EVENTS: dict[str, type[Event]] = {
    cls.routing_key: cls for cls in (TaskCreated, TaskCompleted, TaskCanceled)
}
