"""RabbitMQ adapter: the one retry of a callback waits in the broker, not in memory.

    publish ──▶ notifier.callback-retry.delay-<ms>ms   (durable, x-message-ttl = delay,
                     │ expires after the delay           no consumer)
                     ▼ dead-lettered through the default exchange
               notifier.callback-retry                  (durable, consumed by every notifier)

Both queues are declared in `humantask_shared.topology`. The delay queue is named after
its delay, so a notifier started with another CALLBACK_RETRY_DELAY_SECONDS declares a
queue of its own instead of failing on the old one's arguments (and retries already
waiting in the old one still arrive). A per-queue TTL expires messages in order, so each
retry comes due exactly one delay after it was scheduled. Publishing is confirmed and
persistent: once `schedule` returns, the retry survives a notifier crash and a broker
restart.
"""

from __future__ import annotations

import aio_pika
from aio_pika.abc import AbstractChannel

from humantask_shared.messages.retries import RetryDue
from humantask_shared.messaging import REQUEST_ID_HEADER
from humantask_shared.topology import (
    CALLBACK_RETRY_QUEUE,
    Queue,
    QueueType,
    callback_retry_delay_queue,
    declare,
)


class RetryScheduler:
    def __init__(
        self,
        channel: AbstractChannel,
        delay_seconds: float,
        queue_type: QueueType,
        retries: Queue = CALLBACK_RETRY_QUEUE,
    ) -> None:
        self._channel = channel
        self._queue_type = queue_type
        self._retries = retries
        self.delay_queue = callback_retry_delay_queue(round(delay_seconds * 1000), retries)

    async def declare(self) -> None:
        """Declare the delay queue and the queue it feeds."""
        await declare(self._channel, self._retries, self._queue_type)
        await declare(self._channel, self.delay_queue, self._queue_type)

    async def schedule(self, task_id: str, request_id: str | None, timeout: float = 10) -> None:
        """Returns once the broker holds the retry (persistent, publisher-confirmed)."""
        message = aio_pika.Message(
            body=RetryDue(task_id=task_id).model_dump_json().encode(),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=f"{task_id}.retry",
            type=RetryDue.message_type,
            headers={REQUEST_ID_HEADER: request_id or ""},
        )
        await self._channel.default_exchange.publish(
            message, routing_key=self.delay_queue.name, mandatory=True, timeout=timeout
        )
