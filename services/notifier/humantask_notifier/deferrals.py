"""RabbitMQ adapter: a message whose callback's host is busy waits in the broker a while.

    defer ──▶ <its queue>.delay-<ms>ms   (durable, no consumer, x-message-ttl =
                  │ expires                CALLBACK_HOST_BUSY_DELAY_SECONDS)
                  ▼ dead-lettered through the default exchange
             <its queue>                  notifier.task-completed or notifier.callback-retry

A completion event goes back to `notifier.task-completed` (through
`NOTIFIER_COMPLETIONS_DELAY_QUEUE`), a retry that came due to `notifier.callback-retry`
(through the retries' delay queue of that delay, as `retries.RetryScheduler` uses for
CALLBACK_RETRY_DELAY_SECONDS). The copy keeps the message's body and properties (its
message id, type and headers: the request id, the trace context), not the broker's
`x-death` bookkeeping. Publishing is confirmed and persistent: once `defer` returns, the
message may be acked.
"""

from __future__ import annotations

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from humantask_shared.core.topology import (
    CALLBACK_RETRY_QUEUE,
    NOTIFIER_COMPLETIONS_DELAY_QUEUE,
    NOTIFIER_COMPLETIONS_QUEUE,
    Queue,
    QueueType,
    callback_retry_delay_queue,
)
from humantask_shared.runtime.declaring import declare
from humantask_shared.runtime.publishing import PUBLISH_TIMEOUT_SECONDS, outgoing

from .domain import Trigger

# Headers RabbitMQ adds when it dead-letters a message: the copy starts a new life.
_BROKER_HEADERS = ("x-death", "x-first-death-", "x-last-death-")


class HostBusyDeferrals:
    """What a dispatcher puts back (`EventDispatcher(put_back=...)`, `defer` with its
    trigger bound); `completions` and `retries` are the notifier's queues, or a test's."""

    def __init__(
        self,
        channel: AbstractChannel,
        delay_seconds: float,
        queue_type: QueueType,
        completions: Queue = NOTIFIER_COMPLETIONS_QUEUE,
        retries: Queue = CALLBACK_RETRY_QUEUE,
    ) -> None:
        self._channel = channel
        self._queue_type = queue_type
        delay_ms = round(delay_seconds * 1000)
        self.delay_queues: dict[Trigger, Queue] = {
            "completed": callback_retry_delay_queue(
                delay_ms, completions, NOTIFIER_COMPLETIONS_DELAY_QUEUE
            ),
            "retry_due": callback_retry_delay_queue(delay_ms, retries),
        }

    async def declare(self) -> None:
        for queue in self.delay_queues.values():
            await declare(self._channel, queue, self._queue_type)

    async def defer(
        self,
        message: AbstractIncomingMessage,
        trigger: Trigger,
        timeout: float = PUBLISH_TIMEOUT_SECONDS,
    ) -> None:
        headers = {
            name: value
            for name, value in (message.headers or {}).items()
            if not name.startswith(_BROKER_HEADERS)
        }
        copy = outgoing(
            message.body,
            message.type,
            persistent=True,
            message_id=message.message_id,
            headers=headers,
        )
        await self._channel.default_exchange.publish(
            copy, routing_key=self.delay_queues[trigger].name, mandatory=True, timeout=timeout
        )
