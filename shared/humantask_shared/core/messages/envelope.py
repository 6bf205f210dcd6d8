"""What travels around a message: an event's stamp, and a command's reply.

An event leaves its service stamped (`runtime.publishing.stamp`): an id consumers
deduplicate on, the time, the schema version, the trace it was raised in. On the wire it
is one flat JSON object: the stamp, the event's own fields and `event_type` (its routing
key), as `StampedEvent.body` writes it and an outbox keeps it, byte for byte. A
consumer reads the event from the same body (the stamp's fields are ignored there).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, create_model

from ..models import Timestamp
from .base import Event


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
        """The event on the wire: the stamp, the event's fields (a task in it is the
        customer's view, without the fields that do not apply) and `event_type`."""
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


class ReplyError(BaseModel):
    code: str
    message: str


class Reply(BaseModel):
    """The answer to a command: a result or an error, never both."""

    ok: bool
    result: Any = None
    error: ReplyError | None = None
