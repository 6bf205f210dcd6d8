"""The gateway's wiring in production: the app `app.create_app` makes, over the boundary
of `broker_boundary` (RabbitMQ), with its resources, each an aiohttp cleanup context
(opened in order at start, closed in reverse on SIGTERM): the health port, the broker
connection, the command clients of the task-store and the notifier, the follower of
credential changes, and the demo customer.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from humantask_shared.core.credentials import credential_hash
from humantask_shared.core.errors import HumantaskError, Unavailable
from humantask_shared.core.messages.commands import EnsureCustomer
from humantask_shared.core.messages.events import CredentialChanged
from humantask_shared.runtime.credential_events import follow_credential_changes
from humantask_shared.runtime.health import health_app
from humantask_shared.runtime.resources import broker_resource, connection_key
from humantask_shared.runtime.retrying import until_it_works

from .app import create_app
from .appkeys import authenticator_key, boundary_key, settings_key
from .broker_boundary import BrokerBoundary
from .settings import GatewaySettings

log = logging.getLogger(__name__)


async def credential_changes_ctx(app: web.Application) -> AsyncIterator[None]:
    """Forget a revoked or rotated credential the moment the task-store says so."""
    authenticator = app[authenticator_key]

    def on_change(event: CredentialChanged) -> None:
        authenticator.forget(event.role, event.principal_id)

    async with follow_credential_changes(
        app[connection_key], "gateway", on_change, authenticator.forget_all
    ):
        yield


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
        try:  # the task-store may still be starting: keep asking, and say so in the log
            await until_it_works(
                lambda: app[boundary_key].taskstore.send(command),
                (Unavailable,),
                "waiting for the task-store to create the demo customer",
            )
            log.info("demo customer ready")
        except HumantaskError as exc:  # e.g. an operator revoked the demo key
            log.error("no demo customer", extra={"error": exc.message})
    yield


def production_app(settings: GatewaySettings) -> web.Application:
    boundary = BrokerBoundary(settings)
    app = create_app(settings, boundary)
    app.cleanup_ctx.extend(
        [
            health_port_ctx,
            broker_resource(settings, "gateway"),
            boundary.connect,
            credential_changes_ctx,
            demo_customer_ctx,
        ]
    )
    return app
