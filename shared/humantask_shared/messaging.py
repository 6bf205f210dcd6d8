"""RabbitMQ adapter: robust connections, confirmed publishing, consumers, replies.

What is declared on the broker (exchanges, queues, bindings) is in `topology.py`.
Commands are request/reply: `command_client` sends them, `command_server` answers them.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import aio_pika
import orjson
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from aio_pika.exceptions import AMQPException
from aiormq.exceptions import ChannelInvalidStateError
from pamqp.exceptions import PAMQPException
from prometheus_client import Counter

from .logging import request_id_var
from .messages.events import Event, EventStamp, StampedEvent
from .retrying import until_it_works
from .timeutil import utcnow
from .tracing import current_trace_context

log = logging.getLogger(__name__)

DEAD_LETTERED = Counter(
    "humantask_dead_lettered_messages_total",
    "Messages this process rejected into a dead-letter queue",
    ["queue"],
)

REQUEST_ID_HEADER = "x-request-id"
DEADLINE_HEADER = "x-deadline"  # unix milliseconds after which nobody waits for the reply

# What a broker hiccup looks like from the client's side.
BROKER_ERRORS = (
    AMQPException,
    PAMQPException,
    ChannelInvalidStateError,  # publishing while the robust connection reconnects
    ConnectionError,
    asyncio.TimeoutError,
)


class PoisonMessage(Exception):
    """A message that can never be handled; it goes to the dead-letter queue."""


async def connect_broker(url: str, connection_name: str) -> AbstractRobustConnection:
    """A robust connection (it reconnects by itself); retries with backoff at start."""
    connection = await until_it_works(
        lambda: aio_pika.connect_robust(
            url, client_properties={"connection_name": connection_name}
        ),
        (*BROKER_ERRORS, OSError),
        "RabbitMQ is not reachable",
    )
    log.info("connected to RabbitMQ")
    return connection


async def broker_context(url: str, connection_name: str) -> AsyncIterator[AbstractRobustConnection]:
    connection = await connect_broker(url, connection_name)
    try:
        yield connection
    finally:
        await connection.close()


async def broker_connected(connection: AbstractRobustConnection) -> bool:
    """Readiness: the robust connection is up (not closed, not reconnecting)."""
    return connection.connected.is_set() and not connection.is_closed


async def open_channel(
    connection: AbstractConnection, prefetch_count: int | None = None
) -> AbstractChannel:
    """A channel with publisher confirms: a publish returns once the broker has it, and
    fails at once when no queue is bound for it (mandatory messages come back)."""
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    if prefetch_count is not None:
        await channel.set_qos(prefetch_count=prefetch_count)
    return channel


def encode(payload: Any) -> bytes:
    return orjson.dumps(payload)


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


async def publish_event(exchange: AbstractExchange, event: Event, timeout: float = 10) -> None:
    """Stamped now, persistent and confirmed: returns only once the broker has it. Not
    mandatory: an event nobody subscribes to yet is not an error."""
    stamped = stamp(event, utcnow())
    message = aio_pika.Message(
        body=stamped.body.encode(),
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=stamped.stamp.event_id,
        type=event.routing_key,
        headers={REQUEST_ID_HEADER: event.request_id or ""},
    )
    await exchange.publish(message, routing_key=event.routing_key, mandatory=False, timeout=timeout)


def message_request_id(message: AbstractIncomingMessage) -> str | None:
    value = (message.headers or {}).get(REQUEST_ID_HEADER)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value if isinstance(value, str) and value else None  # not a number, a table...


Handler = Callable[[AbstractIncomingMessage], Awaitable[None]]


class Consumer:
    """Runs `handler` for each message of a queue; acks only once the handler returned.

    - `PoisonMessage`: rejected without requeue, so the queue dead-letters it.
    - A broker or database hiccup (`transient_errors`): requeued after a pause.
    - Anything else is a bug for that message: logged and dead-lettered, not retried forever.
    `stop()` stops taking messages and waits for those in hand (graceful SIGTERM).
    """

    def __init__(
        self,
        queue: AbstractQueue,
        handler: Handler,
        transient_errors: tuple[type[BaseException], ...] = (),
        retry_pause_seconds: float = 1.0,
    ) -> None:
        self._queue = queue
        self._handler = handler
        self._transient_errors: tuple[type[BaseException], ...] = (
            *BROKER_ERRORS,
            *transient_errors,
        )
        self._retry_pause_seconds = retry_pause_seconds
        self._in_flight: set[asyncio.Task[Any]] = set()
        self._consumer_tag: str | None = None
        self._stopping = False

    async def start(self) -> None:
        self._consumer_tag = await self._queue.consume(self._on_message)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        if self._stopping:
            await message.nack(requeue=True)
            return
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        token = request_id_var.set(message_request_id(message))
        try:
            await self._handle(message)
        finally:
            request_id_var.reset(token)
            if task is not None:
                self._in_flight.discard(task)

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        try:
            await self._handler(message)
        except PoisonMessage as exc:
            log.error(
                "dead-lettering a message that cannot be handled",
                extra={"queue": self._queue.name, "reason": str(exc)},
            )
            DEAD_LETTERED.labels(self._queue.name).inc()
            await self._settle(message.reject(requeue=False))
        except self._transient_errors as exc:
            log.warning(
                "requeueing a message after a transient error",
                extra={"queue": self._queue.name, "error": repr(exc)},
            )
            await asyncio.sleep(self._retry_pause_seconds)
            await self._settle(message.nack(requeue=True))
        except Exception:
            log.exception(
                "dead-lettering a message whose handler failed",
                extra={"queue": self._queue.name, "type": message.type},
            )
            DEAD_LETTERED.labels(self._queue.name).inc()
            await self._settle(message.reject(requeue=False))
        else:
            await self._settle(message.ack())

    @staticmethod
    async def _settle(settlement: Awaitable[None]) -> None:
        # If the channel died meanwhile the broker requeues the message by itself.
        try:
            await settlement
        except BROKER_ERRORS as exc:
            log.warning("could not settle a message", extra={"error": repr(exc)})

    async def stop(self, grace_seconds: float) -> None:
        self._stopping = True
        if self._consumer_tag is not None:
            try:
                await self._queue.cancel(self._consumer_tag)
            except BROKER_ERRORS as exc:
                log.warning("could not cancel consumer", extra={"error": repr(exc)})
        if self._in_flight:
            log.info("draining in-flight messages", extra={"count": len(self._in_flight)})
            await asyncio.wait(set(self._in_flight), timeout=grace_seconds)


def message_deadline_passed(message: AbstractIncomingMessage) -> bool:
    deadline = (message.headers or {}).get(DEADLINE_HEADER)
    return isinstance(deadline, int) and deadline < time.time() * 1000


async def reply(channel: AbstractChannel, message: AbstractIncomingMessage, body: bytes) -> None:
    """Answer a command on its caller's reply queue (through the default exchange).

    Not mandatory: a caller that went away takes its reply queue with it, and that must
    not turn into an error that requeues the command forever."""
    if not message.reply_to:
        return
    await channel.default_exchange.publish(
        aio_pika.Message(
            body=body,
            content_type="application/json",
            correlation_id=message.correlation_id,
            headers={REQUEST_ID_HEADER: message_request_id(message) or ""},
        ),
        routing_key=message.reply_to,
        mandatory=False,
    )
