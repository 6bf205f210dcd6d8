"""Each service declares each exchange, queue and binding once per channel at its start:
its bootstrap run on a broker connection that records what is declared on it. The
dead-letter queues it declares are those whose depth it reports."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
from aiohttp import web

from humantask_gateway import bootstrap as gateway
from humantask_gateway.appkeys import boundary_key
from humantask_gateway.settings import GatewaySettings
from humantask_notifier import bootstrap as notifier
from humantask_notifier.settings import NotifierSettings
from humantask_shared.core.topology import Service, dead_letter_queues
from humantask_shared.runtime.resources import connection_key, database_key
from humantask_taskstore import bootstrap as taskstore
from humantask_taskstore.cursors import CursorSigner
from humantask_taskstore.settings import TaskStoreSettings


class RecordingQueue:
    def __init__(self, channel: RecordingChannel, name: str) -> None:
        self.channel, self.name = channel, name

    async def bind(self, exchange: Any, routing_key: str) -> None:
        self.channel.declared.append(f"binding {exchange.name} {routing_key} {self.name}")

    async def consume(self, callback: Any, no_ack: bool = False) -> str:
        return f"consumer of {self.name}"

    async def cancel(self, consumer_tag: str) -> None:
        pass


class RecordingExchange:
    def __init__(self, name: str) -> None:
        self.name = name


class RecordingChannel:
    def __init__(self) -> None:
        self.declared: list[str] = []

    async def set_qos(self, prefetch_count: int) -> None:
        pass

    async def declare_exchange(self, name: str, *_args: Any, **_options: Any) -> RecordingExchange:
        self.declared.append(f"exchange {name}")
        return RecordingExchange(name)

    async def declare_queue(self, name: str, **_options: Any) -> RecordingQueue:
        self.declared.append(f"queue {name}")
        return RecordingQueue(self, name)

    async def close(self) -> None:
        pass


class RecordingConnection:
    def __init__(self) -> None:
        self.channels: list[RecordingChannel] = []
        self.reconnect_callbacks: set[Callable[..., None]] = set()

    async def channel(self, **_options: Any) -> RecordingChannel:
        self.channels.append(RecordingChannel())
        return self.channels[-1]


Context = Callable[[web.Application], AsyncIterator[None]]


@asynccontextmanager
async def started(app: web.Application, contexts: list[Context]) -> AsyncIterator[None]:
    """`contexts` of `app`'s cleanup contexts entered in order, as aiohttp does at start."""
    async with AsyncExitStack() as stack:
        for context in contexts:
            await stack.enter_async_context(asynccontextmanager(context)(app))
        yield


def gateway_app(connection: RecordingConnection) -> tuple[web.Application, list[Context]]:
    app = gateway.production_app(GatewaySettings())
    return app, [app[boundary_key].connect, gateway.credential_changes_ctx]


def notifier_app(connection: RecordingConnection) -> tuple[web.Application, list[Context]]:
    app = notifier.create_app(NotifierSettings())
    contexts = [notifier.dependencies_ctx, notifier.credential_changes_ctx, notifier.consumers_ctx]
    return app, contexts


def taskstore_app(connection: RecordingConnection) -> tuple[web.Application, list[Context]]:
    app = taskstore.create_app(TaskStoreSettings())
    app[taskstore.list_tokens_key] = CursorSigner(bytes(32))
    return app, [taskstore.commands_ctx, taskstore.batch_progress_ctx, taskstore.quality_ctx]


@pytest.mark.parametrize(
    ("service", "name", "follows_credentials"),
    [
        (gateway_app, "gateway", True),
        (notifier_app, "notifier", True),
        (taskstore_app, "taskstore", False),
    ],
)
async def test_a_service_declares_each_thing_once_per_channel(
    service: Callable[[RecordingConnection], tuple[web.Application, list[Context]]],
    name: Service,
    follows_credentials: bool,
) -> None:
    connection = RecordingConnection()
    app, contexts = service(connection)
    app[connection_key] = connection  # type: ignore[assignment]
    app[database_key] = defaultdict(dict)  # type: ignore[assignment]
    async with started(app, contexts):
        assert len(connection.reconnect_callbacks) == follows_credentials
    for channel in connection.channels:
        repeated = {what: n for what, n in Counter(channel.declared).items() if n > 1}
        assert repeated == {}, channel.declared
    assert any(channel.declared for channel in connection.channels)
    declared = {what for channel in connection.channels for what in channel.declared}
    queues = {what.removeprefix("queue ") for what in declared if what.startswith("queue ")}
    dead_letters = {queue for queue in queues if queue.endswith(".dead-letter")}
    assert dead_letters == set(dead_letter_queues(name))
    # A closed credential follower leaves no callback behind on the connection.
    assert connection.reconnect_callbacks == set()
