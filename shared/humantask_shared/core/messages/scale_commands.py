"""The commands behind `/scale/v1` (docs/reference/contract.md §11): the gateway asks the
task-store, the only writer of tasks, projects and batches. Each names its result, as
every command does; a task comes back as Scale's task object (`ScaleTask`)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ..models import TASK_ID_PATTERN, new_task_id
from ..scale_models import (
    AuditRequest,
    Batch,
    BatchListQuery,
    BatchPage,
    BatchStatusView,
    CreateBatchRequest,
    CreateProjectRequest,
    Project,
    ProjectList,
    ScaleTask,
    ScaleTaskListQuery,
    ScaleTaskPage,
    SetProjectParamsRequest,
    TagOperation,
    Tags,
    TaskPlacement,
    UniqueId,
)
from .base import Command


class CreateScaleTask(Command[ScaleTask]):
    """Create a task in its project and batch, the project's params filling in what
    `fields` (the create parameters as sent) leave out; the task-store checks the result
    as `/v1` checks a create. Idempotent on `task_id`, as `CreateTask` is."""

    routing_key = "task.scale_create"

    task_id: str = Field(default_factory=new_task_id, pattern=TASK_ID_PATTERN.pattern)
    customer_id: str
    fields: dict[str, Any]
    placement: TaskPlacement


class GetScaleTask(Command[ScaleTask]):
    routing_key = "task.scale_get"
    persistent = False

    customer_id: str
    task_id: str


class ListScaleTasks(Command[ScaleTaskPage]):
    routing_key = "task.scale_list"
    persistent = False

    customer_id: str
    query: ScaleTaskListQuery


class CancelScaleTask(Command[ScaleTask]):
    """Cancel a pending task, as `CancelTask` does; `clear_unique_id` frees its unique_id
    for another task."""

    routing_key = "task.scale_cancel"

    customer_id: str
    task_id: str
    clear_unique_id: bool = False


class SetTaskMetadata(Command[ScaleTask]):
    routing_key = "task.set_metadata"

    customer_id: str
    task_id: str
    metadata: dict[str, Any]


class ChangeTaskTags(Command[ScaleTask]):
    """Set the task's tags, add some, or delete some."""

    routing_key = "task.change_tags"

    customer_id: str
    task_id: str
    operation: TagOperation
    tags: Tags


class SetTaskUniqueId(Command[ScaleTask]):
    """Give the task a unique_id (`409` if another of the customer's tasks has it), or
    clear it (`unique_id` None)."""

    routing_key = "task.set_unique_id"

    customer_id: str
    task_id: str
    unique_id: UniqueId | None = None


class AuditTask(Command[ScaleTask]):
    """The customer's review of a completed task: accepted, or rejected and back to the
    pool for another worker."""

    routing_key = "task.audit"

    customer_id: str
    task_id: str
    audit: AuditRequest


class CreateProject(Command[Project]):
    """The sender picks the project's id, so a redelivered command finds the project it
    already made (and a name taken by another is a `409`)."""

    routing_key = "project.create"

    project_id: str = Field(default_factory=new_task_id, pattern=TASK_ID_PATTERN.pattern)
    customer_id: str
    request: CreateProjectRequest


class ListProjects(Command[ProjectList]):
    routing_key = "project.list"
    persistent = False

    customer_id: str


class GetProject(Command[Project]):
    routing_key = "project.get"
    persistent = False

    customer_id: str
    name: str


class SetProjectParams(Command[Project]):
    """A new version of the project's params."""

    routing_key = "project.set_params"

    customer_id: str
    name: str
    request: SetProjectParamsRequest


class CreateBatch(Command[Batch]):
    """The sender picks the batch's id, as for a project."""

    routing_key = "batch.create"

    batch_id: str = Field(default_factory=new_task_id, pattern=TASK_ID_PATTERN.pattern)
    customer_id: str
    request: CreateBatchRequest


class FinalizeBatch(Command[Batch]):
    """No more tasks: the batch is in progress, and completes once its tasks are done."""

    routing_key = "batch.finalize"

    customer_id: str
    name: str


class GetBatch(Command[Batch]):
    routing_key = "batch.get"
    persistent = False

    customer_id: str
    name: str


class GetBatchStatus(Command[BatchStatusView]):
    routing_key = "batch.status"
    persistent = False

    customer_id: str
    name: str


class ListBatches(Command[BatchPage]):
    routing_key = "batch.list"
    persistent = False

    customer_id: str
    query: BatchListQuery


# The task-store answers them all (`core/topology.py`).
SCALE_COMMANDS: tuple[type[Command[Any]], ...] = (
    CreateScaleTask,
    GetScaleTask,
    ListScaleTasks,
    CancelScaleTask,
    SetTaskMetadata,
    ChangeTaskTags,
    SetTaskUniqueId,
    AuditTask,
    CreateProject,
    ListProjects,
    GetProject,
    SetProjectParams,
    CreateBatch,
    FinalizeBatch,
    GetBatch,
    GetBatchStatus,
    ListBatches,
)
