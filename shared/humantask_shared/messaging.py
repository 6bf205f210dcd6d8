"""RabbitMQ adapter: topology, robust connections, confirmed publishing, consumers, RPC.

Topology (every service declares what it uses; declarations are idempotent):

- `humantask.commands` (direct): commands to the task-store, routed by command name to
  `taskstore.commands`.
- `humantask.notifier-commands` (direct): the commands the notifier answers, routed to
  `notifier.commands`. An exchange of their own, so that the notifier's broker user needs
  no read access to `humantask.commands` (it could bind a queue there and see, and answer,
  the gateway's commands to the task-store).
- `humantask.events` (topic): domain events, routed by `task.created` and friends.
- `humantask.dead-letter` (direct): each work queue dead-letters into `<queue>.dead-letter`,
  a queue kept for inspection and never consumed, so bounded (`DEAD_LETTER_ARGUMENTS`:
  at most 10,000 messages or 100 MiB, the oldest dropped first, each kept 7 days); its
  depth is the gauge `humantask_dead_letter_messages` (`dead_letters.py`).

Commands are request/reply: the caller names its own reply queue and a correlation id,
and the command expires when the caller stops waiting for it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import aio_pika
import orjson
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
)
from aio_pika.exceptions import AMQPException, ChannelPreconditionFailed
from aiormq.exceptions import ChannelInvalidStateError, DeliveryError
from pamqp.exceptions import PAMQPException
from prometheus_client import Counter

from .errors import Unavailable
from .logging import request_id_var
from .messages.commands import Command
from .messages.events import Event

log = logging.getLogger(__name__)

COMMANDS_EXCHANGE = "humantask.commands"
NOTIFIER_COMMANDS_EXCHANGE = "humantask.notifier-commands"
EVENTS_EXCHANGE = "humantask.events"
DEAD_LETTER_EXCHANGE = "humantask.dead-letter"
TASKSTORE_COMMANDS_QUEUE = "taskstore.commands"
NOTIFIER_COMPLETIONS_QUEUE = "notifier.task-completed"
NOTIFIER_COMMANDS_QUEUE = "notifier.commands"

# Dead-letter queues are bounded, so that a flood of messages no service can handle
# cannot fill the broker. RabbitMQ refuses to redeclare an existing queue with other
# arguments (PRECONDITION_FAILED): changing these means deleting the old queues first
# (README, "Upgrading").
DEAD_LETTER_MAX_MESSAGES = 10_000
DEAD_LETTER_MAX_BYTES = 100 * 1024 * 1024
DEAD_LETTER_TTL_MS = 7 * 24 * 60 * 60 * 1000
DEAD_LETTER_ARGUMENTS: dict[str, Any] = {
    "x-max-length": DEAD_LETTER_MAX_MESSAGES,
    "x-max-length-bytes": DEAD_LETTER_MAX_BYTES,
    "x-overflow": "drop-head",
    "x-message-ttl": DEAD_LETTER_TTL_MS,
}
# The dead-letter queues this process declared; `dead_letters.py` reports their depth.
declared_dead_letter_queues: set[str] = set()
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
    delay = 0.5
    while True:
        try:
            connection = await aio_pika.connect_robust(
                url, client_properties={"connection_name": connection_name}
            )
            log.info("connected to RabbitMQ")
            return connection
        except (*BROKER_ERRORS, OSError) as exc:
            log.warning(
                "RabbitMQ is not reachable, retrying",
                extra={"error": str(exc) or type(exc).__name__, "retry_in_seconds": delay},
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 15)


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
    connection: AbstractRobustConnection, prefetch_count: int | None = None
) -> AbstractRobustChannel:
    """A channel with publisher confirms: a publish returns once the broker has it, and
    fails at once when no queue is bound for it (mandatory messages come back)."""
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    if prefetch_count is not None:
        await channel.set_qos(prefetch_count=prefetch_count)
    return channel


async def declare_exchanges(channel: AbstractRobustChannel) -> dict[str, AbstractExchange]:
    return {
        COMMANDS_EXCHANGE: await channel.declare_exchange(
            COMMANDS_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True
        ),
        NOTIFIER_COMMANDS_EXCHANGE: await channel.declare_exchange(
            NOTIFIER_COMMANDS_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True
        ),
        EVENTS_EXCHANGE: await channel.declare_exchange(
            EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        ),
        DEAD_LETTER_EXCHANGE: await channel.declare_exchange(
            DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True
        ),
    }


async def declare_work_queue(
    channel: AbstractRobustChannel,
    name: str,
    exchange: str,
    routing_keys: Iterable[str],
    arguments: dict[str, Any] | None = None,
) -> AbstractQueue:
    """A durable queue bound to `exchange`, dead-lettering into `<name>.dead-letter`
    (a bounded queue: `DEAD_LETTER_ARGUMENTS`)."""
    await declare_exchanges(channel)
    dead_letter_name = dead_letter_queue(name)
    try:
        dead_letter = await channel.declare_queue(
            dead_letter_name, durable=True, arguments=DEAD_LETTER_ARGUMENTS
        )
    except ChannelPreconditionFailed as exc:
        raise RuntimeError(
            f"the queue {dead_letter_name} exists with other arguments (an older version "
            f"declared it unbounded): delete it (rabbitmqctl delete_queue {dead_letter_name}) "
            "and start again; see the README, Upgrading"
        ) from exc
    declared_dead_letter_queues.add(dead_letter_name)
    await dead_letter.bind(DEAD_LETTER_EXCHANGE, routing_key=name)
    queue = await channel.declare_queue(
        name,
        durable=True,
        arguments={
            "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
            "x-dead-letter-routing-key": name,
            **(arguments or {}),
        },
    )
    for routing_key in routing_keys:
        await queue.bind(exchange, routing_key=routing_key)
    return queue


def dead_letter_queue(name: str) -> str:
    return f"{name}.dead-letter"


def encode(payload: Any) -> bytes:
    return orjson.dumps(payload)


def event_message(event: Event) -> aio_pika.Message:
    return aio_pika.Message(
        body=encode(event.model_dump(mode="json")),
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=event.event_id,
        type=event.routing_key,
        headers={REQUEST_ID_HEADER: event.request_id or ""},
    )


async def publish_event(exchange: AbstractExchange, event: Event, timeout: float = 10) -> None:
    """Persistent, confirmed, mandatory: returns only once the broker has queued it."""
    await exchange.publish(
        event_message(event), routing_key=event.routing_key, mandatory=False, timeout=timeout
    )


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
                "dead-lettering a message whose handler failed", extra={"queue": self._queue.name}
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


class RpcClient:
    """Sends commands and waits for their replies on a reply queue of its own.

    `user_id` is the broker user this connection logs in as: every command carries it,
    the broker refuses it if it is not, and the receiver checks that this user may send
    the command (`broker_access`)."""

    def __init__(
        self, channel: AbstractChannel, exchange: AbstractExchange, user_id: str | None = None
    ) -> None:
        self._channel = channel
        self._exchange = exchange
        self._user_id = user_id
        self._pending: dict[str, asyncio.Future[bytes]] = {}
        self._reply_queue: AbstractQueue | None = None

    async def start(self, owner: str) -> None:
        self._reply_queue = await self._channel.declare_queue(
            f"{owner}.replies.{uuid.uuid4().hex}", exclusive=True, auto_delete=True
        )
        await self._reply_queue.consume(self._on_reply, no_ack=True)

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        future = self._pending.pop(message.correlation_id or "", None)
        if future is not None and not future.done():
            future.set_result(message.body)

    async def call(self, command: Command, timeout: float) -> bytes:
        """The raw reply body; `Unavailable` when nobody answered within `timeout`."""
        assert self._reply_queue is not None, "start() first"
        correlation_id = uuid.uuid4().hex
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = future
        deadline_ms = int((time.time() + timeout) * 1000)
        message = aio_pika.Message(
            body=encode(command.model_dump(mode="json")),
            content_type="application/json",
            delivery_mode=(
                aio_pika.DeliveryMode.PERSISTENT
                if command.persistent
                else aio_pika.DeliveryMode.NOT_PERSISTENT
            ),
            correlation_id=correlation_id,
            reply_to=self._reply_queue.name,
            message_id=uuid.uuid4().hex,
            type=command.name,
            user_id=self._user_id,
            # The broker drops the command once nobody waits for it, so a command
            # answered with 503 never runs later behind the caller's back.
            expiration=timeout,
            headers={REQUEST_ID_HEADER: request_id_var.get() or "", DEADLINE_HEADER: deadline_ms},
        )
        try:
            async with asyncio.timeout(timeout):
                await self._exchange.publish(message, routing_key=command.name, mandatory=True)
                return await future
        except TimeoutError as exc:
            raise Unavailable("the service did not answer in time") from exc
        except DeliveryError as exc:  # returned: no queue is bound for this command
            raise Unavailable(f"no service is running that handles {command.name}") from exc
        except BROKER_ERRORS as exc:
            raise Unavailable("the message broker is not available") from exc
        finally:
            self._pending.pop(correlation_id, None)


def message_deadline_passed(message: AbstractIncomingMessage) -> bool:
    deadline = (message.headers or {}).get(DEADLINE_HEADER)
    return isinstance(deadline, int) and deadline < time.time() * 1000


async def reply(
    channel: AbstractRobustChannel, message: AbstractIncomingMessage, body: bytes
) -> None:
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
