"""Serving a queue of events (or other one-way messages): the match of the command
server for messages that want no answer.

Each message is read into the model its AMQP `type` names, among those the queue
carries, and that model's handler runs; the consumer acks once it returned. A message
that names no type the queue carries, or does not parse as the model it names, can never
be handled: it is dead-lettered (`PoisonMessage`). A handler that raises `PutBack` has the
message put back in the broker, for later, by the dispatcher's `put_back`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aio_pika.abc import AbstractIncomingMessage
from pydantic import ValidationError

from ..core.messages.base import Message
from ..core.topology import Queue, check_handlers
from .consumer import PoisonMessage, PutBack

# A handler gets the message (its service's dependencies bound) and returns once what
# it did is durable.
MessageHandler = Callable[[Any], Awaitable[None]]
# Puts a copy of a message back in the broker, due later; returns once the broker has it.
PutBackMessage = Callable[[AbstractIncomingMessage], Awaitable[None]]


class EventDispatcher:
    """The consumer callback for `queue`: `handlers` hold one for each kind of message
    it carries (checked here: the service does not start otherwise)."""

    def __init__(
        self,
        queue: Queue,
        handlers: Mapping[type[Message], MessageHandler],
        put_back: PutBackMessage | None = None,
    ) -> None:
        check_handlers(queue, handlers)
        self._put_back = put_back
        self._models = {model.routing_key: model for model in handlers}
        self._handlers = handlers
        # A message without a type, on a queue of one kind, is of that kind.
        self._only = next(iter(handlers)) if len(handlers) == 1 else None

    async def __call__(self, message: AbstractIncomingMessage) -> None:
        model = self._models.get(message.type) if message.type else self._only
        if model is None:
            raise PoisonMessage(f"unknown message type {message.type!r}")
        try:
            parsed = model.model_validate_json(message.body)
        except ValidationError as exc:
            raise PoisonMessage(f"not a {model.__name__}: {exc.error_count()} errors") from exc
        try:
            await self._handlers[model](parsed)
        except PutBack:
            if self._put_back is None:
                raise
            await self._put_back(message)
