"""FastStream's side: the same commands, served and sent with FastStream (0.7).

What FastStream does for us here: the connection (aio-pika's robust one), declaring the
subscribed queues, parsing the body into the handler's pydantic type, publishing the
handler's return value to `reply_to`, acking after that, graceful stop, Prometheus
metrics (`RabbitPrometheusMiddleware`). What we still write: `CommandPolicy` (deadline
drop, sender check, the error reply before a dead-letter, the pause before a requeue,
the request id), the dead-letter queues (never consumed, so never declared by
FastStream), and the mapping of failures to `Unavailable` on the caller's side.

Two callers, because FastStream's own `broker.request` (direct reply-to) sends one
request at a time per broker: it holds a lock from publish to reply (faststream issue
1318, open). `ReplyQueueClient` is the maintainers' suggested way around it: a
subscriber on a reply queue of our own and a future per correlation id, which is what
our `CommandClient` does.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any, NoReturn, TypeVar

from aio_pika import IncomingMessage
from aio_pika.abc import AbstractIncomingMessage
from aiormq.exceptions import DeliveryError
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, ValidationError
from pymongo.errors import PyMongoError

from humantask_shared.broker_access import BrokerIdentities
from humantask_shared.command_server import error_reply
from humantask_shared.errors import (
    HumantaskError,
    InvalidRequest,
    Unauthorized,
    Unavailable,
    error_from_code,
)
from humantask_shared.logging import request_id_var
from humantask_shared.messages.commands import COMMANDS, Command, Reply, ReplyError
from humantask_shared.messaging import (
    BROKER_ERRORS,
    DEADLINE_HEADER,
    REQUEST_ID_HEADER,
    message_deadline_passed,
    message_request_id,
)
from humantask_shared.topology import (
    DEAD_LETTER_ARGUMENTS,
    DEAD_LETTER_EXCHANGE,
    DEAD_LETTER_SUFFIX,
)

from .commands import Boom, Ping, PingResult

try:
    from faststream import AckPolicy, BaseMiddleware, StreamMessage
    from faststream.exceptions import AckMessage, NackMessage, RejectMessage
    from faststream.rabbit import (
        Channel,
        ExchangeType,
        RabbitBroker,
        RabbitExchange,
        RabbitQueue,
        RabbitResponse,
    )
    from faststream.rabbit.annotations import RabbitMessage
    from faststream.rabbit.prometheus import RabbitPrometheusMiddleware
except ImportError as exc:  # not in the project's locks, on purpose (issue 13)
    raise SystemExit(
        "FastStream is not installed in this interpreter: run the spike from its scratch "
        "venv (bench/faststream_spike/README.md)"
    ) from exc

log = logging.getLogger(__name__)
ResultT = TypeVar("ResultT", bound=BaseModel)

EXCHANGE = RabbitExchange("spike.faststream.commands", type=ExchangeType.DIRECT, durable=True)
DEAD_LETTERS = RabbitExchange(DEAD_LETTER_EXCHANGE.name, type=ExchangeType.DIRECT, durable=True)
RETRY_PAUSE_SECONDS = 1.0


def command_queue(command: type[Command]) -> RabbitQueue:
    """FastStream binds a subscriber's queue with one routing key: a queue per command."""
    name = f"spike.faststream.{command.name}"
    return RabbitQueue(
        name,
        durable=True,
        routing_key=command.name,
        arguments={
            "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE.name,
            "x-dead-letter-routing-key": name,
        },
    )


def reply_response(reply: Reply, message: AbstractIncomingMessage) -> RabbitResponse:
    # Not mandatory: a caller that went away must not turn the reply into an error.
    return RabbitResponse(
        reply.model_dump(mode="json", exclude_none=True),
        mandatory=False,
        headers={REQUEST_ID_HEADER: message_request_id(message) or ""},
    )


