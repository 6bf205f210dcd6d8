"""Our side: `CommandServer` on a `Consumer`, and `CommandClient`, wired as the task-store
and the gateway wire them (their `bootstrap.py`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aio_pika.abc import AbstractRobustConnection

from humantask_shared.broker_access import BrokerIdentities
from humantask_shared.command_client import CommandClient
from humantask_shared.command_server import CommandServer
from humantask_shared.messaging import Consumer, open_channel
from humantask_shared.topology import (
    COMMANDS_EXCHANGE,
    Queue,
    check_handlers,
    declare,
    declare_exchange,
)

from .commands import Boom, Ping, PingResult

# Declared as `TASKSTORE_COMMANDS_QUEUE` is (bound by command name, bounded dead letters),
# under a name of the spike's own.
QUEUE = Queue(
    "spike.ours.commands",
    "The spike's commands on our side: one queue, dispatched on the `type` property.",
    carries=(Ping, Boom),
    consumers=("taskstore",),
    publishers=("gateway",),
    exchange=COMMANDS_EXCHANGE,
    dead_letters=True,
)


async def ping(command: Ping) -> PingResult:
    return PingResult(n=command.n, text=command.text)


async def boom(_command: Boom) -> PingResult:
    raise RuntimeError("a bug")


@asynccontextmanager
async def serving(
    connection: AbstractRobustConnection, identities: BrokerIdentities, prefetch: int
) -> AsyncIterator[None]:
    channel = await open_channel(connection, prefetch_count=prefetch)
    server = CommandServer({Ping: ping, Boom: boom}, identities, channel)
    check_handlers(QUEUE, server.command_names)
    consumer = Consumer(await declare(channel, QUEUE), server)
    await consumer.start()
    try:
        yield
    finally:
        await consumer.stop(grace_seconds=5)
        await channel.close()


@asynccontextmanager
async def client(
    connection: AbstractRobustConnection, user_id: str, timeout: float
) -> AsyncIterator[CommandClient]:
    channel = await open_channel(connection)
    exchange = await declare_exchange(channel, COMMANDS_EXCHANGE)
    command_client = CommandClient(channel, exchange, user_id, timeout)
    await command_client.start("gateway")
    try:
        yield command_client
    finally:
        await channel.close()
