"""The MongoDB and RabbitMQ connections of a service, as aiohttp cleanup contexts.

Each connects (retrying with backoff until it can), registers a readiness check,
`yield`s while the service runs, and closes on shutdown. Services add them first to
`app.cleanup_ctx`, so they close last, after the consumers drained.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable

from aio_pika.abc import AbstractRobustConnection
from aiohttp import web
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from ..core.topology import Service, dead_letter_queues
from .broker import broker_connected, broker_context
from .dead_letters import dead_letter_watch
from .health import add_readiness_check
from .mongo import Document, mongo_context, ping
from .retrying import until_it_works
from .settings import CommonSettings

CleanupContext = Callable[[web.Application], AsyncIterator[None]]

database_key = web.AppKey("database", AsyncDatabase)
connection_key = web.AppKey("connection", AbstractRobustConnection)


def database_resource(
    settings: CommonSettings,
    app_name: str,
    prepare: Callable[[AsyncDatabase[Document]], Awaitable[None]],
) -> CleanupContext:
    """MongoDB at `app[database_key]`, after `prepare` (e.g. creating indexes) ran."""

    async def database_ctx(app: web.Application) -> AsyncIterator[None]:
        async for database in mongo_context(
            settings.mongodb_url, settings.mongodb_database, app_name
        ):
            await prepare_with_retries(prepare, database)
            app[database_key] = database
            add_readiness_check(app, "mongodb", functools.partial(ping, database))
            yield

    return database_ctx


async def prepare_with_retries(
    prepare: Callable[[AsyncDatabase[Document]], Awaitable[None]],
    database: AsyncDatabase[Document],
) -> None:
    """Run `prepare` until it succeeds. Copies of a service starting together create the
    same indexes at once, and a database may refuse one of them for a moment (DocumentDB
    answers "deadlock detected"); the copy that lost tries again rather than exiting.
    Index creation is idempotent."""
    await until_it_works(
        lambda: prepare(database), (PyMongoError,), "preparing the database failed"
    )


def broker_resource(settings: CommonSettings, service: Service) -> CleanupContext:
    """A robust RabbitMQ connection at `app[connection_key]`, named `humantask-<service>`;
    while it is open, the depth of the dead-letter queues of the work queues the service
    consumes is read into `/metrics`."""

    async def broker_ctx(app: web.Application) -> AsyncIterator[None]:
        async for connection in broker_context(settings.amqp_url, f"humantask-{service}"):
            app[connection_key] = connection
            add_readiness_check(app, "rabbitmq", functools.partial(broker_connected, connection))
            async with dead_letter_watch(connection, dead_letter_queues(service)):
                yield

    return broker_ctx
