"""What the gateway talks through: the task-store and the notifier, each answering
commands. RabbitMQ in production (`broker_boundary.BrokerBoundary`), fakes in tests."""

from __future__ import annotations

from typing import Protocol

from humantask_shared.core.messages.base import CommandSender


class Boundary(Protocol):
    @property
    def taskstore(self) -> CommandSender: ...

    @property
    def notifier(self) -> CommandSender: ...
