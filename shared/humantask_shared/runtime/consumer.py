"""Consuming a queue: ack once the handler returned, dead-letter what cannot be handled,
requeue after a transient error, drain on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aio_pika.abc import AbstractIncomingMessage, AbstractQueue
from prometheus_client import Counter

from .broker import BROKER_ERRORS, message_request_id
from .logging import request_id_var

log = logging.getLogger(__name__)

DEAD_LETTERED = Counter(
    "humantask_dead_lettered_messages_total",
    "Messages this process rejected into a dead-letter queue",
    ["queue"],
)


class PoisonMessage(Exception):
    """A message that can never be handled; it goes to the dead-letter queue."""


class PutBack(Exception):
    """Not now: the message is to come back a while later (its dispatcher puts a copy in
    the broker and the original is acked, so the consumer moves on at once)."""


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
