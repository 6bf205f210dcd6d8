"""The broker permission model (`broker_definitions`) against the real RabbitMQ.

The definitions docker-compose.yml loads at boot are imported into a throwaway vhost
(`tests/support/broker_users.py`). Each service's user can set up what its service
sets up, with the very functions the service calls, and is refused (`ACCESS_REFUSED`)
what it must not do; and RabbitMQ refuses a message whose `user_id` is not its
connection's user, which is what the receivers' sender check relies on.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractConnection
from aiormq.exceptions import ChannelAccessRefused, ChannelPreconditionFailed

from humantask_notifier.retries import RetryScheduler
from humantask_shared.core.messages.commands import GetCallbackSecret
from humantask_shared.core.messages.events import CredentialChanged
from humantask_shared.core.topology import (
    CALLBACK_RETRY_QUEUE,
    COMMANDS_EXCHANGE,
    DEAD_LETTER_EXCHANGE,
    EVENTS_EXCHANGE,
    NOTIFIER_COMMANDS_EXCHANGE,
    NOTIFIER_COMMANDS_QUEUE,
    NOTIFIER_COMPLETIONS_QUEUE,
    TASKSTORE_COMMANDS_QUEUE,
)
from humantask_shared.runtime.broker import open_channel
from humantask_shared.runtime.command_client import CommandClient
from humantask_shared.runtime.credential_events import follow_credential_changes
from humantask_shared.runtime.dead_letter_box import DeadLetterBox, NotReplayable
from humantask_shared.runtime.declaring import declare, declare_exchange
from humantask_shared.runtime.publishing import publish_event
from tests.support.broker_users import BrokerUsers, broker_users

REFUSED = (ChannelAccessRefused,)


@pytest.fixture(scope="module")
def users(amqp_url: str) -> Iterator[BrokerUsers]:
    with broker_users(amqp_url, "perm") as created:
        yield created


@asynccontextmanager
async def connected(users: BrokerUsers, service: str) -> AsyncIterator[AbstractConnection]:
    connection = await aio_pika.connect_robust(users.url(service))
    try:
        yield connection
    finally:
        await connection.close()


async def refused(
    users: BrokerUsers, service: str, action: Callable[[AbstractChannel], Awaitable[Any]]
) -> bool:
    """Did the broker refuse `action` to `service`'s user (closing the channel)?"""
    async with connected(users, service) as connection:
        channel = await connection.channel(publisher_confirms=True)
        try:
            await action(channel)
        except REFUSED:
            return True
        return False


@pytest.fixture(scope="module")
async def topology(users: BrokerUsers) -> None:
    """What the services declare at start, each as its own user: which also proves
    that their permissions are enough for it."""
    async with connected(users, "taskstore") as connection:
        channel = await open_channel(connection)
        await declare(channel, TASKSTORE_COMMANDS_QUEUE)
        # Replies go through the default exchange to the caller's reply queue (any queue).
        await channel.default_exchange.publish(
            aio_pika.Message(b"{}"), routing_key=f"{TASKSTORE_COMMANDS_QUEUE.name}.dead-letter"
        )
        await publish_event(
            await declare_exchange(channel, EVENTS_EXCHANGE),
            CredentialChanged(role="customer", principal_id="c", change="revoked"),
        )
    async with connected(users, "notifier") as connection:
        channel = await open_channel(connection)
        for queue in (NOTIFIER_COMPLETIONS_QUEUE, NOTIFIER_COMMANDS_QUEUE, CALLBACK_RETRY_QUEUE):
            await declare(channel, queue)
        retries = RetryScheduler(channel, 1, "classic")
        await retries.declare()
        await retries.schedule("0" * 24, 1, None)
        await retries.start("0" * 24, 2, None)  # a redelivery's first attempt
        exchange = await declare_exchange(channel, COMMANDS_EXCHANGE)
        await CommandClient(channel, exchange, users.name("notifier"), 10).start("notifier")
        async with follow_credential_changes(connection, "notifier", print, print):
            pass


