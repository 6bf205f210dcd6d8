"""The RabbitMQ adapter against a real broker: RPC timeouts and expiry, the consumer's
settling rules and graceful stop, and the command server. Every test declares queues of
its own (uuid names) and deletes them."""

from __future__ import annotations

import asyncio
import time
import typing
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aio_pika
import orjson
import pytest
from aio_pika.abc import (
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
)
from prometheus_client import REGISTRY, generate_latest
from pydantic import BaseModel
from pymongo.errors import ServerSelectionTimeoutError

from humantask_shared.core.broker_access import BrokerIdentities, broker_user
from humantask_shared.core.errors import NotFound, Unavailable
from humantask_shared.core.messages.base import Command, Sender
from humantask_shared.core.topology import (
    COMMANDS,
    COMMANDS_EXCHANGE,
    DEAD_LETTER_ARGUMENTS,
    REPLY_QUEUE,
    Queue,
    QueueType,
)
from humantask_shared.runtime.broker import DEADLINE_HEADER, REQUEST_ID_HEADER, open_channel
from humantask_shared.runtime.command_client import CommandClient
from humantask_shared.runtime.command_server import CommandHandler, CommandServer
from humantask_shared.runtime.consumer import Consumer, PoisonMessage
from humantask_shared.runtime.dead_letters import refresh_dead_letter_depths
from humantask_shared.runtime.declaring import declare, declare_exchange
from humantask_shared.runtime.logging import request_id_var
from tests.support.services import wait_for

WAIT = 15


class ProbeResult(BaseModel):
    echo: str


def probe_command(key: str) -> type[Command[ProbeResult]]:
    """A throwaway command type of its own name, so no other consumer ever sees it."""

    class Probe(Command[ProbeResult]):
        routing_key = key

        marker: str

    return Probe


def query_command(routing_key: str) -> type[Command[ProbeResult]]:
    """Like `probe_command`, but a query: its loss costs only a retry."""

    class Query(probe_command(routing_key)):  # type: ignore[misc]
        persistent = False

    return Query


def unique(prefix: str) -> str:
    return f"test.{prefix}.{uuid.uuid4().hex}"


# -- fixtures --------------------------------------------------------------------------


@pytest.fixture
async def channel(connection: AbstractRobustConnection) -> AbstractRobustChannel:
    """Confirms and returned mandatory messages, as the services use; exchanges declared."""
    channel = await open_channel(connection)
    await declare_exchange(channel, COMMANDS_EXCHANGE)
    return channel


@pytest.fixture
async def commands_exchange(channel: AbstractRobustChannel) -> AbstractExchange:
    return await channel.get_exchange(COMMANDS_EXCHANGE.name)


@pytest.fixture
async def queue_names(connection: AbstractRobustConnection) -> AsyncIterator[list[str]]:
    """Names of the queues a test declares; all deleted at the end."""
    names: list[str] = []
    yield names
    cleanup = await connection.channel()
    try:
        for name in names:
            await cleanup.queue_delete(name)
    finally:
        await cleanup.close()


@pytest.fixture
def test_user(amqp_url: str) -> str:
    """The broker user the tests log in as: what a command's `user_id` must say."""
    return broker_user(amqp_url)


@pytest.fixture
def identities(test_user: str) -> BrokerIdentities:
    """A command server's, accepting commands from the tests' own broker user."""
    return BrokerIdentities(dict.fromkeys(typing.get_args(Sender), test_user), test_user)


MakeClient = Callable[[float], Awaitable[CommandClient]]


@pytest.fixture
def make_client(
    channel: AbstractRobustChannel, commands_exchange: AbstractExchange, test_user: str
) -> MakeClient:
    """A started command client, waiting up to the given seconds for each reply."""

    async def make(timeout_seconds: float) -> CommandClient:
        client = CommandClient(channel, commands_exchange, test_user, timeout_seconds)
        await client.start("gateway")
        return client

    return make


