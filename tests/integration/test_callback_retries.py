"""The retry of a callback waits in RabbitMQ: a delay queue whose TTL dead-letters the
message into the queue notifiers consume, exactly one delay after it was scheduled.

Queues get names of their own here (a uuid), so the e2e stack's notifier, which may be
running on the same vhost, never takes these messages."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustChannel

from humantask_notifier.retries import RetryDue, RetryScheduler, delay_queue_name
from humantask_shared.messaging import REQUEST_ID_HEADER, open_channel
from tests.support.services import wait_for

DELAY = 0.5


@pytest.fixture
async def channel(amqp_url: str) -> AsyncIterator[AbstractRobustChannel]:
    connection = await aio_pika.connect_robust(amqp_url)
    async with connection:
        yield await open_channel(connection)


@pytest.fixture
def queue_name() -> str:
    return f"test.callback-retry.{uuid.uuid4().hex}"


async def test_a_retry_comes_due_after_the_delay_and_not_before(
    channel: AbstractRobustChannel, queue_name: str
) -> None:
    scheduler = RetryScheduler(channel, DELAY, queue=queue_name)
    await scheduler.declare()
    assert scheduler.delay_queue == f"{queue_name}.delay-500ms"
    due = await channel.declare_queue(queue_name, passive=True)
    received: list[tuple[float, AbstractIncomingMessage]] = []

    async def on_message(message: AbstractIncomingMessage) -> None:
        received.append((time.monotonic(), message))
        await message.ack()

    await due.consume(on_message)
    scheduled_at = time.monotonic()
    await scheduler.schedule("6b0afb07d41f6913ccb264bd", "req-7")
    await wait_for(lambda: received, timeout=15, message="the retry coming due")

    arrived, message = received[0]
    assert arrived - scheduled_at >= DELAY
    assert RetryDue.model_validate_json(message.body).task_id == "6b0afb07d41f6913ccb264bd"
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert (message.headers or {})[REQUEST_ID_HEADER] == "req-7"
    for name in (scheduler.delay_queue, queue_name, f"{queue_name}.dead-letter"):
        await channel.queue_delete(name)


async def test_another_delay_gets_a_queue_of_its_own(
    channel: AbstractRobustChannel, queue_name: str
) -> None:
    # A redeclaration with another TTL would fail with PRECONDITION_FAILED and close the
    # channel; a notifier restarted with another delay must start anyway.
    first = RetryScheduler(channel, 60, queue=queue_name)
    second = RetryScheduler(channel, 0.25, queue=queue_name)
    await first.declare()
    await second.declare()
    assert {first.delay_queue, second.delay_queue} == {
        delay_queue_name(60000, queue_name),
        delay_queue_name(250, queue_name),
    }
    for name in (first.delay_queue, second.delay_queue, queue_name, f"{queue_name}.dead-letter"):
        await channel.queue_delete(name)
