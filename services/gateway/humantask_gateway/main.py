"""The gateway: the only public HTTP surface. Authenticates, validates, and talks to the
other services only through RabbitMQ."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web
from humantask_shared.command_client import CommandClient
from humantask_shared.credentials import credential_hash
from humantask_shared.errors import HumantaskError
from humantask_shared.health import add_health_routes
from humantask_shared.messages.commands import EnsureCustomer, Principal
from humantask_shared.messaging import (
    COMMANDS_EXCHANGE,
    RpcClient,
    declare_exchanges,
    open_channel,
)
from humantask_shared.resources import broker_resource, connection_key
from humantask_shared.runner import run_service

from .appkeys import authenticator_key, settings_key, taskstore_key
from .auth import Authenticator
from .callbacks import list_callbacks
from .middleware import json_errors, request_context
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
    rpc = RpcClient(channel, exchanges[COMMANDS_EXCHANGE])
    await rpc.start("gateway")
    taskstore = CommandClient(rpc, settings.rpc_timeout_seconds)
    app[taskstore_key] = taskstore
    app[authenticator_key] = Authenticator(taskstore, settings.auth_cache_seconds)
    yield
    await channel.close()



async def demo_customer_ctx(app: web.Application) -> AsyncIterator[None]:
    """With HUMANTASK_DEMO_API_KEY set, make sure its customer exists (README examples)."""
    demo_key = app[settings_key].humantask_demo_api_key
    if demo_key:
        command = EnsureCustomer(customer_name="demo", credential_hash=credential_hash(demo_key))
        while True:  # the task-store may still be starting; keep asking, say so in the log
            try:
                await app[taskstore_key].send(command, Principal)
                log.info("demo customer ready")
                break
            except HumantaskError as exc:
                log.warning("waiting for the task-store to create the demo customer",
                            extra={"error": exc.message})
                await asyncio.sleep(1)
    yield


def create_app(settings: GatewaySettings) -> web.Application:
    app = web.Application(
        client_max_size=MAX_BODY_BYTES, middlewares=[request_context, json_errors]
    )
    app[settings_key] = settings
    add_health_routes(app)
    add_customer_routes(app)
    add_worker_routes(app)
    app.router.add_get("/v1/task/{task_id}/callbacks", list_callbacks)
    app.cleanup_ctx.extend(
        [broker_resource(settings, "humantask-gateway"), commands_ctx, demo_customer_ctx]
    )
    return app


def main() -> None:
    settings = GatewaySettings()
    run_service("gateway", create_app(settings), settings.gateway_port, settings)
