"""The spike's commands, in our `Command` form, so both sides carry the same bodies.

They join `COMMANDS` (the registry `CommandServer` parses by) in this process only.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from humantask_shared.messages.commands import COMMANDS, Command, Sender


class PingResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    n: int
    text: str


class Ping(Command):
    """A trivial command with a task-sized body: the handler echoes it."""

    name = "spike.ping"
    result_model = PingResult
    senders: ClassVar[frozenset[Sender]] = frozenset({"gateway"})

    n: int
    text: str


class Boom(Command):
    """A command whose handler fails in a way no rule foresaw (a bug)."""

    name = "spike.boom"


for _command in (Ping, Boom):
    COMMANDS[_command.name] = _command

# About the size of a task.create body.
PING_TEXT = "Would you say this item is big or small? " * 12


class Nobody(Command):
    """A command no queue is bound for: the caller must hear so at once."""

    name = "spike.nobody"


COMMANDS[Nobody.name] = Nobody