async def queue_counts(connection: AbstractRobustConnection, name: str) -> tuple[int, int]:
    """(ready messages, consumers) of a queue, from a passive declare."""
    inspect = await connection.channel()
    try:
        queue = await inspect.declare_queue(name, passive=True, robust=False)
        result = queue.declaration_result
        return result.message_count, result.consumer_count
    finally:
        await inspect.close()


def probe_queue(name: str, command: type[Command[Any]] | None = None) -> Queue:
    """A work queue's declaration (dead-lettering into `<name>.dead-letter`), bound on
    humantask.commands for `command` if given (else reached through the default exchange)."""
    return Queue(
        name,
        "a test's",
        carries=() if command is None else (command,),
        consumers=(),
        publishers=(),
        exchange=None if command is None else COMMANDS_EXCHANGE,
        dead_letters=True,
    )


async def work_queue(
    channel: AbstractRobustChannel,
    names: list[str],
    command: type[Command[Any]] | None = None,
    queue_type: QueueType = "classic",
) -> AbstractQueue:
    name = unique("queue")
    names += [name, f"{name}.dead-letter"]
    return await declare(channel, probe_queue(name, command), queue_type)


async def take_dead_letters(
    channel: AbstractRobustChannel, queue: AbstractQueue
) -> list[AbstractIncomingMessage]:
    dead = await channel.declare_queue(f"{queue.name}.dead-letter", passive=True)
    taken = []
    while (message := await dead.get(fail=False, no_ack=True)) is not None:
        taken.append(message)
    return taken


async def publish(
    channel: AbstractRobustChannel, queue: AbstractQueue, body: bytes, **properties: Any
) -> str:
    message_id = properties.pop("message_id", uuid.uuid4().hex)
    await channel.default_exchange.publish(
        aio_pika.Message(body, message_id=message_id, **properties), routing_key=queue.name
    )
    return message_id


# -- CommandClient ----------------------------------------------------------------------


async def test_a_command_nobody_is_bound_for_is_unavailable_at_once(
    make_client: MakeClient,
) -> None:
    probe = probe_command(unique("unbound"))
    timeout = 10.0
    client = await make_client(timeout)
    started = time.monotonic()
    with pytest.raises(
        Unavailable, match=f"no service is running that handles {probe.routing_key}"
    ):
        await client.send(probe(marker="x"))
    # The broker returns the mandatory message: no need to wait out the timeout.
    assert time.monotonic() - started < timeout / 2


async def test_a_command_nobody_consumes_times_out_and_expires_from_the_queue(
    make_client: MakeClient,
    test_user: str,
    channel: AbstractRobustChannel,
    connection: AbstractRobustConnection,
    queue_names: list[str],
) -> None:
    probe = probe_command(unique("unconsumed"))
    queue = await channel.declare_queue(unique("unconsumed"), durable=True)
    queue_names.append(queue.name)
    await queue.bind(COMMANDS_EXCHANGE.name, routing_key=probe.routing_key)

    timeout = 1.0
    client = await make_client(timeout)
    started = time.monotonic()
    call = asyncio.create_task(client.send(probe(marker="nobody home")))

    async def arrived() -> bool:
        return (await queue_counts(connection, queue.name))[0] == 1

    await wait_for(arrived, timeout=WAIT, message="the command in its queue")
    message = await queue.get(fail=False)
    assert message is not None, "the command never reached its queue"
    # What the broker holds: the caller's deadline and a TTL that ends with it.
    assert message.type == probe.routing_key
    assert message.reply_to and message.correlation_id and message.message_id
    assert message.user_id == test_user
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    deadline_ms = message.headers[DEADLINE_HEADER]
    assert isinstance(deadline_ms, int)
    assert 0 < deadline_ms - time.time() * 1000 <= timeout * 1000
    assert message.expiration is not None and 0 < float(message.expiration) <= timeout
    assert orjson.loads(message.body) == {"marker": "nobody home"}
    await message.nack(requeue=True)

    with pytest.raises(Unavailable, match="did not answer in time"):
        await call
    assert time.monotonic() - started >= timeout * 0.95

    async def expired() -> bool:
        return (await queue_counts(connection, queue.name))[0] == 0

    await wait_for(expired, timeout=WAIT, message="the command expiring from its queue")