@pytest.mark.usefixtures("topology")
async def test_each_service_sets_up_what_it_needs(users: BrokerUsers) -> None:
    async with connected(users, "gateway") as connection:
        channel = await open_channel(connection)
        for exchange in (COMMANDS_EXCHANGE, NOTIFIER_COMMANDS_EXCHANGE):
            declared = await declare_exchange(channel, exchange)
            await CommandClient(channel, declared, users.name("gateway"), 10).start("gateway")
        heard: list[CredentialChanged] = []
        async with follow_credential_changes(connection, "gateway", heard.append, heard.clear):
            # It hears the task-store's credential events on a queue of its own.
            async with connected(users, "taskstore") as taskstore:
                events = await (await open_channel(taskstore)).get_exchange(EVENTS_EXCHANGE.name)
                await publish_event(
                    events,
                    CredentialChanged(role="worker", principal_id="w", change="key_rotated"),
                )
            for _ in range(100):
                if heard:
                    break
                await asyncio.sleep(0.05)
        assert [event.principal_id for event in heard] == ["w"]
    async with connected(users, "admin") as connection:
        channel = await open_channel(connection)
        exchange = await channel.get_exchange(COMMANDS_EXCHANGE.name, ensure=False)
        await CommandClient(channel, exchange, users.name("admin"), 10).start("admin")


def consume(queue: str) -> Callable[[AbstractChannel], Awaitable[Any]]:
    async def action(channel: AbstractChannel) -> Any:
        async def ignore(_message: Any) -> None:
            pass

        found = await channel.get_queue(queue, ensure=False)
        return await found.consume(ignore)

    return action


Action = Callable[[AbstractChannel], Awaitable[Any]]


def publish(exchange: str, routing_key: str, **properties: Any) -> Action:
    async def action(channel: AbstractChannel) -> Any:
        target = (
            channel.default_exchange
            if exchange == ""
            else await channel.get_exchange(exchange, ensure=False)
        )
        return await target.publish(aio_pika.Message(b"{}", **properties), routing_key=routing_key)

    return action


def bind_own_queue(owner: str, exchange: str, routing_key: str) -> Action:
    async def action(channel: AbstractChannel) -> Any:
        queue = await channel.declare_queue(
            f"{owner}.credentials.{uuid.uuid4().hex}", exclusive=True, auto_delete=True
        )
        return await queue.bind(exchange, routing_key=routing_key)

    return action


def declare_queue(name: str) -> Callable[[AbstractChannel], Awaitable[Any]]:
    async def action(channel: AbstractChannel) -> Any:
        return await channel.declare_queue(name, exclusive=True, auto_delete=True)

    return action


# (service, what it tries, why it must not)
FORBIDDEN = [
    ("gateway", consume(TASKSTORE_COMMANDS_QUEUE.name), "read the task-store's commands"),
    ("gateway", consume(NOTIFIER_COMPLETIONS_QUEUE.name), "read completion events"),
    (
        "gateway",
        declare_queue(f"notifier.replies.{uuid.uuid4().hex}"),
        "pose as the notifier to receive callback secrets",
    ),
    ("gateway", publish(EVENTS_EXCHANGE.name, "task.completed"), "publish events"),
    ("gateway", publish("", TASKSTORE_COMMANDS_QUEUE.name), "bypass the command exchange"),
    (
        "gateway",
        bind_own_queue("gateway", COMMANDS_EXCHANGE.name, "auth.authenticate"),
        "copy the commands of others",
    ),
    ("gateway", bind_own_queue("gateway", EVENTS_EXCHANGE.name, "task.#"), "read task events"),
    (
        "notifier",
        bind_own_queue("notifier", COMMANDS_EXCHANGE.name, "auth.authenticate"),
        "see (and answer) the gateway's commands to the task-store",
    ),
    ("notifier", consume(TASKSTORE_COMMANDS_QUEUE.name), "read the task-store's commands"),
    ("notifier", publish(EVENTS_EXCHANGE.name, "task.completed"), "publish events"),
    ("notifier", declare_queue(f"gateway.replies.{uuid.uuid4().hex}"), "pose as the gateway"),
    ("taskstore", consume(NOTIFIER_COMPLETIONS_QUEUE.name), "read the notifier's queues"),
    ("taskstore", publish(EVENTS_EXCHANGE.name, "anything.else"), "publish a non-event"),
    ("admin", publish(EVENTS_EXCHANGE.name, "credential.changed"), "publish events"),
    (
        "admin",
        publish(DEAD_LETTER_EXCHANGE.name, NOTIFIER_COMPLETIONS_QUEUE.name),
        "dead-letter messages itself",
    ),
    ("admin", consume(TASKSTORE_COMMANDS_QUEUE.name), "read the task-store's commands"),
    ("admin", consume(NOTIFIER_COMPLETIONS_QUEUE.name), "take the notifier's work"),
    ("admin", consume(CALLBACK_RETRY_QUEUE.name), "take the notifier's retries"),
    ("admin", declare_queue("gateway.replies.x"), "declare queues of others"),
]


