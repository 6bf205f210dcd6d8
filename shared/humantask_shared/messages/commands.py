"""Commands the gateway sends to the task-store, each answered with a `Reply`.

Each command's `name` is its AMQP routing key and `type` property.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from ..models import CreateTaskRequest, Task, TaskListQuery, TaskPage

Role = Literal["customer", "worker"]


class Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: ClassVar[str]
    result_model: ClassVar[type[BaseModel] | None] = None


class Principal(BaseModel):
    """Who a credential belongs to."""

    model_config = ConfigDict(frozen=True)

    principal_id: str
    role: Role


class Authenticate(Command):
    """Look up a credential by its SHA-256; the secret itself never crosses the broker."""

    name = "auth.authenticate"
    result_model = Principal

    credential_hash: str
    role: Role


class EnsureCustomer(Command):
    """Create the customer owning this credential unless it exists (the demo key)."""

    name = "customer.ensure"
    result_model = Principal

    customer_name: str
    credential_hash: str


class CreateTask(Command):
    name = "task.create"
    result_model = Task

    customer_id: str
    request: CreateTaskRequest


class GetTask(Command):
    name = "task.get"
    result_model = Task

    customer_id: str
    task_id: str


class ListTasks(Command):
    name = "task.list"
    result_model = TaskPage

    customer_id: str
    query: TaskListQuery


class CancelTask(Command):
    name = "task.cancel"
    result_model = Task

    customer_id: str
    task_id: str


COMMANDS: dict[str, type[Command]] = {
    cls.name: cls
    for cls in (Authenticate, EnsureCustomer, CreateTask, GetTask, ListTasks, CancelTask)
}


class ReplyError(BaseModel):
    code: str
    message: str


class Reply(BaseModel):
    """The answer to a command: a result or an error, never both."""

    ok: bool
    result: Any = None
    error: ReplyError | None = None