async def test_queries_skip_the_brokers_disk_and_writes_do_not(
    make_client: MakeClient, channel: AbstractRobustChannel, queue_names: list[str]
) -> None:
    write, query = probe_command(unique("write")), query_command(unique("query"))
    queue = await channel.declare_queue(unique("modes"), durable=True)
    queue_names.append(queue.name)
    for command in (write, query):
        await queue.bind(COMMANDS_EXCHANGE.name, routing_key=command.routing_key)
    client = await make_client(1.0)
    calls = [asyncio.create_task(client.send(command(marker="m"))) for command in (write, query)]
    modes: dict[str, aio_pika.DeliveryMode] = {}

    async def both_arrived() -> bool:
        while (message := await queue.get(fail=False)) is not None:
            modes[message.type] = message.delivery_mode
            await message.ack()
        return len(modes) == 2

    await wait_for(both_arrived, timeout=WAIT, message="both commands")
    assert modes == {
        write.routing_key: aio_pika.DeliveryMode.PERSISTENT,
        query.routing_key: aio_pika.DeliveryMode.NOT_PERSISTENT,
    }
    for call in calls:
        with pytest.raises(Unavailable):
            await call
    # The real commands: reads are queries, every change is written to disk.
    queries = {command.routing_key for command in COMMANDS if not command.persistent}
    assert queries == {
        "auth.authenticate",
        "task.get",
        "task.list",
        "customer.callback_secret",
        "callback.list",
        "callback.list_failed",
        "account.list",
        # /scale/v1's reads (docs/reference/contract.md §11).
        "task.scale_get",
        "task.scale_list",
        "project.list",
        "project.get",
        "batch.get",
        "batch.status",
        "batch.list",
        "quality.workers",
    }


async def test_a_call_is_answered_through_the_reply_queue(
    make_client: MakeClient,
    identities: BrokerIdentities,
    channel: AbstractRobustChannel,
    queue_names: list[str],
) -> None:
    probe = probe_command(unique("answered"))
    queue = await work_queue(channel, queue_names, probe)
    seen: list[Any] = []

    async def handle(command: Any) -> ProbeResult:
        seen.append(command)
        return ProbeResult(echo=command.marker.upper())

    consumer = Consumer(
        queue, CommandServer(probe_queue(queue.name, probe), {probe: handle}, identities, channel)
    )
    await consumer.start()
    client = await make_client(WAIT)
    try:
        result = await client.send(probe(marker="hello"))
    finally:
        await consumer.stop(grace_seconds=5)
    assert result == ProbeResult(echo="HELLO")
    assert seen == [probe(marker="hello")]


# -- Consumer ----------------------------------------------------------------------------


async def test_a_poison_message_is_dead_lettered(
    channel: AbstractRobustChannel, connection: AbstractRobustConnection, queue_names: list[str]
) -> None:
    queue = await work_queue(channel, queue_names)
    calls: list[bytes] = []

    async def handler(message: AbstractIncomingMessage) -> None:
        calls.append(message.body)
        raise PoisonMessage("cannot parse this")

    consumer = Consumer(queue, handler)
    await consumer.start()
    try:
        message_id = await publish(channel, queue, b"garbage")
        dead = await wait_for(
            lambda: take_dead_letters(channel, queue),
            timeout=WAIT,
            message="the poison message in the dead-letter queue",
        )
    finally:
        await consumer.stop(grace_seconds=5)
    assert [m.message_id for m in dead] == [message_id]
    assert dead[0].body == b"garbage"
    assert dead[0].headers["x-death"][0]["reason"] == "rejected"
    assert calls == [b"garbage"]  # not retried
    assert (await queue_counts(connection, queue.name))[0] == 0


