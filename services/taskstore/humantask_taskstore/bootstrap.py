"""The task-store's wiring: settings, resources, adapters, handlers, consumers.

Each resource is an aiohttp cleanup context (create, yield, close), so SIGTERM stops
taking commands, finishes those in hand, then closes the connections:

- the database (indexes ensured) and the broker connection (`humantask_shared.runtime.resources`);
- the key list cursors are signed with, shared by every copy (`repository.keys`);
- the commands: the MongoDB repositories, the outbox and the `credential.changed`
  publisher bound into the handler table (`handler_table.bind_handlers`), served from
  `taskstore.commands` to the services each command is meant for;
- the outbox relay (events a crash or a broker outage left behind) and the task gauges;
- the housekeeping: usage counters reconciled, expired tasks deleted (`housekeeping`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from functools import partial

from aiohttp import web

from humantask_shared.core.topology import EVENTS_EXCHANGE, TASKSTORE_COMMANDS_QUEUE
from humantask_shared.runtime.broker import open_channel
from humantask_shared.runtime.command_server import CommandServer
from humantask_shared.runtime.consumer import Consumer
from humantask_shared.runtime.declaring import declare, declare_exchange
from humantask_shared.runtime.health import add_health_routes
from humantask_shared.runtime.publishing import publish_event
from humantask_shared.runtime.resources import (
    broker_resource,
    connection_key,
    database_key,
    database_resource,
)

from .crash_hook import ExitBeforePublishingCompletion
from .cursors import CursorSigner
from .gauges import task_gauges_watch
from .handler_table import bind_handlers
from .housekeeping import housekeeping
from .outbox import OutboxPublisher
from .ports import Dependencies, Outbox
from .repository import (
    AccountRepository,
    OutboxStore,
    TaskRepository,
    ensure_indexes,
    shared_key,
)
from .settings import TaskStoreSettings

settings_key = web.AppKey("settings", TaskStoreSettings)
outbox_key = web.AppKey("outbox", OutboxPublisher)
list_tokens_key = web.AppKey("list_tokens", CursorSigner)


async def list_tokens_ctx(app: web.Application) -> AsyncIterator[None]:
    """The key every copy signs list cursors with, made by the first (`repository.keys`)."""
    app[list_tokens_key] = CursorSigner(await shared_key(app[database_key]))
    yield


async def commands_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[settings_key]
    channel = await open_channel(app[connection_key], prefetch_count=settings.prefetch_count)
    events = await declare_exchange(channel, EVENTS_EXCHANGE)
    database = app[database_key]
    tasks = TaskRepository(database, settings.list_limits(), settings.quota_limits())
    outbox = OutboxPublisher(OutboxStore(database), events)
    handlers_outbox: Outbox = outbox
    if settings.humantask_test_exit_after_completion_write:
        handlers_outbox = ExitBeforePublishingCompletion(outbox)
    deps = Dependencies(
        tasks=tasks,
        accounts=AccountRepository(database),
        outbox=handlers_outbox,
        announce=partial(publish_event, events),
        work_lease_seconds=settings.work_lease_seconds,
        list_tokens=app[list_tokens_key],
        demo_customer_key_hash=settings.demo_customer_key_hash(),
    )
    app[outbox_key] = outbox

    # Only the services a command is meant for may send it (the broker vouches for user_id).
    server = CommandServer(
        TASKSTORE_COMMANDS_QUEUE, bind_handlers(deps), settings.broker_identities(), channel
    )
    queue = await declare(channel, TASKSTORE_COMMANDS_QUEUE, settings.amqp_queue_type)
    consumer = Consumer(queue, server)
    await consumer.start()
    yield
    await consumer.stop(settings.shutdown_grace_seconds)
    await outbox.drain(settings.shutdown_grace_seconds)
    await channel.close()


async def outbox_relay_ctx(app: web.Application) -> AsyncIterator[None]:
    relay = asyncio.create_task(
        app[outbox_key].run_relay(app[settings_key].outbox_relay_interval_seconds)
    )
    yield
    relay.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await relay


async def task_gauges_ctx(app: web.Application) -> AsyncIterator[None]:
    """The outbox backlog, the worker pool and expired leases, in /metrics (gauges.py)."""
    database = app[database_key]
    async with task_gauges_watch(TaskRepository(database), OutboxStore(database)):
        yield


async def housekeeping_ctx(app: web.Application) -> AsyncIterator[None]:
    """Usage counters reconciled, and expired tasks deleted (`housekeeping`)."""
    async with housekeeping(app[database_key], app[settings_key]):
        yield


def create_app(settings: TaskStoreSettings) -> web.Application:
    app = web.Application()
    app[settings_key] = settings
    add_health_routes(app)
    app.cleanup_ctx.extend(
        [
            database_resource(settings, "humantask-taskstore", ensure_indexes),
            broker_resource(settings, "taskstore"),
            list_tokens_ctx,
            commands_ctx,
            outbox_relay_ctx,
            task_gauges_ctx,
            housekeeping_ctx,
        ]
    )
    return app