class CommandPolicy(BaseMiddleware):
    """What `CommandServer` and `Consumer` do around a handler, as one FastStream
    middleware, in the same order. `identities` is set by `command_policy`."""

    identities: BrokerIdentities

    async def consume_scope(self, call_next: Any, msg: StreamMessage[IncomingMessage]) -> Any:
        message = msg.raw_message
        command = COMMANDS.get(message.type or "")
        # The sender before the deadline: the broker vouches for `user_id`, the sender
        # writes `x-deadline`, so a refused command is always answered and dead-lettered.
        if command is not None and not self.identities.allows(command, message.user_id):
            await self._refuse(
                message, Unauthorized(f"{command.name} may not be sent by this service")
            )
        if message_deadline_passed(message):
            raise AckMessage  # its caller already gave up: drop it unexecuted
        if command is None:
            await self._refuse(message, InvalidRequest(f"unknown command {message.type!r}"))
        token = request_id_var.set(message_request_id(message))
        try:
            result = await call_next(msg)
        except ValidationError:
            await self._refuse(message, InvalidRequest("malformed command"))
        except HumantaskError as exc:
            return reply_response(error_of(exc), message)
        except PyMongoError:
            return reply_response(error_of(Unavailable("the database is not available")), message)
        except BROKER_ERRORS as exc:
            log.warning("requeueing after a transient error", extra={"error": repr(exc)})
            await asyncio.sleep(RETRY_PAUSE_SECONDS)
            raise NackMessage(requeue=True) from exc
        except Exception:
            log.exception("a command handler failed")
            await self._refuse(message, Unavailable("failed inside the service; try again later"))
        finally:
            request_id_var.reset(token)
        return reply_response(Reply(ok=True, result=result), message)

    async def _refuse(self, message: AbstractIncomingMessage, error: HumantaskError) -> NoReturn:
        """Answer the caller at once, then dead-letter the command."""
        if message.reply_to:
            broker: RabbitBroker = self.context.get("broker")
            await broker.publish(
                error_reply(error),
                routing_key=message.reply_to,
                correlation_id=message.correlation_id,
                mandatory=False,
                content_type="application/json",
            )
        raise RejectMessage


def error_of(error: HumantaskError) -> Reply:
    return Reply(ok=False, error=ReplyError(code=error.code, message=error.message))


def command_policy(identities: BrokerIdentities) -> type[CommandPolicy]:
    return type("BoundCommandPolicy", (CommandPolicy,), {"identities": identities})


def spike_broker(
    amqp_url: str, identities: BrokerIdentities | None = None, *, metrics: bool = True
) -> RabbitBroker:
    """A broker with publisher confirms and returned mandatory messages raised (so that
    "no service handles this" is an error at once, not a timeout). With `identities` it
    serves the spike's commands too; `metrics` adds FastStream's Prometheus middleware."""
    middlewares: list[Any] = []
    if metrics:
        middlewares.append(RabbitPrometheusMiddleware(registry=CollectorRegistry()))
    if identities is not None:
        middlewares.append(command_policy(identities))
    return RabbitBroker(
        amqp_url,
        default_channel=Channel(publisher_confirms=True, on_return_raises=True),
        graceful_timeout=5,
        middlewares=middlewares,
        logger=log,
        log_level=logging.DEBUG,  # a line per message, as ours: not at INFO
    )


def add_handlers(broker: RabbitBroker, prefetch: int) -> None:
    channel = Channel(prefetch_count=prefetch, publisher_confirms=True)

    @broker.subscriber(
        command_queue(Ping), EXCHANGE, channel=channel, ack_policy=AckPolicy.REJECT_ON_ERROR
    )
    async def ping(command: Ping) -> PingResult:
        return PingResult(n=command.n, text=command.text)

    @broker.subscriber(
        command_queue(Boom), EXCHANGE, channel=channel, ack_policy=AckPolicy.REJECT_ON_ERROR
    )
    async def boom(_command: Boom) -> PingResult:
        raise RuntimeError("a bug")


