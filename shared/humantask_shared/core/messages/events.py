"""Domain events the task-store publishes on the `humantask.events` topic exchange.

An event says what happened, and is built where it happened (the task-store's domain)
from that alone: no clock, no random id, no trace is read to build one. What says which
event it is and when, its `EventStamp` (an id consumers deduplicate on, the time, the
schema version, the trace it was raised in), is added by the runtime as the event
leaves: when it is written to a task's outbox, or published. On the wire an event is one
flat JSON object: its stamp, its `event_type` (its routing key) and its own fields.

Task events carry the full task, so that no consumer has to call back for more; a
credential event says whose credential changed, never the credential itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any, ClassVar, Literal

import orjson
from pydantic import BaseModel, ConfigDict, create_model

from ..models import CallbackFormat, Task, Timestamp
from .commands import Role


class Event(BaseModel):
    model_config = ConfigDict(frozen=True)

    routing_key: ClassVar[str]

    request_id: str | None = None


class EventStamp(BaseModel):
    """Which event and when: added by the runtime when the event leaves its service."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    occurred_at: Timestamp
    schema_version: Literal[1] = 1
    # The W3C trace context (`traceparent`, `tracestate`) of the change that raised the
    # event, kept with it in the outbox so that the relay publishes it in that trace.
    trace_context: dict[str, str] | None = None


@dataclass(frozen=True)
class StampedEvent:
    """An event and its stamp: what an outbox holds and what is published."""

    event: Event
    stamp: EventStamp

    @property
    def routing_key(self) -> str:
        return self.event.routing_key

    @cached_property
    def body(self) -> str:
        """The event on the wire, as an outbox keeps it (and publishes it) byte for byte:
        the stamp, the event's fields (the task in it is the customer's view, without the
        fields that do not apply) and `event_type`."""
        stamp = self.stamp.model_dump(mode="json", exclude_none=True)
        trace_context = stamp.pop("trace_context", None)
        fields: dict[str, Any] = stamp
        own = self.event.model_dump(mode="json", exclude_none=True)
        if "request_id" in own:
            fields["request_id"] = own.pop("request_id")
        if trace_context is not None:
            fields["trace_context"] = trace_context
        fields |= own
        fields["event_type"] = self.event.routing_key
        return orjson.dumps(fields).decode()


@cache
def wire_model(event: type[Event]) -> type[BaseModel]:
    """The model of `event` as it travels (what `StampedEvent.body` writes): its stamp,
    its own fields and `event_type`, in that order. The AsyncAPI contract shows it."""
    stamp, own = EventStamp.model_fields, event.model_fields
    fields: dict[str, Any] = {
        **{
            name: (info.annotation, info) for name, info in stamp.items() if name != "trace_context"
        },
        "request_id": (own["request_id"].annotation, own["request_id"]),
        "trace_context": (stamp["trace_context"].annotation, stamp["trace_context"]),
        **{name: (info.annotation, info) for name, info in own.items() if name != "request_id"},
        "event_type": (Literal[event.routing_key], event.routing_key),
    }
    return create_model(event.__name__, __doc__=event.__doc__, **fields)


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


EVENTS: dict[str, type[Event]] = {
    cls.routing_key: cls for cls in (TaskCreated, TaskCompleted, TaskCanceled, CredentialChanged)
}