@pytest.mark.usefixtures("topology")
@pytest.mark.parametrize(
    ("service", "action", "why"),
    FORBIDDEN,
    ids=[f"{service} may not {why}" for service, _, why in FORBIDDEN],
)
async def test_a_service_user_is_refused_what_it_must_not_do(
    users: BrokerUsers, service: str, action: Callable[[AbstractChannel], Awaitable[Any]], why: str
) -> None:
    assert await refused(users, service, action), f"{service} could {why}"


@pytest.mark.usefixtures("topology")
@pytest.mark.parametrize("forger", ["gateway", "notifier"])
async def test_the_broker_refuses_a_forged_user_id(users: BrokerUsers, forger: str) -> None:
    """A command is only as trustworthy as its `user_id`: the broker vouches for it."""
    forged = publish(
        COMMANDS_EXCHANGE.name,
        GetCallbackSecret.routing_key,
        user_id=users.name("admin"),
        type=GetCallbackSecret.routing_key,
    )
    async with connected(users, forger) as connection:
        channel = await connection.channel(publisher_confirms=True)
        with pytest.raises(ChannelPreconditionFailed, match="user_id"):
            await forged(channel)
    # Its own name goes through.
    honest = publish(
        COMMANDS_EXCHANGE.name,
        GetCallbackSecret.routing_key,
        user_id=users.name(forger),
        type=GetCallbackSecret.routing_key,
    )
    assert not await refused(users, forger, honest)


@pytest.mark.usefixtures("topology")
async def test_the_admin_replays_a_dead_letter_into_its_work_queue_and_no_command(
    users: BrokerUsers,
) -> None:
    """`humantask-admin dead-letters`, as the admin's broker user: it takes a dead letter
    (and nothing from a work queue), republishes it with its id and headers into its
    work queue, and never replays a command."""
    async with connected(users, "taskstore") as connection:
        channel = await open_channel(connection)
        dead_letters = await channel.get_exchange(DEAD_LETTER_EXCHANGE.name, ensure=False)
        await dead_letters.publish(
            aio_pika.Message(
                b'{"task_id": "1"}',
                message_id="the-dead-letter",
                type="task.completed",
                headers={
                    "x-request-id": "req-9",
                    "traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01",
                },
            ),
            routing_key=NOTIFIER_COMPLETIONS_QUEUE.name,
        )
    async with connected(users, "admin") as connection:
        channel = await open_channel(connection)
        box = DeadLetterBox(channel, NOTIFIER_COMPLETIONS_QUEUE.name)
        assert [letter.id for letter in await box.take()] == ["the-dead-letter"]
        [replayed] = await box.replay(["the-dead-letter"])
        assert replayed.type == "task.completed"
        await channel.close()
        channel = await open_channel(connection)
        commands = DeadLetterBox(channel, TASKSTORE_COMMANDS_QUEUE.name)
        assert await commands.take()  # the topology's `{}`: inspected...
        with pytest.raises(NotReplayable):
            await commands.replay(None)  # ...never replayed
        await channel.close()
    async with connected(users, "notifier") as connection:
        channel = await open_channel(connection)
        work = await channel.get_queue(NOTIFIER_COMPLETIONS_QUEUE.name, ensure=False)
        message = await work.get(no_ack=True, fail=False)
        assert message is not None
        assert (message.message_id, message.type, message.body) == (
            "the-dead-letter",
            "task.completed",
            b'{"task_id": "1"}',
        )
        assert message.headers["x-request-id"] == "req-9"
        assert str(message.headers["traceparent"]).startswith("00-111")
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        empty = await channel.get_queue(f"{NOTIFIER_COMPLETIONS_QUEUE.name}.dead-letter")
        assert await empty.get(no_ack=True, fail=False) is None