class Hiccup(Exception):
    pass


@pytest.mark.parametrize("error", [Hiccup("database blinked"), ConnectionError("broker blinked")])
async def test_a_transient_error_requeues_and_the_redelivery_is_handled(
    connection: AbstractRobustConnection, queue_names: list[str], error: Exception
) -> None:
    channel = await open_channel(connection, prefetch_count=4)
    queue = await work_queue(channel, queue_names)
    redelivered: list[bool] = []

    async def handler(message: AbstractIncomingMessage) -> None:
        redelivered.append(message.redelivered)
        if len(redelivered) == 1:
            raise error

    consumer = Consumer(queue, handler, transient_errors=(Hiccup,), retry_pause_seconds=0.01)
    await consumer.start()
    await publish(channel, queue, b"try again")
    await wait_for(lambda: len(redelivered) >= 2, timeout=WAIT, message="the redelivery")
    await consumer.stop(grace_seconds=5)
    await channel.close()  # an unacked message would be back in the queue now

    assert redelivered == [False, True]
    assert await queue_counts(connection, queue.name) == (0, 0)
    assert await take_dead_letters(await connection.channel(), queue) == []


async def test_an_unexpected_exception_dead_letters_instead_of_looping(
    channel: AbstractRobustChannel, queue_names: list[str]
) -> None:
    queue = await work_queue(channel, queue_names)
    calls: list[bytes] = []

    async def handler(message: AbstractIncomingMessage) -> None:
        calls.append(message.body)
        raise KeyError("a bug for this message")

    consumer = Consumer(queue, handler, retry_pause_seconds=0.01)
    await consumer.start()
    try:
        message_id = await publish(channel, queue, b"{}")
        dead = await wait_for(
            lambda: take_dead_letters(channel, queue),
            timeout=WAIT,
            message="the failed message in the dead-letter queue",
        )
    finally:
        await consumer.stop(grace_seconds=5)
    assert [m.message_id for m in dead] == [message_id]
    assert calls == [b"{}"]


async def test_the_handler_sees_the_request_id_of_its_message(
    channel: AbstractRobustChannel, queue_names: list[str]
) -> None:
    queue = await work_queue(channel, queue_names)
    seen: list[str | None] = []

    async def handler(message: AbstractIncomingMessage) -> None:
        seen.append(request_id_var.get())

    consumer = Consumer(queue, handler)
    await consumer.start()
    try:
        await publish(channel, queue, b"a", headers={REQUEST_ID_HEADER: "req-42"})
        await publish(channel, queue, b"b")
        await wait_for(lambda: len(seen) == 2, timeout=WAIT)
    finally:
        await consumer.stop(grace_seconds=5)
    assert sorted(seen, key=str) == [None, "req-42"]


async def test_stop_waits_for_the_message_in_hand_and_takes_no_more(
    connection: AbstractRobustConnection, queue_names: list[str]
) -> None:
    channel = await open_channel(connection, prefetch_count=4)
    queue = await work_queue(channel, queue_names)
    started, release = asyncio.Event(), asyncio.Event()
    order: list[str] = []

    async def handler(message: AbstractIncomingMessage) -> None:
        order.append(f"handling {message.body.decode()}")
        started.set()
        await release.wait()
        order.append("handled")

    consumer = Consumer(queue, handler)
    await consumer.start()
    await publish(channel, queue, b"first")
    await wait_for(started.is_set, timeout=WAIT, message="the handler starting")

    stopping = asyncio.create_task(consumer.stop(grace_seconds=30))
    stopping.add_done_callback(lambda _: order.append("stopped"))

    async def unsubscribed() -> bool:
        return (await queue_counts(connection, queue.name))[1] == 0

    await wait_for(unsubscribed, timeout=WAIT, message="the consumer cancelled")
    assert not stopping.done()

    await publish(channel, queue, b"second")

    async def second_waits() -> bool:
        return (await queue_counts(connection, queue.name))[0] == 1

    await wait_for(second_waits, timeout=WAIT, message="the second message left in the queue")
    assert not stopping.done()

    release.set()
    await asyncio.wait_for(stopping, timeout=WAIT)
    assert order == ["handling first", "handled", "stopped"]

    await channel.close()  # the first was acked before stop() returned: it does not come back
    leftover = await connection.channel()
    remaining = await leftover.declare_queue(queue.name, passive=True, robust=False)
    message = await remaining.get(fail=False, no_ack=True)
    assert message is not None and message.body == b"second"
    assert await remaining.get(fail=False) is None
    await leftover.close()


