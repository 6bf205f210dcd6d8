"""The gateway's side of the RabbitMQ request/reply with the task-store."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from humantask_shared.errors import Unavailable, error_from_code
from humantask_shared.messages.commands import Command, Reply
from humantask_shared.messaging import RpcClient

ResultT = TypeVar("ResultT", bound=BaseModel)


class TaskStoreClient:
    def __init__(self, rpc: RpcClient, timeout_seconds: float) -> None:
        self._rpc = rpc
        self._timeout = timeout_seconds

    async def send(self, command: Command, result_model: type[ResultT]) -> ResultT:
        """Run `command` in the task-store; its domain errors are raised here."""
        raw = await self._rpc.call(command, self._timeout)
        try:
            reply = Reply.model_validate_json(raw)
            if not reply.ok:
                assert reply.error is not None
                raise error_from_code(reply.error.code, reply.error.message)
            return result_model.model_validate(reply.result)
        except (ValidationError, AssertionError) as exc:
            raise Unavailable("the task service sent an unreadable answer") from exc
