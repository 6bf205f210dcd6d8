"""The retry of a callback waits in RabbitMQ: a delay queue whose TTL dead-letters the
message into the queue notifiers consume, exactly one delay after it was scheduled.

Queues get names of their own here (a uuid), so the e2e stack's notifier, which may be
running on the same vhost, never takes these messages."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustChannel

from humantask_notifier.retries import RetryScheduler
from humantask_shared.core.messages.retries import RetryDue
from humantask_shared.core.topology import CALLBACK_RETRY_QUEUE, Queue
from humantask_shared.runtime.broker import REQUEST_ID_HEADER, open_channel
from tests.support.services import wait_for

DELAY = 0.5


@pytest.fixture
async def channel(amqp_url: str) -> AsyncIterator[AbstractRobustChannel]:
    connection = await aio_pika.connect_robust(amqp_url)
    async with connection:
        yield await open_channel(connection)


@pytest.fixture
def retries() -> Queue:
    return replace(CALLBACK_RETRY_QUEUE, name=f"test.callback-retry.{uuid.uuid4().hex}")


async def test_a_retry_comes_due_after_the_delay_and_not_before(
    channel: AbstractRobustChannel, retries: Queue
) -> None:
    scheduler = RetryScheduler(channel, DELAY, "classic", retries)
    await scheduler.declare()
    assert scheduler.delay_queue.name == f"{retries.name}.delay-500ms"
    due = await channel.declare_queue(retries.name, passive=True)
    received: list[tuple[float, AbstractIncomingMessage]] = []

    async def on_message(message: AbstractIncomingMessage) -> None:
        received.append((time.monotonic(), message))
        await message.ack()

    await due.consume(on_message)
    scheduled_at = time.monotonic()
    await scheduler.schedule("6b0afb07d41f6913ccb264bd", 1, "req-7")
    await wait_for(lambda: received, timeout=15, message="the retry coming due")

    arrived, message = received[0]
    assert arrived - scheduled_at >= DELAY
    assert RetryDue.model_validate_json(message.body).task_id == "6b0afb07d41f6913ccb264bd"
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert (message.headers or {})[REQUEST_ID_HEADER] == "req-7"
    for name in (scheduler.delay_queue.name, retries.name, f"{retries.name}.dead-letter"):
        await channel.queue_delete(name)


async def test_another_delay_gets_a_queue_of_its_own(
    channel: AbstractRobustChannel, retries: Queue
) -> None:
    # A redeclaration with another TTL would fail with PRECONDITION_FAILED and close the
    # channel; a notifier restarted with another delay must start anyway.
    first = RetryScheduler(channel, 60, "classic", retries)
    second = RetryScheduler(channel, 0.25, "classic", retries)
    await first.declare()
    await second.declare()
    assert {first.delay_queue.name, second.delay_queue.name} == {
        f"{retries.name}.delay-60000ms",
        f"{retries.name}.delay-250ms",
    }
    for name in (
        first.delay_queue.name,
        second.delay_queue.name,
        retries.name,
        f"{retries.name}.dead-letter",
    ):
        await channel.queue_delete(name)
