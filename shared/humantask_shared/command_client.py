"""Sending commands and reading their replies: the caller's side of a `CommandServer`.

The gateway sends commands to the task-store and the notifier; the notifier sends one to
the task-store. Domain errors in a reply are raised here as the same `HumantaskError`.
"""

from __future__ import annotations

import time
from typing import TypeVar

from prometheus_client import Histogram
from pydantic import BaseModel, ValidationError

from .errors import Unavailable, error_from_code
from .messages.commands import Command, Reply
from .messaging import RpcClient
from .tracing import command_span

ResultT = TypeVar("ResultT", bound=BaseModel)

# The caller's side: from sending the command to reading its reply (or giving up on it).
COMMAND_DURATION = Histogram(
    "humantask_command_duration_seconds",
    "Time a caller waited for a command's reply, timeouts included",
    ["command"],
)


class CommandClient:
    def __init__(self, rpc: RpcClient, timeout_seconds: float) -> None:
        self._rpc = rpc
        self._timeout = timeout_seconds

    async def send(self, command: Command, result_model: type[ResultT]) -> ResultT:
        """Run `command` in the service that answers it; its domain errors are raised here."""
        started = time.perf_counter()
        try:
            with command_span(command.name):
                raw = await self._rpc.call(command, self._timeout)
        finally:  # a timeout too: how long the caller waited
            COMMAND_DURATION.labels(command.name).observe(time.perf_counter() - started)
        try:
            reply = Reply.model_validate_json(raw)
            if not reply.ok:
                assert reply.error is not None
                raise error_from_code(reply.error.code, reply.error.message)
            return result_model.model_validate(reply.result)
        except (ValidationError, AssertionError) as exc:
            raise Unavailable(f"the answer to {command.name} was unreadable") from exc
