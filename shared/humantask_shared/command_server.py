"""Serving commands over RabbitMQ: command messages in, replies out.

Reads the command, runs its handler, answers on the caller's reply queue, and only then
lets the consumer ack. A command whose caller stopped waiting is dropped unexecuted.
Whatever a handler raises, its caller is answered at once: domain errors with their
code, a database failure as `unavailable`, and anything else (a bug) as `unavailable`
too, after which the command is dead-lettered; only a broker hiccup requeues it.
Any service that answers commands (the task-store, the notifier) uses this.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aio_pika.abc import AbstractIncomingMessage, AbstractRobustChannel
from prometheus_client import Counter, Histogram
from pydantic import BaseModel, ValidationError
from pymongo.errors import PyMongoError

from .errors import HumantaskError, InvalidRequest, Unavailable
from .messages.commands import COMMANDS, Command, Reply, ReplyError
from .messaging import BROKER_ERRORS, PoisonMessage, encode, message_deadline_passed, reply

log = logging.getLogger(__name__)

COMMANDS_HANDLED = Counter("humantask_commands_total", "Commands handled", ["command", "outcome"])
COMMAND_SECONDS = Histogram("humantask_command_seconds", "Time to handle a command", ["command"])

# A handler gets the command and returns its result (its service's dependencies bound).
CommandHandler = Callable[[Any], Awaitable[BaseModel]]
# The same before its service's dependencies are bound (`partial(handler, deps=deps)`).
UnboundHandler = Callable[..., Awaitable[BaseModel]]


def error_reply(error: HumantaskError) -> bytes:
    return encode(
        Reply(ok=False, error=ReplyError(code=error.code, message=error.message)).model_dump()
    )


def parse_command(message: AbstractIncomingMessage) -> Command:
    command_type = COMMANDS.get(message.type or "")
    if command_type is None:
        raise InvalidRequest(f"unknown command type {message.type!r}")
    try:
        return command_type.model_validate_json(message.body)
    except ValidationError as exc:
        raise InvalidRequest(
            f"malformed {command_type.name} command: {exc.error_count()} errors"
        ) from exc
    except Exception as exc:  # a validator that raised something pydantic does not wrap
        raise InvalidRequest(
            f"malformed {command_type.name} command: {type(exc).__name__}"
        ) from exc


class HandlerFailed(PoisonMessage):
    """A handler raised something no rule foresaw. Its caller got an error reply at once;
    the command itself is dead-lettered for an operator to look at, not retried."""


class CommandServer:
    """The consumer callback for a queue of commands, dispatching by command type."""

    def __init__(
        self, handlers: Mapping[type[Command], CommandHandler], channel: AbstractRobustChannel
    ) -> None:
        self._handlers = handlers
        self._channel = channel

    @property
    def command_names(self) -> list[str]:
        return [command.name for command in self._handlers]

    async def __call__(self, message: AbstractIncomingMessage) -> None:
        if message_deadline_passed(message):
            # Its caller already answered 503; running it now would act behind its back.
            log.info(
                "dropping a command whose caller stopped waiting", extra={"type": message.type}
            )
            COMMANDS_HANDLED.labels(message.type or "unknown", "expired").inc()
            return
        try:
            command = parse_command(message)
            if type(command) not in self._handlers:
                raise InvalidRequest(f"{command.name} is not handled here")
        except InvalidRequest as exc:
            await reply(self._channel, message, error_reply(exc))
            COMMANDS_HANDLED.labels("unknown", "poison").inc()
            raise PoisonMessage(exc.message) from exc

        started = time.perf_counter()
        try:
            body = await self._run(command)
        except BROKER_ERRORS:
            raise  # transient: the consumer requeues the command, and it is answered then
        except Exception as exc:
            # Never leave the caller waiting for a reply that will not come: answer now
            # (the gateway says 503), then dead-letter the command.
            log.exception("a command handler failed", extra={"command": command.name})
            COMMANDS_HANDLED.labels(command.name, "failed").inc()
            failure = Unavailable(f"{command.name} failed inside the service; try again later")
            await reply(self._channel, message, error_reply(failure))
            raise HandlerFailed(f"{command.name}: {type(exc).__name__}") from exc
        finally:
            COMMAND_SECONDS.labels(command.name).observe(time.perf_counter() - started)
        await reply(self._channel, message, body)

    async def _run(self, command: Command) -> bytes:
        try:
            result = await self._handlers[type(command)](command)
        except HumantaskError as exc:
            COMMANDS_HANDLED.labels(command.name, exc.code).inc()
            return error_reply(exc)
        except PyMongoError as exc:
            # Answer now rather than requeue: the caller is waiting and will retry.
            log.warning("MongoDB failed while handling a command", extra={"error": repr(exc)})
            COMMANDS_HANDLED.labels(command.name, "unavailable").inc()
            return error_reply(Unavailable("the database is not available"))
        body = encode(
            Reply(ok=True, result=result.model_dump(mode="json", exclude_none=True)).model_dump()
        )
        COMMANDS_HANDLED.labels(command.name, "ok").inc()
        return body
