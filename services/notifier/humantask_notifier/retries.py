"""RabbitMQ adapter: the one retry of a callback waits in the broker, not in memory.

    publish ──▶ notifier.callback-retry.delay-<ms>ms   (durable, x-message-ttl = delay,
                     │ expires after the delay           no consumer)
                     ▼ dead-lettered through the default exchange
               notifier.callback-retry                  (durable, consumed by every notifier)

The delay queue is named after its delay, so a notifier started with another
CALLBACK_RETRY_DELAY_SECONDS declares a queue of its own instead of failing on the old
one's arguments (and retries already waiting in the old one still arrive). A per-queue
TTL expires messages in order, so each retry comes due exactly one delay after it was
scheduled. Publishing is confirmed and persistent: once `schedule` returns, the retry
survives a notifier crash and a broker restart.
"""

from __future__ import annotations

import aio_pika
from aio_pika.abc import AbstractQueue, AbstractRobustChannel
from pydantic import BaseModel, ConfigDict

from humantask_shared.messaging import (
    DEAD_LETTER_EXCHANGE,
    REQUEST_ID_HEADER,
    declare_work_queue,
)

RETRY_QUEUE = "notifier.callback-retry"
RETRY_MESSAGE_TYPE = "callback.retry_due"


def delay_queue_name(delay_ms: int, queue: str = RETRY_QUEUE) -> str:
    return f"{queue}.delay-{delay_ms}ms"


async def declare_retry_queue(
    channel: AbstractRobustChannel, queue: str = RETRY_QUEUE
) -> AbstractQueue:
    """The queue of retries that are due, which every notifier consumes."""
    return await declare_work_queue(channel, queue, DEAD_LETTER_EXCHANGE, [])


class RetryDue(BaseModel):
    """The body of a retry message: whose callback to try again."""

    model_config = ConfigDict(frozen=True)

    task_id: str


class RetryScheduler:
    def __init__(
        self, channel: AbstractRobustChannel, delay_seconds: float, queue: str = RETRY_QUEUE
    ) -> None:
        self._channel = channel
        self._queue = queue
        self._delay_ms = round(delay_seconds * 1000)
        self.delay_queue = delay_queue_name(self._delay_ms, queue)

    async def declare(self) -> None:
        """Declare the delay queue and the queue it feeds."""
        await declare_retry_queue(self._channel, self._queue)
        await self._channel.declare_queue(
            self.delay_queue,
            durable=True,
            arguments={
                "x-message-ttl": self._delay_ms,
                "x-dead-letter-exchange": "",  # the default exchange: straight to the queue
                "x-dead-letter-routing-key": self._queue,
            },
        )

    async def schedule(self, task_id: str, request_id: str | None, timeout: float = 10) -> None:
        """Returns once the broker holds the retry (persistent, publisher-confirmed)."""
        message = aio_pika.Message(
            body=RetryDue(task_id=task_id).model_dump_json().encode(),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=f"{task_id}.retry",
            type=RETRY_MESSAGE_TYPE,
            headers={REQUEST_ID_HEADER: request_id or ""},
        )
        await self._channel.default_exchange.publish(
            message, routing_key=self.delay_queue, mandatory=True, timeout=timeout
        )
