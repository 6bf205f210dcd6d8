"""AMQP_QUEUE_TYPE=quorum against the real RabbitMQ (one node is enough for quorum queues):
every durable queue the services declare becomes a quorum queue with the very arguments
of the topology, the per-process queues stay classic, and commands, their expiry, events,
retries and dead letters all work on them.

On a vhost of this module's own: the real queue names, bound to the real exchanges, must
not meet the session's classic ones (a queue cannot change type in place)."""

from __future__ import annotations

import time
import typing
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustChannel, AbstractRobustConnection
from conftest import _session_vhost  # tests/conftest.py

from humantask_notifier.retries import RetryScheduler
from humantask_shared.core.broker_access import BrokerIdentities, broker_user
from humantask_shared.core.errors import Unavailable
from humantask_shared.core.messages.base import Sender
from humantask_shared.core.messages.commands import Authenticate, ListCallbacks, Principal
from humantask_shared.core.messages.envelope import EventStamp
from humantask_shared.core.messages.events import TaskCompleted
from humantask_shared.core.messages.retries import RetryDue
from humantask_shared.core.models import Task
from humantask_shared.core.topology import (
    CALLBACK_RETRY_QUEUE,
    COMMANDS_EXCHANGE,
    EVENTS_EXCHANGE,
    NOTIFIER_COMMANDS_EXCHANGE,
    NOTIFIER_COMMANDS_QUEUE,
    NOTIFIER_COMPLETIONS_QUEUE,
    TASKSTORE_COMMANDS_QUEUE,
    WORK_QUEUES,
    Queue,
)
from humantask_shared.runtime.broker import open_channel
from humantask_shared.runtime.command_client import CommandClient
from humantask_shared.runtime.command_server import CommandServer
from humantask_shared.runtime.consumer import Consumer, PoisonMessage
from humantask_shared.runtime.credential_events import follow_credential_changes
from humantask_shared.runtime.declaring import declare, declare_exchange
from humantask_shared.runtime.publishing import publish_event
from tests.support.callbacks import SEED_TASK
from tests.support.rabbitmq import queue_types
from tests.support.services import wait_for

WAIT = 15


@pytest.fixture(scope="module")
def quorum_url(amqp_url: str) -> Iterator[str]:
    with _session_vhost(amqp_url, "quorum") as url:
        if url == amqp_url:
            pytest.skip("needs a vhost of its own (rabbitmqctl next to the broker)")
        yield url


@pytest.fixture
async def connection(quorum_url: str) -> AsyncIterator[AbstractRobustConnection]:
    connection = await aio_pika.connect_robust(quorum_url)
    async with connection:
        yield connection


@pytest.fixture
async def channel(connection: AbstractRobustConnection) -> AbstractRobustChannel:
    return await open_channel(connection)


async def depth(connection: AbstractRobustConnection, name: str) -> int:
    inspect = await connection.channel()
    try:
        queue = await inspect.declare_queue(name, passive=True, robust=False)
        return queue.declaration_result.message_count or 0
    finally:
        await inspect.close()


async def test_durable_queues_are_quorum_queues_and_per_process_queues_classic(
    connection: AbstractRobustConnection, channel: AbstractRobustChannel, quorum_url: str
) -> None:
    for queue in WORK_QUEUES:
        await declare(channel, queue, "quorum")
    retries = RetryScheduler(channel, 2, "quorum")
    await retries.declare()
    exchange = await declare_exchange(channel, COMMANDS_EXCHANGE)
    await CommandClient(channel, exchange, broker_user(quorum_url), 10).start("gateway")
    async with follow_credential_changes(connection, "gateway", print, print):
        types = queue_types(quorum_url)
    durable = (
        [q.name for q in WORK_QUEUES]
        + [f"{q.name}.dead-letter" for q in WORK_QUEUES]
        + [retries.delay_queue.name]
    )
    assert {name: types.get(name) for name in durable} == dict.fromkeys(durable, "quorum")
    per_process = {name: kind for name, kind in types.items() if name not in durable}
    assert len(per_process) == 2, per_process  # gateway.replies.<id>, gateway.credentials.<id>
    assert set(per_process.values()) == {"classic"}

    # Declared again as classic, a quorum queue is refused; the error says what to do.
    with pytest.raises(RuntimeError, match=r"delete_queue notifier\.task-completed\.dead-letter"):
        await declare(await open_channel(connection), NOTIFIER_COMPLETIONS_QUEUE, "classic")


async def test_a_command_is_answered_through_a_quorum_queue(
    channel: AbstractRobustChannel, quorum_url: str
) -> None:
    async def authenticate(command: Authenticate, *_: Any) -> Principal:
        return Principal(principal_id=f"for-{command.credential_hash}", role=command.role)

    queue = await declare(channel, TASKSTORE_COMMANDS_QUEUE, "quorum")
    user = broker_user(quorum_url)
    identities = BrokerIdentities(dict.fromkeys(typing.get_args(Sender), user), user)
    # Served as if the queue carried nothing but Authenticate.
    only_authenticate = replace(TASKSTORE_COMMANDS_QUEUE, carries=(Authenticate,))
    server = CommandServer(only_authenticate, {Authenticate: authenticate}, identities, channel)
    consumer = Consumer(queue, server)
    await consumer.start()
    try:
        exchange = await declare_exchange(channel, COMMANDS_EXCHANGE)
        client = CommandClient(channel, exchange, user, timeout_seconds=10)
        await client.start("gateway")
        principal = await client.send(Authenticate(credential_hash="abc", role="worker"))
    finally:
        await consumer.stop(grace_seconds=5)
    assert principal == Principal(principal_id="for-abc", role="worker")


