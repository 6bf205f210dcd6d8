"""The gateway: the only public HTTP surface. Authenticates, validates, and talks to the
other services only through RabbitMQ."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from humantask_shared.command_client import CommandClient
from humantask_shared.credential_events import follow_credential_changes
from humantask_shared.credentials import credential_hash
from humantask_shared.errors import HumantaskError, Unavailable
from humantask_shared.health import add_health_routes, health_app
from humantask_shared.messages.commands import EnsureCustomer, Principal
from humantask_shared.messages.events import CredentialChanged
from humantask_shared.messaging import (
    COMMANDS_EXCHANGE,
    NOTIFIER_COMMANDS_EXCHANGE,
    RpcClient,
    declare_exchanges,
    open_channel,
)
from humantask_shared.resources import broker_resource, connection_key
from humantask_shared.runner import run_service
from humantask_shared.tracing import configure_tracing

from .appkeys import authenticator_key, notifier_key, settings_key, taskstore_key
from .auth import Authenticator
from .callbacks import list_callbacks
from .limits import abuse_limits
from .middleware import json_errors, request_context
from .overload import shed_load
from .settings import GatewaySettings
from .views import add_customer_routes
from .work import add_worker_routes

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024


async def commands_ctx(app: web.Application) -> AsyncIterator[None]:
    """The request/reply client every view sends its command through."""
    settings = app[settings_key]
    channel = await open_channel(app[connection_key])
    exchanges = await declare_exchanges(channel)
    clients = {}
    for exchange in (COMMANDS_EXCHANGE, NOTIFIER_COMMANDS_EXCHANGE):
        rpc = RpcClient(channel, exchanges[exchange], user_id=settings.broker_user)
        await rpc.start("gateway")
        clients[exchange] = CommandClient(rpc, settings.rpc_timeout_seconds)
    taskstore = clients[COMMANDS_EXCHANGE]
    app[taskstore_key], app[notifier_key] = taskstore, clients[NOTIFIER_COMMANDS_EXCHANGE]
    app[authenticator_key] = Authenticator(taskstore, settings.auth_cache_seconds)
    yield
    await channel.close()


async def credential_changes_ctx(app: web.Application) -> AsyncIterator[None]:
    """Forget a revoked or rotated credential the moment the task-store says so."""
    authenticator = app[authenticator_key]

    def on_change(event: CredentialChanged) -> None:
        authenticator.forget(event.role, event.principal_id)

    channel = await follow_credential_changes(
        app[connection_key], "gateway", on_change, authenticator.forget_all
    )
    yield
    await channel.close()


async def health_port_ctx(app: web.Application) -> AsyncIterator[None]:
    """`/healthz`, `/readyz` and `/metrics` on HEALTH_PORT: metrics stay off the public port."""
    runner = web.AppRunner(health_app(app), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, port=app[settings_key].health_port).start()
    yield
    await runner.cleanup()


async def demo_customer_ctx(app: web.Application) -> AsyncIterator[None]:
    """With HUMANTASK_DEMO_API_KEY set, make sure its customer exists (README examples)."""
    demo_key = (app[settings_key].humantask_demo_api_key or "").strip()
    if demo_key:
        command = EnsureCustomer(customer_name="demo", credential_hash=credential_hash(demo_key))
        while True:  # the task-store may still be starting; keep asking, say so in the log
            try:
                await app[taskstore_key].send(command, Principal)
                log.info("demo customer ready")
                break
            except Unavailable as exc:
                log.warning(
                    "waiting for the task-store to create the demo customer",
                    extra={"error": exc.message},
                )
                await asyncio.sleep(1)
            except HumantaskError as exc:  # e.g. an operator revoked the demo key
                log.error("no demo customer", extra={"error": exc.message})
                break
    yield


def create_app(settings: GatewaySettings) -> web.Application:
    app = web.Application(
        client_max_size=MAX_BODY_BYTES,
        middlewares=[
            request_context,
            shed_load(settings.gateway_max_in_flight),
            json_errors,
            abuse_limits(settings),
        ],
    )
    app[settings_key] = settings
    add_health_routes(app, with_metrics=False)  # /metrics: HEALTH_PORT only
    add_customer_routes(app)
    add_worker_routes(app)
    app.router.add_get("/v1/task/{task_id}/callbacks", list_callbacks)
    app.cleanup_ctx.extend(
        [
            health_port_ctx,
            broker_resource(settings, "humantask-gateway"),
            commands_ctx,
            credential_changes_ctx,
            demo_customer_ctx,
        ]
    )
    return app


def main() -> None:
    settings = GatewaySettings()
    configure_tracing("gateway")  # before create_app: it instruments the apps made after it
    run_service("gateway", create_app(settings), settings.gateway_port, settings)
