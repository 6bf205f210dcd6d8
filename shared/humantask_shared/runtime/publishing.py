"""Sending messages: the one way a message is built, and the one publish helper for
persistent, confirmed messages (events, the outbox's relay, a callback's retry).

An event is stamped here as it leaves (`stamp`): a new id, the time, the trace it was
raised in. Its domain built it without reading any of them.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import aio_pika
import orjson
from aio_pika.abc import AbstractExchange

from ..core.messages.base import Event
from ..core.messages.envelope import EventStamp, StampedEvent
from ..core.timeutil import utcnow
from .broker import REQUEST_ID_HEADER
from .tracing import current_trace_context

# How long a publish waits for the broker's confirmation.
PUBLISH_TIMEOUT_SECONDS = 10.0


def encode(payload: Any) -> bytes:
    return orjson.dumps(payload)


def outgoing(
    body: bytes,
    message_type: str | None,
    *,
    persistent: bool,
    message_id: str | None = None,
    request_id: str | None = None,
    headers: Mapping[str, Any] | None = None,
    **properties: Any,
) -> aio_pika.Message:
    """A JSON message of `message_type` (its AMQP `type`) carrying `request_id` (the
    `x-request-id` header, empty when there is none). `persistent`: the broker writes it
    to disk. `properties` are AMQP properties (`correlation_id`, `reply_to`...)."""
    return aio_pika.Message(
        body=body,
        content_type="application/json",
        delivery_mode=(
            aio_pika.DeliveryMode.PERSISTENT if persistent else aio_pika.DeliveryMode.NOT_PERSISTENT
        ),
        message_id=message_id,
        type=message_type,
        headers={REQUEST_ID_HEADER: request_id or "", **(headers or {})},
        **properties,
    )


async def publish(
    exchange: AbstractExchange,
    routing_key: str,
    body: bytes,
    *,
    message_type: str,
    message_id: str,
    request_id: str | None,
    mandatory: bool,
    timeout: float = PUBLISH_TIMEOUT_SECONDS,
    headers: Mapping[str, Any] | None = None,
) -> None:
    """Publish a persistent message and return once the broker has it (the channel
    confirms: `broker.open_channel`). `mandatory`: refused at once when no queue is
    bound for it; an event is not (nobody may subscribe to it yet). `headers`: more
    than the request id (a replayed dead letter keeps its trace context)."""
    message = outgoing(
        body,
        message_type,
        persistent=True,
        message_id=message_id,
        request_id=request_id,
        headers=headers,
    )
    await exchange.publish(message, routing_key=routing_key, mandatory=mandatory, timeout=timeout)


def stamp(event: Event, now: datetime) -> StampedEvent:
    """`event` as it leaves: a new id, `now`, and the trace it was raised in (the current
    one). Consumers deduplicate on the id, so an event is stamped once, before it is
    written to an outbox or published, and republished only as it was stamped."""
    return StampedEvent(
        event,
        EventStamp(
            event_id=uuid.uuid4().hex, occurred_at=now, trace_context=current_trace_context()
        ),
    )


def stamp_all(events: Sequence[Event], now: datetime) -> list[StampedEvent]:
    return [stamp(event, now) for event in events]


async def publish_event(exchange: AbstractExchange, event: Event) -> None:
    """Stamped now, persistent and confirmed (not mandatory)."""
    await publish_stamped(exchange, stamp(event, utcnow()))


async def publish_stamped(exchange: AbstractExchange, event: StampedEvent) -> None:
    await publish(
        exchange,
        event.routing_key,
        event.body.encode(),
        message_type=event.routing_key,
        message_id=event.stamp.event_id,
        request_id=event.event.request_id,
        mandatory=False,
    )
