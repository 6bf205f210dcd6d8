"""The gateway's side of the RabbitMQ request/reply with the task-store (and the notifier,
which answers the callback log)."""

from __future__ import annotations

from humantask_shared.command_client import CommandClient


class TaskStoreClient(CommandClient):
    """Sends the gateway's commands; see `CommandClient.send`."""
