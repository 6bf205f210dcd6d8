"""Sending commands and reading their replies: the caller's side of a `CommandServer`.

The gateway sends commands to the task-store and the notifier; the notifier and the
admin tool send some to the task-store. Each `CommandClient` waits for replies on a
reply queue of its own, matched to their commands by correlation id. A command expires
when its caller stops waiting for it. Domain errors in a reply are raised here as the
same `HumantaskError`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any, TypeVar

from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage
from aiormq.exceptions import DeliveryError
from prometheus_client import Histogram
from pydantic import BaseModel, ValidationError

from ..core.errors import Unavailable, error_from_code
from ..core.messages.base import Command
from ..core.messages.envelope import Reply
from ..core.topology import REPLY_QUEUE, Service
from .broker import BROKER_ERRORS, DEADLINE_HEADER
from .declaring import declare
from .logging import request_id_var
from .publishing import encode, outgoing
from .tracing import command_span

ResultT = TypeVar("ResultT", bound=BaseModel)

# The caller's side: from sending the command to reading its reply (or giving up on it).
COMMAND_DURATION = Histogram(
    "humantask_command_duration_seconds",
    "Time a caller waited for a command's reply, timeouts included",
    ["command"],
)


class CommandClient:
    """Sends commands through `exchange` and waits up to `timeout_seconds` for each reply.

    `user_id` is the broker user this connection logs in as: every command carries it,
    the broker refuses it if it is not, and the receiver checks that this user may send
    the command (`broker_access`)."""

    def __init__(
        self,
        channel: AbstractChannel,
        exchange: AbstractExchange,
        user_id: str,
        timeout_seconds: float,
    ) -> None:
        self._channel = channel
        self._exchange = exchange
        self._user_id = user_id
        self._timeout = timeout_seconds
        self._pending: dict[str, asyncio.Future[bytes]] = {}
        self._reply_queue_name: str | None = None

    async def start(self, owner: Service) -> None:
        """Declare and consume this client's reply queue, one of `owner`'s."""
        reply_queue = await declare(self._channel, REPLY_QUEUE.for_process(owner))
        await reply_queue.consume(self._on_reply, no_ack=True)
        self._reply_queue_name = reply_queue.name

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        future = self._pending.pop(message.correlation_id or "", None)
        if future is not None and not future.done():
            future.set_result(message.body)

    async def send(self, command: Command[ResultT]) -> ResultT:
        """Run `command` in the service that answers it: its result, or its domain error
        raised here."""
        started = time.perf_counter()
        try:
            with command_span(command.routing_key):
                raw = await self._call(command)
        finally:  # a timeout too: how long the caller waited
            COMMAND_DURATION.labels(command.routing_key).observe(time.perf_counter() - started)
        try:
            reply = Reply.model_validate_json(raw)
            if not reply.ok:
                assert reply.error is not None
                raise error_from_code(reply.error.code, reply.error.message)
            return command.read_result(reply.result)
        except (ValidationError, AssertionError) as exc:
            raise Unavailable(f"the answer to {command.routing_key} was unreadable") from exc

    async def _call(self, command: Command[Any]) -> bytes:
        """The raw reply body; `Unavailable` when nobody answered in time."""
        assert self._reply_queue_name is not None, "start() first"
        correlation_id = uuid.uuid4().hex
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = future
        deadline_ms = int((time.time() + self._timeout) * 1000)
        message = outgoing(
            encode(command.model_dump(mode="json")),
            command.routing_key,
            persistent=command.persistent,
            message_id=uuid.uuid4().hex,
            request_id=request_id_var.get(),
            headers={DEADLINE_HEADER: deadline_ms},
            correlation_id=correlation_id,
            reply_to=self._reply_queue_name,
            user_id=self._user_id,
            # The broker drops the command once nobody waits for it, so a command
            # answered with 503 never runs later behind the caller's back.
            expiration=self._timeout,
        )
        try:
            async with asyncio.timeout(self._timeout):
                await self._exchange.publish(
                    message, routing_key=command.routing_key, mandatory=True
                )
                return await future
        except TimeoutError as exc:
            raise Unavailable("the service did not answer in time") from exc
        except DeliveryError as exc:  # returned: no queue is bound for this command
            raise Unavailable(f"no service is running that handles {command.routing_key}") from exc
        except BROKER_ERRORS as exc:
            raise Unavailable("the message broker is not available") from exc
        finally:
            self._pending.pop(correlation_id, None)
