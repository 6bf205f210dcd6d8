"""The worker's view of tasks and the bodies of the worker API (docs/reference/contract.md §6).

Workers never see who the customer is: no customer id, `callback_url`, `metadata` or
`unique_id` appear in any of these models, so nothing can leak them by accident.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from .errors import Conflict
from .models import CategoryString, TaskParams, TaskResponse, TaskStatus, TaskType, Timestamp


def no_live_lease(task_id: str) -> Conflict:
    """The one answer to a worker acting on a task it does not hold: the same whether
    the task is unknown, expired, canceled, completed or leased to someone else, so a
    worker learns nothing about tasks it does not hold (docs/reference/contract.md §6)."""
    return Conflict(f"you do not hold a live lease on task {task_id}: claim a task first")


class WorkView(BaseModel):
    """What every worker view of a task shows."""

    model_config = ConfigDict(frozen=True)

    task_id: str
    type: TaskType = "categorization"
    instruction: str
    params: TaskParams


class WorkItem(WorkView):
    """A task leased to the calling worker (`POST /v1/work/claim`)."""

    lease_expires_at: Timestamp


class CompletedWork(WorkView):
    """A task the worker has just completed (`POST /v1/work/{task_id}/submit`)."""

    status: TaskStatus
    response: TaskResponse
    completed_at: Timestamp


class ClaimResult(BaseModel):
    """The answer to a claim: the leased task, or none when the pool is empty (`204`)."""

    item: WorkItem | None = None


class WorkReleased(BaseModel):
    """The answer to a release: the task is back in the pool."""

    task_id: str


class SubmitWorkRequest(BaseModel):
    """`POST /v1/work/{task_id}/submit`: the category the worker chose."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    category: CategoryString  # at most 256 characters, as the task's categories