async def test_stop_gives_up_on_a_stuck_handler_after_the_grace_period(
    connection: AbstractRobustConnection, queue_names: list[str]
) -> None:
    channel = await open_channel(connection, prefetch_count=1)
    queue = await work_queue(channel, queue_names)
    started, release = asyncio.Event(), asyncio.Event()

    async def handler(message: AbstractIncomingMessage) -> None:
        started.set()
        await release.wait()

    consumer = Consumer(queue, handler)
    await consumer.start()
    await publish(channel, queue, b"stuck")
    await wait_for(started.is_set, timeout=WAIT)

    grace = 0.3
    before = time.monotonic()
    await consumer.stop(grace_seconds=grace)
    assert time.monotonic() - before >= grace * 0.9
    release.set()
    await channel.close()


# -- CommandServer -----------------------------------------------------------------------


class CommandServerRig:
    """A command server for one throwaway command type on a queue of its own, handling
    one command at a time, and a queue collecting the replies it sends."""

    def __init__(
        self,
        channel: AbstractRobustChannel,
        queue: AbstractQueue,
        probe: type[Command[Any]],
        handle: CommandHandler,
        identities: BrokerIdentities,
    ) -> None:
        self.channel, self.queue, self.probe = channel, queue, probe
        self.user_id = identities.own_user  # the sender of the commands it is sent
        self.consumer = Consumer(
            queue,
            CommandServer(probe_queue(queue.name, probe), {probe: handle}, identities, channel),
        )
        self.replies: list[AbstractIncomingMessage] = []
        self.reply_queue: AbstractQueue | None = None

    async def start(self, names: list[str]) -> None:
        # Named as the gateway's are: a reply goes only to a reply queue of the sender's.
        self.reply_queue = await self.channel.declare_queue(REPLY_QUEUE.for_process("gateway").name)
        names.append(self.reply_queue.name)
        await self.reply_queue.consume(self._on_reply, no_ack=True)
        await self.consumer.start()

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        self.replies.append(message)

    def reply_to(self, correlation_id: str) -> list[dict[str, Any]]:
        return [orjson.loads(m.body) for m in self.replies if m.correlation_id == correlation_id]

    async def send(
        self, body: bytes, correlation_id: str, message_type: str | None = None, **properties: Any
    ) -> str:
        assert self.reply_queue is not None
        return await publish(
            self.channel,
            self.queue,
            body,
            type=message_type or self.probe.routing_key,
            correlation_id=correlation_id,
            **{"user_id": self.user_id, "reply_to": self.reply_queue.name, **properties},
        )

    async def answer(
        self, body: bytes, message_type: str | None = None, **properties: Any
    ) -> dict[str, Any]:
        correlation_id = uuid.uuid4().hex
        await self.send(body, correlation_id, message_type, **properties)
        replies = await wait_for(
            lambda: self.reply_to(correlation_id),
            timeout=WAIT,
            message=f"a reply to {correlation_id}",
        )
        return replies[0]


