"""`humantask-gateway`: the only public HTTP surface. Authenticates, validates, and talks
to the other services only through RabbitMQ (docs/reference/contract.md).

The process: settings from the environment, tracing, then the app `bootstrap` wires.
"""

from __future__ import annotations

from humantask_shared.runtime.command_line import read_service_arguments
from humantask_shared.runtime.runner import run_service
from humantask_shared.runtime.tracing import configure_tracing

from .app import MAX_REQUEST_LINE_BYTES
from .bootstrap import production_app
from .settings import GatewaySettings


def main() -> None:
    read_service_arguments(
        "humantask-gateway", "The gateway: the only public HTTP surface of humantask."
    )
    settings = GatewaySettings()
    configure_tracing("gateway")  # before the app: it instruments the apps made after it
    run_service(
        "gateway",
        production_app(settings),
        settings.gateway_port,
        settings,
        max_request_line=MAX_REQUEST_LINE_BYTES,
    )
