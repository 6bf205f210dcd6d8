"""What the gateway talks through: the task-store and the notifier, each answering
commands. RabbitMQ in production (`bootstrap.BrokerBoundary`), fakes in tests."""

from __future__ import annotations

from typing import Protocol, TypeVar

from pydantic import BaseModel

from humantask_shared.core.messages.commands import Command

ResultT = TypeVar("ResultT", bound=BaseModel)


class CommandSender(Protocol):
    async def send(self, command: Command, result_model: type[ResultT]) -> ResultT:
        """The command's result; the service's domain errors are raised here."""
        ...


class Boundary(Protocol):
    @property
    def taskstore(self) -> CommandSender: ...

    @property
    def notifier(self) -> CommandSender: ...