@pytest.fixture
async def server_rig(
    connection: AbstractRobustConnection,
    queue_names: list[str],
    identities: BrokerIdentities,
) -> AsyncIterator[tuple[CommandServerRig, list[Any]]]:
    channel = await open_channel(connection, prefetch_count=1)  # strictly one at a time
    probe = probe_command(unique("served"))
    queue = await work_queue(channel, queue_names, probe)
    handled: list[Any] = []

    async def handle(command: Any) -> ProbeResult:
        handled.append(command.marker)
        if command.marker == "missing":
            raise NotFound("no such thing")
        if command.marker == "database down":
            raise ServerSelectionTimeoutError("no servers")
        if command.marker == "bug":
            raise OverflowError("date value out of range")
        if command.marker == "type bug":
            raise TypeError("unsupported operand")
        return ProbeResult(echo=command.marker)

    rig = CommandServerRig(channel, queue, probe, handle, identities)
    await rig.start(queue_names)
    try:
        yield rig, handled
    finally:
        await rig.consumer.stop(grace_seconds=5)
        await channel.close()


async def test_a_command_past_its_deadline_is_dropped_without_a_reply(
    server_rig: tuple[CommandServerRig, list[Any]], connection: AbstractRobustConnection
) -> None:
    rig, handled = server_rig
    past = int((time.time() - 1) * 1000)
    await rig.send(b'{"marker": "late"}', "late", headers={DEADLINE_HEADER: past})
    # One at a time, in order: once this one is answered, the late one was dealt with.
    future = int((time.time() + 60) * 1000)
    on_time = await rig.answer(b'{"marker": "on time"}', headers={DEADLINE_HEADER: future})

    assert on_time["ok"] is True and on_time["result"] == {"echo": "on time"}
    assert handled == ["on time"]
    assert rig.reply_to("late") == []
    # Dropped means acked: neither waiting in the queue nor dead-lettered.
    assert (await queue_counts(connection, rig.queue.name))[0] == 0
    assert await take_dead_letters(rig.channel, rig.queue) == []


@pytest.mark.parametrize(
    ("message_type", "body", "words"),
    [
        ("test.unknown-command", b'{"marker": "x"}', "unknown command type"),
        (None, b'{"marker": ', "malformed"),
        (None, b'{"marker": 42}', "malformed"),
        (None, b'{"marker": "x", "extra": 1}', "malformed"),
        # A real command, but not one this server's queue carries.
        ("task.get", b'{"customer_id": "c", "task_id": "t"}', "unknown command type"),
    ],
)
async def test_an_unparseable_command_gets_an_error_reply_and_is_dead_lettered(
    server_rig: tuple[CommandServerRig, list[Any]],
    message_type: str | None,
    body: bytes,
    words: str,
) -> None:
    rig, handled = server_rig
    marker = uuid.uuid4().hex
    reply = await rig.answer(body, message_type, message_id=marker)

    assert reply["ok"] is False
    assert reply["error"]["code"] == "invalid"
    assert words in reply["error"]["message"]
    dead = await wait_for(
        lambda: take_dead_letters(rig.channel, rig.queue),
        timeout=WAIT,
        message="the poison command in the dead-letter queue",
    )
    assert [m.message_id for m in dead] == [marker]
    assert handled == []


async def test_domain_and_database_errors_are_answered_not_dead_lettered(
    server_rig: tuple[CommandServerRig, list[Any]], connection: AbstractRobustConnection
) -> None:
    rig, handled = server_rig
    not_found = await rig.answer(b'{"marker": "missing"}')
    assert not_found == {
        "ok": False,
        "result": None,
        "error": {"code": "not_found", "message": "no such thing"},
    }
    unavailable = await rig.answer(b'{"marker": "database down"}')
    assert unavailable["ok"] is False and unavailable["error"]["code"] == "unavailable"

    assert handled == ["missing", "database down"]
    assert (await queue_counts(connection, rig.queue.name))[0] == 0
    assert await take_dead_letters(rig.channel, rig.queue) == []


