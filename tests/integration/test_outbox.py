"""The outbox: events written with their task reach RabbitMQ, even when the first attempt
did not, and leave the outbox once the broker confirmed them. Real RabbitMQ and MongoDB."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aio_pika
import orjson
import pytest
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage, AbstractRobustConnection
from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase

from humantask_shared.core.messages.envelope import StampedEvent
from humantask_shared.core.messages.events import TaskCreated
from humantask_shared.core.models import CreateTaskRequest, new_task_id
from humantask_shared.core.timeutil import utcnow
from humantask_shared.core.topology import EVENTS_EXCHANGE
from humantask_shared.runtime.broker import open_channel
from humantask_shared.runtime.declaring import declare_exchange
from humantask_shared.runtime.publishing import stamp_all
from humantask_taskstore import domain
from humantask_taskstore.outbox import OutboxPublisher
from humantask_taskstore.repository import OutboxStore, TaskRepository, ensure_indexes
from humantask_taskstore.repository.documents import TASKS
from tests.support.services import wait_for

SEED: dict[str, Any] = {
    "callback_url": "http://www.example.com/test_callback",
    "instruction": "Would you say this item is big or small?",
    "attachment_type": "text",
    "attachment": "car",
    "categories": ["big", "small"],
}
STALE_AFTER = timedelta(seconds=30)
WAIT = 15


@pytest.fixture
async def db(fresh_database) -> AsyncIterator[AsyncDatabase]:
    async for database in fresh_database(ensure_indexes):
        yield database


@pytest.fixture
async def events_exchange(connection: AbstractRobustConnection) -> AbstractExchange:
    channel = await open_channel(connection)
    return await declare_exchange(channel, EVENTS_EXCHANGE)


class Received:
    """The events that reached a test queue bound to `task.*` on humantask.events."""

    def __init__(self) -> None:
        self.messages: list[AbstractIncomingMessage] = []

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        self.messages.append(message)

    def of_task(self, task_id: str) -> list[AbstractIncomingMessage]:
        return [
            m
            for m in self.messages
            if orjson.loads(m.body).get("task", {}).get("task_id") == task_id
        ]

    def with_id(self, message_id: str) -> list[AbstractIncomingMessage]:
        return [m for m in self.messages if m.message_id == message_id]


@pytest.fixture
async def received(connection: AbstractRobustConnection) -> AsyncIterator[Received]:
    channel = await connection.channel()
    queue = await channel.declare_queue(f"test.outbox.{uuid.uuid4().hex}", auto_delete=False)
    await queue.bind(EVENTS_EXCHANGE.name, routing_key="task.*")
    await queue.bind(EVENTS_EXCHANGE.name, routing_key="test.sentinel")
    into = Received()
    await queue.consume(into.on_message, no_ack=True)
    try:
        yield into
    finally:
        await queue.delete(if_unused=False, if_empty=False)
        await channel.close()


async def write_task(
    tasks: TaskRepository, *, stale: bool
) -> tuple[domain.TaskRecord, StampedEvent]:
    """A task whose task.created event is in its outbox and was never published."""
    now = utcnow() - (2 * STALE_AFTER if stale else timedelta(0))
    request = CreateTaskRequest.model_validate(SEED)
    record, events = domain.create_task(new_task_id(), "cust-a", request, now, "req-outbox")
    (event,) = stamp_all(events, now)
    await tasks.add(record, [event], now)
    assert isinstance(event.event, TaskCreated)
    return record, event


async def outbox_state(db: AsyncDatabase, task_id: str) -> tuple[list[str], bool]:
    """The task's unpublished events, and whether the relay's index holds it."""
    doc = await db[TASKS].find_one({"_id": ObjectId(task_id)})
    assert doc is not None
    return list(doc["outbox"]), "outbox_at" in doc


async def sentinel_seen(exchange: AbstractExchange, received: Received) -> None:
    """Everything published (and confirmed) before now has reached the test queue once
    a sentinel published now has: nothing else is on its way."""
    marker = uuid.uuid4().hex
    await exchange.publish(aio_pika.Message(b"{}", message_id=marker), routing_key="test.sentinel")
    await wait_for(lambda: received.with_id(marker), timeout=WAIT, message="the sentinel")


# -- the relay -------------------------------------------------------------------------


async def test_the_relay_publishes_what_a_crash_left_in_the_outbox(
    db: AsyncDatabase, events_exchange: AbstractExchange, received: Received
) -> None:
    tasks = TaskRepository(db)
    record, event = await write_task(tasks, stale=True)
    assert await outbox_state(db, record.task_id) == ([event.body], True)

    published = await OutboxPublisher(OutboxStore(db), events_exchange).relay_once(STALE_AFTER)

    assert published == 1
    messages = await wait_for(
        lambda: received.of_task(record.task_id),
        timeout=WAIT,
        message="the left-over task.created event",
    )
    message = messages[0]
    # Byte for byte what the outbox held; the message properties say what it is.
    assert message.body.decode() == event.body
    assert message.message_id == event.stamp.event_id
    assert message.type == "task.created"
    assert message.routing_key == "task.created"
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert message.headers["x-request-id"] == "req-outbox"
    assert TaskCreated.model_validate_json(message.body).task == record.to_public()

    assert await outbox_state(db, record.task_id) == ([], False)
    # Nothing is left to relay, and nothing is published twice.
    assert await OutboxPublisher(OutboxStore(db), events_exchange).relay_once(STALE_AFTER) == 0
    await sentinel_seen(events_exchange, received)
    assert len(received.of_task(record.task_id)) == 1


async def test_the_relay_leaves_fresh_events_to_the_handler_that_wrote_them(
    db: AsyncDatabase, events_exchange: AbstractExchange, received: Received
) -> None:
    tasks = TaskRepository(db)
    record, event = await write_task(tasks, stale=False)

    assert await OutboxPublisher(OutboxStore(db), events_exchange).relay_once(STALE_AFTER) == 0
    assert await outbox_state(db, record.task_id) == ([event.body], True)
    await sentinel_seen(events_exchange, received)
    assert received.of_task(record.task_id) == []


async def test_publish_removes_events_once_the_broker_confirmed_them(
    db: AsyncDatabase, events_exchange: AbstractExchange, received: Received
) -> None:
    tasks = TaskRepository(db)
    record, event = await write_task(tasks, stale=False)
    canceled, raised = domain.cancel_task(record, utcnow())
    cancel_events = stamp_all(raised, utcnow())
    saved = await tasks.save(canceled, cancel_events, utcnow())
    assert saved is not None
    assert len((await outbox_state(db, record.task_id))[0]) == 2

    publisher = OutboxPublisher(OutboxStore(db), events_exchange)
    await publisher.publish(record.task_id, [event])
    # Only what was published left the outbox.
    assert await outbox_state(db, record.task_id) == ([cancel_events[0].body], True)

    await publisher.publish(record.task_id, cancel_events)
    assert await outbox_state(db, record.task_id) == ([], False)

    def both() -> list[AbstractIncomingMessage]:
        found = received.of_task(record.task_id)
        return found if len(found) == 2 else []

    messages = await wait_for(both, timeout=WAIT, message="both events")
    assert [m.type for m in messages] == ["task.created", "task.canceled"]


async def test_publications_after_the_reply_keep_a_tasks_order_and_drain(
    db: AsyncDatabase, events_exchange: AbstractExchange, received: Received
) -> None:
    tasks = TaskRepository(db)
    record, event = await write_task(tasks, stale=False)
    canceled, raised = domain.cancel_task(record, utcnow())
    cancel_events = stamp_all(raised, utcnow())
    assert await tasks.save(canceled, cancel_events, utcnow()) is not None

    publisher = OutboxPublisher(OutboxStore(db), events_exchange)
    # Both scheduled at once, as a create and a quick cancel would be.
    publisher.publish_after_reply(record.task_id, [event])
    publisher.publish_after_reply(record.task_id, cancel_events)
    await publisher.drain(timeout_seconds=WAIT)

    assert await outbox_state(db, record.task_id) == ([], False)
    await sentinel_seen(events_exchange, received)
    assert [m.type for m in received.of_task(record.task_id)] == ["task.created", "task.canceled"]


async def test_a_failed_publish_leaves_the_events_for_the_relay(
    db: AsyncDatabase,
    connection: AbstractRobustConnection,
    events_exchange: AbstractExchange,
    received: Received,
) -> None:
    tasks = TaskRepository(db)
    record, event = await write_task(tasks, stale=True)
    # The broker refuses the publish (no such exchange): it must not count as published.
    broken_channel = await open_channel(connection)
    missing = await broken_channel.get_exchange(f"test.missing.{uuid.uuid4().hex}", ensure=False)
    try:
        await OutboxPublisher(OutboxStore(db), missing).publish(record.task_id, [event])
    finally:
        if not broken_channel.is_closed:
            await broken_channel.close()
    assert await outbox_state(db, record.task_id) == ([event.body], True)

    assert await OutboxPublisher(OutboxStore(db), events_exchange).relay_once(STALE_AFTER) == 1
    await wait_for(
        lambda: received.of_task(record.task_id), timeout=WAIT, message="the relayed event"
    )
    assert await outbox_state(db, record.task_id) == ([], False)


async def test_a_taken_outbox_is_marked_and_not_stale_again_until_later(db: AsyncDatabase) -> None:
    tasks, outboxes = TaskRepository(db), OutboxStore(db)
    record, event = await write_task(tasks, stale=True)
    now = utcnow()

    taken = await outboxes.take_stale(now - STALE_AFTER, now)
    assert taken is not None
    assert taken.task_id == record.task_id
    assert taken.events == [event.body]
    doc = await db[TASKS].find_one({"_id": ObjectId(record.task_id)})
    assert doc is not None and abs(doc["outbox_at"] - now) < timedelta(milliseconds=1)
    assert doc["outbox"] == [event.body]  # taken is not published
    # Taken just now: another relay skips it until STALE_AFTER has passed again.
    assert await outboxes.take_stale(utcnow() - STALE_AFTER, utcnow()) is None
    later = now + 2 * STALE_AFTER
    assert (await outboxes.take_stale(later - STALE_AFTER, later)) is not None


async def test_a_task_whose_outbox_was_emptied_elsewhere_leaves_the_relays_index(
    db: AsyncDatabase, events_exchange: AbstractExchange
) -> None:
    # Its events were published and pulled by a handler while a later change's events
    # were in the outbox too, so the task kept its relay stamp: one visit clears it.
    tasks, outboxes = TaskRepository(db), OutboxStore(db)
    record, _ = await write_task(tasks, stale=True)
    await db[TASKS].update_one({"_id": ObjectId(record.task_id)}, {"$set": {"outbox": []}})

    assert await OutboxPublisher(OutboxStore(db), events_exchange).relay_once(STALE_AFTER) == 0
    assert await outbox_state(db, record.task_id) == ([], False)
    now = utcnow()
    assert await outboxes.take_stale(now + 2 * STALE_AFTER, now) is None


async def test_removing_published_events_keeps_those_a_later_change_added(
    db: AsyncDatabase,
) -> None:
    tasks, outboxes = TaskRepository(db), OutboxStore(db)
    record, created = await write_task(tasks, stale=False)
    canceled, raised = domain.cancel_task(record, utcnow())
    events = stamp_all(raised, utcnow())
    assert await tasks.save(canceled, events, utcnow()) is not None
    # The create's publisher finishes after the cancel was written.
    await outboxes.remove([(record.task_id, [created.body])])
    assert await outbox_state(db, record.task_id) == ([events[0].body], True)
    await outboxes.remove([(record.task_id, [events[0].body])])
    assert await outbox_state(db, record.task_id) == ([], False)


async def test_two_relays_taking_at_once_do_not_both_get_a_task(db: AsyncDatabase) -> None:
    written = {(await write_task(TaskRepository(db), stale=True))[0].task_id for _ in range(2)}
    now = utcnow()
    first, second = await asyncio.gather(
        OutboxStore(db).take_stale(now - STALE_AFTER, now),
        OutboxStore(db).take_stale(now - STALE_AFTER, now),
    )
    # Each relay got a task of its own; nothing stale is left for a third.
    assert first is not None and second is not None
    assert {first.task_id, second.task_id} == written
    assert await OutboxStore(db).take_stale(now - STALE_AFTER, now) is None


async def test_racing_relays_publish_each_event_once(
    db: AsyncDatabase,
    connection: AbstractRobustConnection,
    events_exchange: AbstractExchange,
    received: Received,
) -> None:
    tasks = TaskRepository(db)
    written = [await write_task(tasks, stale=True) for _ in range(10)]
    other_channel = await open_channel(connection)
    try:
        other_exchange = await declare_exchange(other_channel, EVENTS_EXCHANGE)
        counts = await asyncio.gather(
            OutboxPublisher(OutboxStore(db), events_exchange).relay_once(STALE_AFTER),
            OutboxPublisher(OutboxStore(db), other_exchange).relay_once(STALE_AFTER),
        )
    finally:
        await other_channel.close()

    assert sum(counts) == len(written)
    await sentinel_seen(events_exchange, received)
    for record, event in written:
        assert len(received.with_id(event.stamp.event_id)) == 1, record.task_id
        assert await outbox_state(db, record.task_id) == ([], False)
