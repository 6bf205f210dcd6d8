"""RabbitMQ adapter: the one retry of a callback waits in the broker, not in memory; a
redelivery's first attempt is queued there too, due at once (`start`).

    publish ──▶ notifier.callback-retry.delay-<ms>ms   (durable, x-message-ttl = delay,
                     │ expires after the delay           no consumer)
                     ▼ dead-lettered through the default exchange
               notifier.callback-retry                  (durable, consumed by every notifier)

Both queues are declared in `humantask_shared.core.topology`. The delay queue is named after
its delay, so a notifier started with another CALLBACK_RETRY_DELAY_SECONDS declares a
queue of its own instead of failing on the old one's arguments (and retries already
waiting in the old one still arrive). A per-queue TTL expires messages in order, so each
retry comes due exactly one delay after it was scheduled. Publishing is confirmed and
persistent: once `schedule` returns, the retry survives a notifier crash and a broker
restart.
"""

from __future__ import annotations

from aio_pika.abc import AbstractChannel

from humantask_shared.core.messages.retries import RedeliveryDue, RetryDue
from humantask_shared.core.topology import (
    CALLBACK_RETRY_QUEUE,
    Queue,
    QueueType,
    callback_retry_delay_queue,
)
from humantask_shared.runtime.declaring import declare_all
from humantask_shared.runtime.publishing import PUBLISH_TIMEOUT_SECONDS, publish

from .domain import delivery_id


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
        await declare_all(self._channel, [self._retries, self.delay_queue], self._queue_type)

    async def schedule(
        self,
        task_id: str,
        delivery: int,
        request_id: str | None,
        timeout: float = PUBLISH_TIMEOUT_SECONDS,
    ) -> None:
        """Returns once the broker holds the retry of the task's (or batch's) delivery
        `delivery` (persistent, publisher-confirmed)."""
        await publish(
            self._channel.default_exchange,
            self.delay_queue.name,
            RetryDue(task_id=task_id, delivery=delivery).model_dump_json().encode(),
            message_type=RetryDue.routing_key,
            message_id=f"{delivery_id(task_id, delivery)}.retry",
            request_id=request_id,
            mandatory=True,
            timeout=timeout,
        )

    async def start(
        self,
        task_id: str,
        delivery: int,
        request_id: str | None,
        timeout: float = PUBLISH_TIMEOUT_SECONDS,
    ) -> None:
        """A redelivery's first attempt, due now: straight into the queue retries come
        due in (persistent, publisher-confirmed)."""
        await publish(
            self._channel.default_exchange,
            self._retries.name,
            RedeliveryDue(task_id=task_id, delivery=delivery).model_dump_json().encode(),
            message_type=RedeliveryDue.routing_key,
            message_id=f"{delivery_id(task_id, delivery)}.start",
            request_id=request_id,
            mandatory=True,
            timeout=timeout,
        )
