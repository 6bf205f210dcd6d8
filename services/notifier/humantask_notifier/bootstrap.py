"""The notifier's wiring: settings, resources, adapters, handlers, consumers.

Each resource is an aiohttp cleanup context, so SIGTERM stops taking messages,
finishes those in hand (a callback being sent is sent and recorded), then closes the
connections. Three consumers share one set of dependencies:

- `notifier.task-completed`: completion events → attempt 1 (and the retry, if needed);
- `notifier.batch-completed`: completed batches → attempt 1 of their callback;
- `notifier.callback-retry`: retries coming due → attempt 2;

(either put back for CALLBACK_HOST_BUSY_DELAY_SECONDS when its host already has
CALLBACK_MAX_PER_HOST callbacks in progress: `hosts`, `deferrals`);
- `notifier.commands`: `callback.list`, the log behind `GET /v1/task/{id}/callbacks`
  (from the gateway only: `broker_access`);

and each notifier follows `credential.changed` on a queue of its own, so that a rotated
callback secret is used from then on.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from functools import partial

from aiohttp import web
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from humantask_shared.core.errors import Unavailable
from humantask_shared.core.messages.events import CredentialChanged
from humantask_shared.core.topology import (
    CALLBACK_RETRY_QUEUE,
    COMMANDS_EXCHANGE,
    NOTIFIER_BATCH_COMPLETIONS_QUEUE,
    NOTIFIER_COMMANDS_QUEUE,
    NOTIFIER_COMPLETIONS_QUEUE,
    Queue,
)
from humantask_shared.runtime.broker import open_channel
from humantask_shared.runtime.command_client import CommandClient
from humantask_shared.runtime.command_server import CommandServer
from humantask_shared.runtime.consumer import Consumer
from humantask_shared.runtime.credential_events import follow_credential_changes
from humantask_shared.runtime.declaring import declare_all, declare_exchange
from humantask_shared.runtime.event_dispatcher import EventDispatcher
from humantask_shared.runtime.health import add_health_routes
from humantask_shared.runtime.mongo import Document
from humantask_shared.runtime.resources import (
    broker_resource,
    connection_key,
    database_key,
    database_resource,
)

from . import domain
from .deferrals import HostBusyDeferrals
from .domain import Trigger
from .handler_table import bind_command_handlers, bind_message_handlers
from .handlers import AttemptInProgress
from .hosts import HostSlots
from .ports import Dependencies
from .repository import DeliveryRepository, ensure_indexes
from .retention import keep_callback_logs
from .retries import RetryScheduler
from .sender import CallbackSender, create_session
from .settings import NotifierSettings
from .signing_keys import CallbackSecrets

log = logging.getLogger(__name__)

settings_key = web.AppKey("settings", NotifierSettings)
dependencies_key = web.AppKey("dependencies", Dependencies)
secrets_key = web.AppKey("secrets", CallbackSecrets)
deferrals_key = web.AppKey("deferrals", HostBusyDeferrals)

# Worth trying again after a pause: the database or the task-store did not answer, or
# another notifier is in the middle of the same attempt.
TRANSIENT_ERRORS = (PyMongoError, Unavailable, AttemptInProgress)


async def dependencies_ctx(app: web.Application) -> AsyncIterator[None]:
    """The adapters the handlers use: MongoDB, the retry queues, the task-store, HTTP."""
    settings = app[settings_key]
    channel = await open_channel(app[connection_key])
    commands_exchange = await declare_exchange(channel, COMMANDS_EXCHANGE)
    taskstore = CommandClient(
        channel, commands_exchange, settings.broker_user, settings.rpc_timeout_seconds
    )
    await taskstore.start("notifier")
    retries = RetryScheduler(
        channel, settings.callback_retry_delay_seconds, settings.amqp_queue_type
    )
    await retries.declare()
    deferrals = HostBusyDeferrals(
        channel, settings.callback_host_busy_delay_seconds, settings.amqp_queue_type
    )
    await deferrals.declare()
    session = create_session(
        settings.callback_timeout_seconds,
        settings.callback_allow_private_networks,
        dns_timeout_seconds=settings.callback_dns_timeout_seconds,
        dns_max_concurrent=settings.callback_dns_max_concurrent,
    )
    secrets = CallbackSecrets(taskstore)
    app[secrets_key] = secrets
    app[dependencies_key] = Dependencies(
        deliveries=DeliveryRepository(app[database_key]),
        secrets=secrets,
        retries=retries,
        sender=CallbackSender(
            session, settings.callback_timeout_seconds, settings.callback_allow_private_networks
        ),
        claim_ttl=domain.claim_ttl(settings.callback_timeout_seconds),
        hosts=HostSlots(settings.callback_max_per_host),
    )
    app[deferrals_key] = deferrals
    if settings.callback_allow_private_networks:
        log.warning("CALLBACK_ALLOW_PRIVATE_NETWORKS is on: callbacks may reach private hosts")
    yield
    await session.close()
    await channel.close()


def dispatcher(
    queue: Queue, trigger: Trigger, deps: Dependencies, deferrals: HostBusyDeferrals
) -> EventDispatcher:
    """`queue`'s handlers; what they put back (a busy host) waits in `trigger`'s delay queue."""
    return EventDispatcher(
        queue, bind_message_handlers(queue, deps), partial(deferrals.defer, trigger=trigger)
    )


async def consumers_ctx(app: web.Application) -> AsyncIterator[None]:
    settings, deps, deferrals = app[settings_key], app[dependencies_key], app[deferrals_key]
    channel = await open_channel(app[connection_key], prefetch_count=settings.prefetch_count)
    completions, batch_completions, due_retries, commands = await declare_all(
        channel,
        [
            NOTIFIER_COMPLETIONS_QUEUE,
            NOTIFIER_BATCH_COMPLETIONS_QUEUE,
            CALLBACK_RETRY_QUEUE,
            NOTIFIER_COMMANDS_QUEUE,
        ],
        settings.amqp_queue_type,
    )
    consumers = [
        Consumer(
            completions,
            dispatcher(NOTIFIER_COMPLETIONS_QUEUE, "completed", deps, deferrals),
            TRANSIENT_ERRORS,
        ),
        Consumer(
            batch_completions,
            # Nothing put back: a busy host is a transient error here (`handlers`).
            EventDispatcher(
                NOTIFIER_BATCH_COMPLETIONS_QUEUE,
                bind_message_handlers(NOTIFIER_BATCH_COMPLETIONS_QUEUE, deps),
            ),
            TRANSIENT_ERRORS,
        ),
        Consumer(
            due_retries,
            dispatcher(CALLBACK_RETRY_QUEUE, "retry_due", deps, deferrals),
            TRANSIENT_ERRORS,
        ),
        Consumer(
            commands,
            CommandServer(
                NOTIFIER_COMMANDS_QUEUE,
                bind_command_handlers(deps),
                settings.broker_identities(),
                channel,
            ),
        ),
    ]
    for consumer in consumers:
        await consumer.start()
    yield
    for consumer in consumers:
        await consumer.stop(settings.shutdown_grace_seconds)
    await channel.close()


async def credential_changes_ctx(app: web.Application) -> AsyncIterator[None]:
    """Sign with a rotated callback secret from the moment the task-store says so."""
    secrets = app[secrets_key]

    def on_change(event: CredentialChanged) -> None:
        if event.role == "customer":
            secrets.forget(event.principal_id)

    async with follow_credential_changes(
        app[connection_key], "notifier", on_change, secrets.forget_all
    ):
        yield


def create_app(settings: NotifierSettings) -> web.Application:
    async def prepare(database: AsyncDatabase[Document]) -> None:
        await ensure_indexes(database)
        await keep_callback_logs(database, settings.task_retention_days)

    app = web.Application()
    app[settings_key] = settings
    add_health_routes(app)
    app.cleanup_ctx.extend(
        [
            database_resource(settings, "humantask-notifier", prepare),
            broker_resource(settings, "notifier"),
            dependencies_ctx,
            credential_changes_ctx,
            consumers_ctx,
        ]
    )
    return app
