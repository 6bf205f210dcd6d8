"""The task-store's wiring: settings, resources, adapters, handlers, consumers.

Each resource is an aiohttp cleanup context (create, yield, close), so SIGTERM stops
taking commands, finishes those in hand, then closes the connections:

- the database (indexes ensured) and the broker connection (`humantask_shared.runtime.resources`);
- the key list cursors are signed with, shared by every copy (`repository.keys`);
- the commands: the MongoDB repositories, the outbox and the `credential.changed`
  publisher bound into the handler table (`handler_table.bind_handlers`), served from
  `taskstore.commands` to the services each command is meant for;
- the batches' progress: `taskstore.batch-progress` (a task of a batch settled, a batch
  finalized), served by an event dispatcher that completes batches;
- the quality queue (`taskstore.quality`): the task-store's own answers, completions and
  blocks, from which it learns about workers (`quality_handlers`), on a channel of its
  own so that this background work never holds commands back;
- the outbox relays (tasks' and batches' events a crash or a broker outage left
  behind) and the task gauges;
- the housekeeping: usage counters reconciled, expired tasks deleted (`housekeeping`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from functools import partial

from aiohttp import web
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from humantask_shared.core.errors import Unavailable
from humantask_shared.core.messages.events import BatchCompleted
from humantask_shared.core.topology import (
    EVENTS_EXCHANGE,
    TASKSTORE_BATCH_PROGRESS_QUEUE,
    TASKSTORE_COMMANDS_QUEUE,
    TASKSTORE_QUALITY_QUEUE,
)
from humantask_shared.runtime.broker import open_channel
from humantask_shared.runtime.command_server import CommandServer
from humantask_shared.runtime.consumer import Consumer
from humantask_shared.runtime.declaring import declare, declare_exchange
from humantask_shared.runtime.event_dispatcher import EventDispatcher
from humantask_shared.runtime.health import add_health_routes
from humantask_shared.runtime.mongo import Document
from humantask_shared.runtime.publishing import publish_event
from humantask_shared.runtime.resources import (
    broker_resource,
    connection_key,
    database_key,
    database_resource,
)

from . import quality
from .crash_hook import ExitBeforePublishingCompletion
from .cursors import CursorSigner
from .gauges import task_gauges_watch
from .handler_table import bind_batch_progress_handlers, bind_handlers, bind_quality_handlers
from .housekeeping import housekeeping
from .outbox import OutboxPublisher
from .ports import Dependencies, Outbox, QualitySettings
from .repository import (
    BATCHES,
    AccountRepository,
    BatchRepository,
    OutboxStore,
    PoolRepository,
    ProjectRepository,
    QualityRepository,
    TaskRepository,
    TaskSearch,
    ensure_indexes,
    shared_key,
)
from .settings import TaskStoreSettings

settings_key = web.AppKey("settings", TaskStoreSettings)
outbox_key = web.AppKey("outbox", OutboxPublisher)
batch_outbox_key = web.AppKey("batch_outbox", OutboxPublisher)
list_tokens_key = web.AppKey("list_tokens", CursorSigner)
dependencies_key = web.AppKey("dependencies", Dependencies)

# Worth hearing again after a pause: the database did not answer, or a task changed too
# often for one write.
TRANSIENT_ERRORS = (PyMongoError, Unavailable)


async def prepare_database(database: AsyncDatabase[Document]) -> None:
    """The indexes; and tasks written before there were several workers per task moved
    into the pool (their customers marked waiting in it)."""
    await ensure_indexes(database)
    moved = await TaskRepository(database).upgrade_pool()
    await PoolRepository(database).touch(moved)


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
    batch_outbox = OutboxPublisher(OutboxStore(database, BATCHES), events)
    handlers_outbox: Outbox = outbox
    handlers_batch_outbox: Outbox = batch_outbox
    if settings.humantask_test_exit_after_completion_write:
        handlers_outbox = ExitBeforePublishingCompletion(outbox)
    if settings.humantask_test_exit_after_batch_completion_write:
        handlers_batch_outbox = ExitBeforePublishingCompletion(batch_outbox, BatchCompleted)
    deps = Dependencies(
        tasks=tasks,
        accounts=AccountRepository(database),
        outbox=handlers_outbox,
        announce=partial(publish_event, events),
        work_lease_seconds=settings.work_lease_seconds,
        pool=PoolRepository(database),
        quality=QualityRepository(database),
        publish=partial(publish_event, events),
        search=TaskSearch(database, settings.list_limits()),
        projects=ProjectRepository(database, settings.list_limits()),
        batches=BatchRepository(database, settings.list_limits()),
        batch_outbox=handlers_batch_outbox,
        quality_settings=QualitySettings(
            gold_rate=settings.gold_rate,
            blocking=replace(quality.DEFAULT_BLOCKING, min_accuracy=settings.worker_min_accuracy),
        ),
        list_tokens=app[list_tokens_key],
        demo_customer_key_hash=settings.demo_customer_key_hash(),
    )
    app[outbox_key] = outbox
    app[batch_outbox_key] = batch_outbox
    app[dependencies_key] = deps

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
    await batch_outbox.drain(settings.shutdown_grace_seconds)
    await channel.close()


async def batch_progress_ctx(app: web.Application) -> AsyncIterator[None]:
    """`taskstore.batch-progress`, on a channel of its own: what may complete a batch.
    Stopped before the commands (whose outboxes its handlers publish through)."""
    settings = app[settings_key]
    channel = await open_channel(app[connection_key], prefetch_count=settings.prefetch_count)
    queue = await declare(channel, TASKSTORE_BATCH_PROGRESS_QUEUE, settings.amqp_queue_type)
    dispatcher = EventDispatcher(
        TASKSTORE_BATCH_PROGRESS_QUEUE, bind_batch_progress_handlers(app[dependencies_key])
    )
    # A batch written by two task-stores at once is looked at again: transient.
    consumer = Consumer(queue, dispatcher, TRANSIENT_ERRORS)
    await consumer.start()
    yield
    await consumer.stop(settings.shutdown_grace_seconds)
    await channel.close()


async def quality_ctx(app: web.Application) -> AsyncIterator[None]:
    """The quality queue's consumer, on a channel of its own."""
    settings = app[settings_key]
    channel = await open_channel(app[connection_key], prefetch_count=settings.prefetch_count)
    queue = await declare(channel, TASKSTORE_QUALITY_QUEUE, settings.amqp_queue_type)
    dispatcher = EventDispatcher(
        TASKSTORE_QUALITY_QUEUE, bind_quality_handlers(app[dependencies_key])
    )
    consumer = Consumer(queue, dispatcher, TRANSIENT_ERRORS)
    await consumer.start()
    yield
    await consumer.stop(settings.shutdown_grace_seconds)
    await channel.close()


async def outbox_relay_ctx(app: web.Application) -> AsyncIterator[None]:
    """The tasks' relay and the batches'."""
    interval = app[settings_key].outbox_relay_interval_seconds
    relays = [
        asyncio.create_task(app[outbox_key].run_relay(interval)),
        asyncio.create_task(app[batch_outbox_key].run_relay(interval)),
    ]
    yield
    for relay in relays:
        relay.cancel()
    for relay in relays:
        with contextlib.suppress(asyncio.CancelledError):
            await relay


async def task_gauges_ctx(app: web.Application) -> AsyncIterator[None]:
    """The outbox backlog, the worker pool and expired leases, in /metrics (gauges.py)."""
    database = app[database_key]
    async with task_gauges_watch(
        TaskRepository(database), OutboxStore(database), QualityRepository(database)
    ):
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
            database_resource(settings, "humantask-taskstore", prepare_database),
            broker_resource(settings, "taskstore"),
            list_tokens_ctx,
            commands_ctx,
            batch_progress_ctx,
            quality_ctx,
            outbox_relay_ctx,
            task_gauges_ctx,
            housekeeping_ctx,
        ]
    )
    return app