async def declare_dead_letter_queues(broker: RabbitBroker) -> None:
    """FastStream declares what it consumes; the dead-letter queues are never consumed."""
    exchange = await broker.declare_exchange(DEAD_LETTERS)
    for command in (Ping, Boom):
        name = command_queue(command).name
        queue = await broker.declare_queue(
            RabbitQueue(
                f"{name}{DEAD_LETTER_SUFFIX}", durable=True, arguments=DEAD_LETTER_ARGUMENTS
            )
        )
        await queue.bind(exchange, routing_key=name)


def command_message(command: Command, timeout: float, user_id: str) -> dict[str, Any]:
    """The publish arguments our `CommandClient` sets, for `broker.request`/`publish`."""
    return {
        "exchange": EXCHANGE,
        "routing_key": command.name,
        "persist": command.persistent,
        "mandatory": True,
        "expiration": timeout,
        "message_id": uuid.uuid4().hex,
        "message_type": command.name,
        "user_id": user_id,
        "headers": {
            REQUEST_ID_HEADER: request_id_var.get() or "",
            DEADLINE_HEADER: int((time.time() + timeout) * 1000),
        },
    }


def read_reply(body: bytes, result_model: type[ResultT]) -> ResultT:
    reply = Reply.model_validate_json(body)
    if not reply.ok:
        assert reply.error is not None
        raise error_from_code(reply.error.code, reply.error.message)
    return result_model.model_validate(reply.result)


class DirectReplyClient:
    """FastStream's `broker.request`: direct reply-to, one request at a time."""

    def __init__(self, broker: RabbitBroker, user_id: str, timeout: float) -> None:
        self._broker = broker
        self._user_id = user_id
        self._timeout = timeout

    async def send(self, command: Command, result_model: type[ResultT]) -> ResultT:
        try:
            # Our own bound: waiting for FastStream's request lock is not under its timeout.
            async with asyncio.timeout(self._timeout):
                reply = await self._broker.request(
                    command,
                    timeout=self._timeout,
                    **command_message(command, self._timeout, self._user_id),
                )
        except TimeoutError as exc:
            raise Unavailable("the service did not answer in time") from exc
        except DeliveryError as exc:
            raise Unavailable(f"no service is running that handles {command.name}") from exc
        except BROKER_ERRORS as exc:
            raise Unavailable("the message broker is not available") from exc
        return read_reply(reply.body, result_model)


class ReplyQueueClient:
    """A reply queue of our own and a future per correlation id, on FastStream."""

    def __init__(self, broker: RabbitBroker, user_id: str, timeout: float) -> None:
        self._broker = broker
        self._user_id = user_id
        self._timeout = timeout
        self._pending: dict[str, asyncio.Future[bytes]] = {}
        self.reply_queue = RabbitQueue(
            f"spike.replies.{uuid.uuid4().hex}", exclusive=True, auto_delete=True
        )

        @broker.subscriber(self.reply_queue, ack_policy=AckPolicy.ACK_FIRST, no_reply=True)
        async def on_reply(msg: RabbitMessage) -> None:
            future = self._pending.pop(msg.correlation_id, None)
            if future is not None and not future.done():
                future.set_result(msg.body)

    async def send(self, command: Command, result_model: type[ResultT]) -> ResultT:
        correlation_id = uuid.uuid4().hex
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = future
        try:
            async with asyncio.timeout(self._timeout):
                await self._broker.publish(
                    command,
                    reply_to=self.reply_queue.name,
                    correlation_id=correlation_id,
                    **command_message(command, self._timeout, self._user_id),
                )
                body = await future
        except TimeoutError as exc:
            raise Unavailable("the service did not answer in time") from exc
        except DeliveryError as exc:
            raise Unavailable(f"no service is running that handles {command.name}") from exc
        except BROKER_ERRORS as exc:
            raise Unavailable("the message broker is not available") from exc
        finally:
            self._pending.pop(correlation_id, None)
        return read_reply(body, result_model)
