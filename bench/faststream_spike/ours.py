"""Our side: `CommandServer` behind `SenderCheck` on a `Consumer`, and `RpcClient` behind
`CommandClient`, wired as the task-store and the gateway wire them (their `main.py`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aio_pika.abc import AbstractRobustConnection

from humantask_shared.broker_access import BrokerIdentities, SenderCheck
from humantask_shared.command_client import CommandClient
from humantask_shared.command_server import CommandServer
from humantask_shared.messaging import (
    COMMANDS_EXCHANGE,
    Consumer,
    RpcClient,
    declare_exchanges,
    declare_work_queue,
    open_channel,
)

from .commands import Boom, Ping, PingResult

QUEUE = "spike.ours.commands"


async def ping(command: Ping, _command_id: str) -> PingResult:
    return PingResult(n=command.n, text=command.text)


async def boom(_command: Boom, _command_id: str) -> PingResult:
    raise RuntimeError("a bug")


@asynccontextmanager
async def serving(
    connection: AbstractRobustConnection, identities: BrokerIdentities, prefetch: int
) -> AsyncIterator[None]:
    channel = await open_channel(connection, prefetch_count=prefetch)
    server = CommandServer({Ping: ping, Boom: boom}, channel)
    queue = await declare_work_queue(channel, QUEUE, COMMANDS_EXCHANGE, server.command_names)
    consumer = Consumer(queue, SenderCheck(server, identities, channel))
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
    exchanges = await declare_exchanges(channel)
    rpc = RpcClient(channel, exchanges[COMMANDS_EXCHANGE], user_id=user_id)
    await rpc.start("spike")
    try:
        yield CommandClient(rpc, timeout)
    finally:
        await channel.close()
