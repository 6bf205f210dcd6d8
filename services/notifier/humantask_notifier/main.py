"""`humantask-notifier`: delivers the customer's callback when a task is completed
(docs/reference/contract.md §7).

The process: settings from the environment, tracing, then the app `bootstrap` wires.
"""

from __future__ import annotations

from humantask_shared.runtime.command_line import read_service_arguments
from humantask_shared.runtime.runner import run_service
from humantask_shared.runtime.tracing import configure_tracing

from .bootstrap import create_app
from .settings import NotifierSettings


def main() -> None:
    read_service_arguments(
        "humantask-notifier", "The notifier: delivers task callbacks, with one retry."
    )
    settings = NotifierSettings()
    configure_tracing("notifier")  # before create_app: it instruments the apps made after it
    run_service("notifier", create_app(settings), settings.health_port, settings)
