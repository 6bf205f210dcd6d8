"""`humantask-taskstore`: owns task state in MongoDB, answers commands, publishes events.

The process: settings from the environment, tracing, then the app `bootstrap` wires.
"""

from __future__ import annotations

from humantask_shared.runtime.command_line import read_service_arguments
from humantask_shared.runtime.runner import run_service
from humantask_shared.runtime.tracing import configure_tracing

from .bootstrap import create_app
from .settings import TaskStoreSettings


def main() -> None:
    read_service_arguments(
        "humantask-taskstore",
        "The task-store: owns task state in MongoDB, answers commands, publishes events.",
    )
    settings = TaskStoreSettings()
    configure_tracing("taskstore")  # before create_app: it instruments the apps made after it
    run_service("taskstore", create_app(settings), settings.health_port, settings)