async def test_a_command_nobody_answers_expires_from_its_quorum_queue(
    connection: AbstractRobustConnection, channel: AbstractRobustChannel, quorum_url: str
) -> None:
    """The per-message expiration of commands works on quorum queues (RabbitMQ 3.10+)."""
    await declare(channel, NOTIFIER_COMMANDS_QUEUE, "quorum")
    exchange = await declare_exchange(channel, NOTIFIER_COMMANDS_EXCHANGE)
    client = CommandClient(channel, exchange, broker_user(quorum_url), timeout_seconds=0.5)
    await client.start("gateway")
    with pytest.raises(Unavailable):
        await client.send(ListCallbacks(task_id="6b0afb07d41f6913ccb264bd", customer_id="c1"))

    async def expired() -> bool:
        return await depth(connection, NOTIFIER_COMMANDS_QUEUE.name) == 0

    await wait_for(expired, timeout=WAIT, message="the command expiring from the queue")


async def test_an_event_reaches_its_quorum_queue(channel: AbstractRobustChannel) -> None:
    queue = await declare(channel, NOTIFIER_COMPLETIONS_QUEUE, "quorum")
    event = TaskCompleted(
        customer_id="c1", callback_format="form", task=Task.model_validate(SEED_TASK)
    )
    await publish_event(await declare_exchange(channel, EVENTS_EXCHANGE), event)

    received: list[AbstractIncomingMessage] = []

    async def taken() -> bool:
        message = await queue.get(fail=False, no_ack=True)
        if message is not None:
            received.append(message)
        return bool(received)

    await wait_for(taken, timeout=WAIT, message="the event in notifier.task-completed")
    assert TaskCompleted.model_validate_json(received[0].body) == event
    assert EventStamp.model_validate_json(received[0].body).event_id == received[0].message_id
    assert received[0].delivery_mode == aio_pika.DeliveryMode.PERSISTENT


async def test_a_retry_comes_due_and_a_poison_one_is_dead_lettered(
    connection: AbstractRobustConnection, channel: AbstractRobustChannel
) -> None:
    """The delay queue's TTL dead-letters into the retry queue, whose consumer's rejection
    dead-letters into its (bounded, quorum) dead-letter queue."""
    retries = RetryScheduler(channel, 0.3, "quorum")
    await retries.declare()
    due: list[str] = []

    async def reject(message: AbstractIncomingMessage) -> None:
        due.append(RetryDue.model_validate_json(message.body).task_id)
        raise PoisonMessage("a test's")

    consumer = Consumer(await declare(channel, CALLBACK_RETRY_QUEUE, "quorum"), reject)
    await consumer.start()
    task_id = uuid.uuid4().hex[:24]
    scheduled = time.monotonic()
    try:
        await retries.schedule(task_id, 1, None)
        await wait_for(lambda: due, timeout=WAIT, message="the retry coming due")
    finally:
        await consumer.stop(grace_seconds=5)
    assert time.monotonic() - scheduled >= 0.3
    dead_letters = await channel.declare_queue(
        f"{CALLBACK_RETRY_QUEUE.name}.dead-letter", passive=True
    )

    async def dead_lettered() -> bool:
        message = await dead_letters.get(fail=False, no_ack=True)
        return message is not None and RetryDue.model_validate_json(message.body).task_id == task_id

    await wait_for(dead_lettered, timeout=WAIT, message="the poison retry dead-lettered")


async def test_a_full_quorum_dead_letter_queue_drops_its_oldest_message(
    connection: AbstractRobustConnection,
    channel: AbstractRobustChannel,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`x-overflow: drop-head` (with `x-max-length`) works on quorum queues."""
    from humantask_shared.core import topology

    monkeypatch.setitem(topology.DEAD_LETTER_ARGUMENTS, "x-max-length", 2)
    work = Queue(
        f"test.quorum.{uuid.uuid4().hex}",
        "a test's",
        carries=(),
        consumers=(),
        publishers=(),
        dead_letters=True,
    )
    queue = await declare(channel, work, "quorum")

    async def poison(_message: AbstractIncomingMessage) -> None:
        raise PoisonMessage("never")

    consumer = Consumer(queue, poison)
    await consumer.start()
    try:
        for number in range(3):
            await channel.default_exchange.publish(
                aio_pika.Message(b"x", message_id=str(number)), routing_key=work.name
            )

        async def two_kept() -> bool:
            return (
                await depth(connection, f"{work.name}.dead-letter") == 2
                and await depth(connection, work.name) == 0
            )

        await wait_for(two_kept, timeout=WAIT, message="two messages in the dead-letter queue")
    finally:
        await consumer.stop(grace_seconds=5)
    dead = await channel.declare_queue(f"{work.name}.dead-letter", passive=True)
    kept = [(await dead.get(no_ack=True)).message_id for _ in range(2)]
    assert kept == ["1", "2"]  # drop-head: the first one went
    for name in (work.name, f"{work.name}.dead-letter"):
        await channel.queue_delete(name)