async def test_a_reply_goes_to_no_queue_but_a_reply_queue_of_the_senders(
    server_rig: tuple[CommandServerRig, list[Any]],
    connection: AbstractRobustConnection,
    queue_names: list[str],
) -> None:
    rig, handled = server_rig
    victim = await rig.channel.declare_queue(unique("victim"), durable=True)
    queue_names.append(victim.name)
    for marker, message_type in (("elsewhere", None), ("poison elsewhere", "test.unknown")):
        await rig.send(orjson.dumps({"marker": marker}), marker, message_type, reply_to=victim.name)
    await rig.answer(b'{"marker": "after"}')  # one at a time: the others were dealt with
    assert handled == ["elsewhere", "after"]
    assert (await queue_counts(connection, victim.name))[0] == 0


async def test_a_command_without_a_reply_queue_is_still_handled(
    server_rig: tuple[CommandServerRig, list[Any]],
) -> None:
    rig, handled = server_rig
    await publish(
        rig.channel,
        rig.queue,
        b'{"marker": "fire and forget"}',
        type=rig.probe.routing_key,
        user_id=rig.user_id,
    )
    await rig.answer(b'{"marker": "after"}')
    assert handled == ["fire and forget", "after"]
    assert await take_dead_letters(rig.channel, rig.queue) == []


@pytest.mark.parametrize("marker", ["bug", "type bug"])
async def test_a_handler_that_raises_anything_is_answered_at_once_and_dead_lettered(
    server_rig: tuple[CommandServerRig, list[Any]],
    connection: AbstractRobustConnection,
    marker: str,
) -> None:
    """Not only domain errors: whatever a handler raises, its caller gets an error reply
    at once (the gateway answers 503) instead of waiting for its RPC timeout."""
    rig, handled = server_rig
    failed = {"command": rig.probe.routing_key, "outcome": "failed"}
    dead_lettered = {"queue": rig.queue.name}
    message_id = uuid.uuid4().hex
    started = time.monotonic()
    reply = await rig.answer(orjson.dumps({"marker": marker}), message_id=message_id)
    assert time.monotonic() - started < 5
    assert reply["ok"] is False and reply["error"]["code"] == "unavailable"
    assert rig.probe.routing_key in reply["error"]["message"]
    assert "out of range" not in reply["error"]["message"]  # internals stay in the log
    dead = await wait_for(
        lambda: take_dead_letters(rig.channel, rig.queue),
        timeout=WAIT,
        message="the failed command in the dead-letter queue",
    )
    assert [m.message_id for m in dead] == [message_id]
    assert handled == [marker]
    assert REGISTRY.get_sample_value("humantask_commands_total", failed) == 1
    assert REGISTRY.get_sample_value("humantask_dead_lettered_messages_total", dead_lettered) == 1
    # The next command is served as usual.
    assert (await rig.answer(b'{"marker": "after"}'))["ok"] is True


async def test_the_caller_of_a_failing_handler_does_not_wait_for_its_timeout(
    connection: AbstractRobustConnection,
    queue_names: list[str],
    identities: BrokerIdentities,
) -> None:
    channel = await open_channel(connection)
    exchange = await declare_exchange(channel, COMMANDS_EXCHANGE)
    probe = probe_command(unique("failing"))
    queue = await work_queue(channel, queue_names, probe)

    async def handle(command: Any) -> ProbeResult:
        raise KeyError("surprise")

    consumer = Consumer(
        queue, CommandServer(probe_queue(queue.name, probe), {probe: handle}, identities, channel)
    )
    await consumer.start()
    client = CommandClient(channel, exchange, identities.own_user, timeout_seconds=20)
    await client.start("gateway")
    try:
        started = time.monotonic()
        with pytest.raises(Unavailable, match="failed inside the service"):
            await client.send(probe(marker="x"))
        assert time.monotonic() - started < 5
    finally:
        await consumer.stop(grace_seconds=5)
        await channel.close()


# -- Dead-letter queues: bounded, and their depth in /metrics ---------------------------


