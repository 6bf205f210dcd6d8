"""Serving commands over RabbitMQ: command messages in, replies out.

Checks who sent the command, reads it, runs its handler, answers on the caller's reply
queue, and only then lets the consumer ack. A command whose caller stopped waiting is
dropped unexecuted. Whatever a handler raises, its caller is answered at once: domain
errors with their code, a database failure as `unavailable`, and anything else (a bug)
as `unavailable` too, after which the command is dead-lettered; only a broker hiccup
requeues it. Any service that answers commands (the task-store, the notifier) uses this.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NoReturn

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from prometheus_client import Counter, Histogram
from pydantic import BaseModel, ValidationError
from pymongo.errors import PyMongoError

from ..core.broker_access import BrokerIdentities
from ..core.errors import HumantaskError, InvalidRequest, Unauthorized, Unavailable
from ..core.messages.base import Command
from ..core.messages.envelope import Reply, ReplyError
from ..core.topology import Queue, check_handlers
from .broker import BROKER_ERRORS, message_deadline_passed, message_request_id
from .consumer import PoisonMessage
from .publishing import encode, outgoing

log = logging.getLogger(__name__)

COMMANDS_HANDLED = Counter("humantask_commands_total", "Commands handled", ["command", "outcome"])
COMMAND_SECONDS = Histogram("humantask_command_seconds", "Time to handle a command", ["command"])

# A handler gets the command and returns its result (its service's dependencies bound).
CommandHandler = Callable[[Any], Awaitable[BaseModel]]
# The same before its service's dependencies are bound (`partial(handler, deps=deps)`).
UnboundHandler = Callable[..., Awaitable[BaseModel]]


async def reply(channel: AbstractChannel, message: AbstractIncomingMessage, body: bytes) -> None:
    """Answer a command on its caller's reply queue (through the default exchange).

    Not mandatory: a caller that went away takes its reply queue with it, and that must
    not turn into an error that requeues the command forever. The caller checks that
    `reply_to` is the sender's own (`CommandServer._reply`)."""
    if not message.reply_to:
        return
    answer = outgoing(
        body,
        None,
        persistent=False,
        request_id=message_request_id(message),
        correlation_id=message.correlation_id,
    )
    await channel.default_exchange.publish(answer, routing_key=message.reply_to, mandatory=False)


def error_reply(error: HumantaskError) -> bytes:
    return encode(
        Reply(ok=False, error=ReplyError(code=error.code, message=error.message)).model_dump()
    )


def parse_command(
    command_type: type[Command[Any]] | None, message: AbstractIncomingMessage
) -> Command[Any]:
    if command_type is None:
        raise InvalidRequest(f"unknown command type {message.type!r}")
    try:
        return command_type.model_validate_json(message.body)
    except ValidationError as exc:
        raise InvalidRequest(
            f"malformed {command_type.routing_key} command: {exc.error_count()} errors"
        ) from exc
    except Exception as exc:  # a validator that raised something pydantic does not wrap
        raise InvalidRequest(
            f"malformed {command_type.routing_key} command: {type(exc).__name__}"
        ) from exc


class CommandServer:
    """The consumer callback for a queue of commands, dispatching by command type.

    `handlers` answer exactly the commands `queue` carries (checked here: the service
    does not start otherwise). Only a sender the command is meant for may send it
    (`broker_access`): checked on the broker-vouched `user_id` before anything else the
    sender wrote, its deadline included, so a refused command is always dead-lettered
    where an operator sees it, however late it arrives, and answered `unauthorized` when
    its `reply_to` is a reply queue of its sender's own. No reply ever goes elsewhere
    (`BrokerIdentities.may_reply_to`)."""

    def __init__(
        self,
        queue: Queue,
        handlers: Mapping[type[Command[Any]], CommandHandler],
        identities: BrokerIdentities,
        channel: AbstractChannel,
    ) -> None:
        check_handlers(queue, handlers)
        self._commands = {command.routing_key: command for command in queue.commands}
        self._handlers = handlers
        self._identities = identities
        self._channel = channel

    async def __call__(self, message: AbstractIncomingMessage) -> None:
        command_type = self._commands.get(message.type or "")
        if command_type is not None and not self._identities.allows(command_type, message.user_id):
            log.warning(
                "refusing a command from a broker user that may not send it",
                extra={"type": command_type.routing_key, "user_id": message.user_id},
            )
            await self._refuse(
                message,
                Unauthorized(f"{command_type.routing_key} may not be sent by this service"),
                f"{command_type.routing_key} from broker user {message.user_id!r}",
            )
        if message_deadline_passed(message):
            # Its caller already answered 503; running it now would act behind its back.
            log.info(
                "dropping a command whose caller stopped waiting", extra={"type": message.type}
            )
            COMMANDS_HANDLED.labels(message.type or "unknown", "expired").inc()
            return
        try:
            command = parse_command(command_type, message)
        except InvalidRequest as exc:
            COMMANDS_HANDLED.labels("unknown", "poison").inc()
            await self._refuse(message, exc, exc.message)

        started = time.perf_counter()
        try:
            body = await self._run(command)
        except BROKER_ERRORS:
            raise  # transient: the consumer requeues the command, and it is answered then
        except Exception:
            # Never leave the caller waiting for a reply that will not come: answer now
            # (the gateway says 503); the consumer logs the error and dead-letters it.
            COMMANDS_HANDLED.labels(command.routing_key, "failed").inc()
            failure = Unavailable(
                f"{command.routing_key} failed inside the service; try again later"
            )
            await self._reply(message, error_reply(failure))
            raise
        finally:
            COMMAND_SECONDS.labels(command.routing_key).observe(time.perf_counter() - started)
        await self._reply(message, body)

    async def _reply(self, message: AbstractIncomingMessage, body: bytes) -> None:
        if not message.reply_to:
            return
        if not self._identities.may_reply_to(message.reply_to, message.user_id):
            log.warning(
                "not replying to a queue that is not a reply queue of the sender's own",
                extra={"type": message.type, "user_id": message.user_id},
            )
            COMMANDS_HANDLED.labels(message.type or "unknown", "reply_dropped").inc()
            return
        await reply(self._channel, message, body)

    async def _refuse(
        self, message: AbstractIncomingMessage, error: HumantaskError, reason: str
    ) -> NoReturn:
        """Answer the caller at once, then have the consumer dead-letter the command."""
        await self._reply(message, error_reply(error))
        raise PoisonMessage(reason)

    async def _run(self, command: Command[Any]) -> bytes:
        try:
            result = await self._handlers[type(command)](command)
        except HumantaskError as exc:
            COMMANDS_HANDLED.labels(command.routing_key, exc.code).inc()
            return error_reply(exc)
        except PyMongoError as exc:
            # Answer now rather than requeue: the caller is waiting and will retry.
            log.warning("MongoDB failed while handling a command", extra={"error": repr(exc)})
            COMMANDS_HANDLED.labels(command.routing_key, "unavailable").inc()
            return error_reply(Unavailable("the database is not available"))
        body = encode(
            Reply(ok=True, result=result.model_dump(mode="json", exclude_none=True)).model_dump()
        )
        COMMANDS_HANDLED.labels(command.routing_key, "ok").inc()
        return body
