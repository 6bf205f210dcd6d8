"""A callback whose host is busy waits in RabbitMQ (`HostBusyDeferrals`): a copy of its
message goes through a delay queue and comes back into the queue it came from after
CALLBACK_HOST_BUSY_DELAY_SECONDS, with its body, id, type and headers.

Queues get names of their own here (a uuid), so the e2e stack's notifier, which may be
running on the same vhost, never takes these messages."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from types import SimpleNamespace

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustChannel

from humantask_notifier.deferrals import HostBusyDeferrals
from humantask_notifier.domain import Trigger
from humantask_shared.core.topology import CALLBACK_RETRY_QUEUE, NOTIFIER_COMPLETIONS_QUEUE
from humantask_shared.runtime.broker import REQUEST_ID_HEADER, open_channel
from humantask_shared.runtime.declaring import declare
from tests.support.services import wait_for

DELAY = 0.5


@pytest.fixture
async def channel(amqp_url: str) -> AsyncIterator[AbstractRobustChannel]:
    connection = await aio_pika.connect_robust(amqp_url)
    async with connection:
        yield await open_channel(connection)


@pytest.mark.parametrize("trigger", ["completed", "retry_due"])
async def test_a_deferred_message_comes_back_to_its_queue_after_the_delay(
    channel: AbstractRobustChannel, trigger: Trigger
) -> None:
    own = uuid.uuid4().hex
    completions = replace(NOTIFIER_COMPLETIONS_QUEUE, name=f"test.completions.{own}")
    retries = replace(CALLBACK_RETRY_QUEUE, name=f"test.callback-retry.{own}")
    deferrals = HostBusyDeferrals(channel, DELAY, "classic", completions, retries)
    await deferrals.declare()
    target = completions if trigger == "completed" else retries
    assert deferrals.delay_queues[trigger].name == f"{target.name}.delay-500ms"
    queue = await declare(channel, target, "classic")
    received: list[tuple[float, AbstractIncomingMessage]] = []

    async def on_message(message: AbstractIncomingMessage) -> None:
        received.append((time.monotonic(), message))
        await message.ack()

    await queue.consume(on_message)
    original = SimpleNamespace(
        body=b'{"task_id": "6b0afb07d41f6913ccb264bd"}',
        content_type="application/json",
        message_id="event-1",
        type="task.completed",
        headers={REQUEST_ID_HEADER: "req-9", "traceparent": "00-ab-cd-01", "x-death": []},
    )
    deferred_at = time.monotonic()
    await deferrals.defer(original, trigger)  # type: ignore[arg-type]
    await wait_for(lambda: received, timeout=15, message="the message coming back")

    arrived, message = received[0]
    assert arrived - deferred_at >= DELAY
    assert message.body == original.body
    assert (message.message_id, message.type) == ("event-1", "task.completed")
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    headers = message.headers or {}
    assert headers[REQUEST_ID_HEADER] == "req-9" and headers["traceparent"] == "00-ab-cd-01"
    for queue_name in (*(q.name for q in deferrals.delay_queues.values()), completions.name,
                       retries.name, f"{completions.name}.dead-letter",
                       f"{retries.name}.dead-letter"):  # fmt: skip
        await channel.queue_delete(queue_name)
