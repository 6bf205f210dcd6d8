"""The gateway's boundary over RabbitMQ: the task-store and the notifier, each answering
commands through a `CommandClient` (`boundary.Boundary` says what the app needs of it;
the unit tests pass an in-memory one)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aio_pika.abc import AbstractChannel, AbstractExchange
from aiohttp import web

from humantask_shared.core.topology import COMMANDS_EXCHANGE, NOTIFIER_COMMANDS_EXCHANGE
from humantask_shared.runtime.broker import open_channel
from humantask_shared.runtime.command_client import CommandClient
from humantask_shared.runtime.declaring import declare_exchange
from humantask_shared.runtime.resources import connection_key

from .settings import GatewaySettings


class BrokerBoundary:
    """The task-store and the notifier over RabbitMQ: request/reply clients on one
    channel, made by `connect` (a cleanup context, after the broker connection's). No
    request is served before: the app starts serving once its cleanup contexts have."""

    taskstore: CommandClient
    notifier: CommandClient

    def __init__(self, settings: GatewaySettings) -> None:
        self._settings = settings

    async def connect(self, app: web.Application) -> AsyncIterator[None]:
        channel = await open_channel(app[connection_key])
        self.taskstore = await self._client(
            channel, await declare_exchange(channel, COMMANDS_EXCHANGE)
        )
        self.notifier = await self._client(
            channel, await declare_exchange(channel, NOTIFIER_COMMANDS_EXCHANGE)
        )
        yield
        await channel.close()

    async def _client(self, channel: AbstractChannel, exchange: AbstractExchange) -> CommandClient:
        settings = self._settings
        client = CommandClient(
            channel, exchange, settings.broker_user, settings.rpc_timeout_seconds
        )
        await client.start("gateway")
        return client