async def test_dead_letter_queues_are_declared_bounded(
    connection: AbstractRobustConnection,
    channel: AbstractRobustChannel,
    queue_names: list[str],
) -> None:
    queue = await work_queue(channel, queue_names)
    dead_letter = f"{queue.name}.dead-letter"
    assert DEAD_LETTER_ARGUMENTS == {
        "x-max-length": 10_000,
        "x-max-length-bytes": 100 * 1024 * 1024,
        "x-overflow": "drop-head",
        "x-message-ttl": 7 * 24 * 3600 * 1000,
    }
    # The broker holds the queue with exactly these arguments: redeclaring it with them
    # is fine, without them (as an unbounded queue) is refused.
    probe = await connection.channel()
    await probe.declare_queue(dead_letter, durable=True, arguments=DEAD_LETTER_ARGUMENTS)
    with pytest.raises(aio_pika.exceptions.ChannelPreconditionFailed):
        await probe.declare_queue(dead_letter, durable=True)


async def test_an_old_unbounded_dead_letter_queue_is_named_in_the_error(
    connection: AbstractRobustConnection,
    queue_names: list[str],
) -> None:
    name = unique("upgraded")
    queue_names += [name, f"{name}.dead-letter"]
    old = await connection.channel()
    await old.declare_queue(f"{name}.dead-letter", durable=True)  # as older versions did
    await old.close()
    channel = await open_channel(connection)
    with pytest.raises(RuntimeError, match=rf"delete_queue {name}\.dead-letter"):
        await declare(channel, probe_queue(name))


async def test_a_full_dead_letter_queue_drops_its_oldest_message(
    connection: AbstractRobustConnection,
    channel: AbstractRobustChannel,
    queue_names: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(DEAD_LETTER_ARGUMENTS, "x-max-length", 2)
    queue = await work_queue(channel, queue_names)

    async def poison(message: AbstractIncomingMessage) -> None:
        raise PoisonMessage("never")

    consumer = Consumer(queue, poison)
    await consumer.start()
    try:
        sent = [await publish(channel, queue, b"x") for _ in range(3)]
        await wait_for(
            lambda: _depth(connection, f"{queue.name}.dead-letter", 2),
            timeout=WAIT,
            message="two messages in the dead-letter queue",
        )
        await wait_for(
            lambda: _depth(connection, queue.name, 0), timeout=WAIT, message="the work queue empty"
        )
    finally:
        await consumer.stop(grace_seconds=5)
    dead = await take_dead_letters(channel, queue)
    assert [m.message_id for m in dead] == sent[1:]  # drop-head: the first one went


async def _depth(connection: AbstractRobustConnection, name: str, expected: int) -> bool:
    return (await queue_counts(connection, name))[0] == expected


async def test_the_depth_of_dead_letter_queues_is_a_metric(
    connection: AbstractRobustConnection,
    channel: AbstractRobustChannel,
    queue_names: list[str],
) -> None:
    queue = await work_queue(channel, queue_names)
    dead_letter = f"{queue.name}.dead-letter"

    async def poison(message: AbstractIncomingMessage) -> None:
        raise PoisonMessage("never")

    consumer = Consumer(queue, poison)
    await consumer.start()
    try:
        for _ in range(3):
            await publish(channel, queue, b"x")
        await wait_for(
            lambda: _depth(connection, dead_letter, 3),
            timeout=WAIT,
            message="three messages in the dead-letter queue",
        )
    finally:
        await consumer.stop(grace_seconds=5)

    depths = await refresh_dead_letter_depths(connection, [dead_letter])
    assert depths[dead_letter] == 3
    assert REGISTRY.get_sample_value("humantask_dead_letter_messages", {"queue": dead_letter}) == 3
    assert (
        REGISTRY.get_sample_value("humantask_dead_lettered_messages_total", {"queue": queue.name})
        == 3
    )
    assert "humantask_dead_letter_messages{" in generate_latest().decode()
    # A queue that is gone is skipped, not an error.
    assert await refresh_dead_letter_depths(connection, ["no.such.queue.dead-letter"]) == {}
