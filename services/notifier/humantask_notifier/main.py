"""The notifier: consumes `task.completed` events and delivers the customer's callback.

Wiring only; each resource is an aiohttp cleanup context, so SIGTERM stops taking
events, finishes those in hand, then closes the connections.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from aiohttp import web
from pydantic import ValidationError

from humantask_shared.health import add_health_routes, add_readiness_check
from humantask_shared.messages.events import TaskCompleted
from humantask_shared.messaging import (
    EVENTS_EXCHANGE,
    NOTIFIER_COMPLETIONS_QUEUE,
    Consumer,
    PoisonMessage,
    broker_connected,
    broker_context,
    declare_work_queue,
    open_channel,
)
from humantask_shared.runner import run_service

from .settings import NotifierSettings

log = logging.getLogger(__name__)

settings_key = web.AppKey("settings", NotifierSettings)
connection_key = web.AppKey("connection", AbstractRobustConnection)


async def handle_task_completed(message: AbstractIncomingMessage) -> None:
    try:
        event = TaskCompleted.model_validate_json(message.body)
    except ValidationError as exc:
        raise PoisonMessage(f"not a task.completed event: {exc.error_count()} errors") from exc
    log.info("task completed", extra={"task_id": event.task.task_id, "event_id": event.event_id})


async def broker_ctx(app: web.Application) -> AsyncIterator[None]:
    async for connection in broker_context(app[settings_key].amqp_url, "humantask-notifier"):
        app[connection_key] = connection
        add_readiness_check(app, "rabbitmq", lambda: broker_connected(connection))
        yield



async def completions_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[settings_key]
    channel = await open_channel(app[connection_key], prefetch_count=settings.prefetch_count)
    queue = await declare_work_queue(
        channel, NOTIFIER_COMPLETIONS_QUEUE, EVENTS_EXCHANGE, [TaskCompleted.routing_key]
    )
    consumer = Consumer(queue, handle_task_completed)
    await consumer.start()
    yield
    await consumer.stop(settings.shutdown_grace_seconds)
    await channel.close()


def create_app(settings: NotifierSettings) -> web.Application:
    app = web.Application()
    app[settings_key] = settings
    add_health_routes(app)
    app.cleanup_ctx.extend([broker_ctx, completions_ctx])
    return app


def main() -> None:
    settings = NotifierSettings()
    run_service("notifier", create_app(settings), settings.health_port, settings)
