"""The task object and the callback log, as the API returns them.

A deliberate small copy of the server's models: this package is installed by customers
on its own and must not depend on the server. A newer server must not break an older
client: a status or a type this client does not know is kept as the string it is, and
fields it does not know are kept too (`task.model_extra`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from pydantic import BaseModel, ConfigDict

# The statuses this client knows; `Task.status` may be another (a newer server's).
PENDING: Final = "pending"
COMPLETED: Final = "completed"
CANCELED: Final = "canceled"
TASK_STATUSES: Final = (PENDING, COMPLETED, CANCELED)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")


class TaskParams(_Model):
    attachment_type: str
    attachment: str
    categories: list[str]


class TaskResponse(_Model):
    """The answer: `category`; with several workers, also `confidence` and `votes`."""

    category: str
    status_code: int = 200
    confidence: float | None = None
    votes: dict[str, int] | None = None


class Task(_Model):
    """The task object; `response` and `completed_at` once completed.

    `status` is `pending`, `completed` or `canceled` today (see `TASK_STATUSES`); test
    for the ones you handle rather than assuming there are only these.
    """

    task_id: str
    created_at: datetime
    completed_at: datetime | None = None
    callback_url: str | None = None
    type: str
    status: str
    instruction: str
    params: TaskParams
    response: TaskResponse | None = None
    metadata: dict[str, Any] | None = None
    unique_id: str | None = None
    canceled_at: datetime | None = None
    min_workers: int | None = None
    max_workers: int | None = None
    confidence: float | None = None
    gold_category: str | None = None
    # Scale's fields, on the tasks of its calls (projects, batches, audits, tags).
    updated_at: datetime | None = None
    project: str | None = None
    batch: str | None = None
    tags: list[str] | None = None
    customer_review_status: str | None = None


class CallbackAttempt(_Model):
    """One attempt at delivering a task's callback (`GET /v1/task/{id}/callbacks`)."""

    attempt: int
    at: datetime
    status_code: int | None = None
    error: str | None = None
    delivered: bool


class Project(_Model):
    """A project: its params (the defaults of its tasks' create parameters) are the last
    of `param_history`, each with its `version`."""

    type: str
    name: str
    param_history: list[dict[str, Any]]
    created_at: datetime

    @property
    def params(self) -> dict[str, Any]:
        """The current params, without their version and time."""
        last = dict(self.param_history[-1]) if self.param_history else {}
        last.pop("version", None)
        last.pop("created_at", None)
        return last

    @property
    def version(self) -> int:
        return int(self.param_history[-1]["version"]) if self.param_history else 0


class Batch(_Model):
    """A batch of a project's tasks: `staging`, `in_progress` once finalized, `completed`
    when every task is completed or canceled."""

    name: str
    project: str
    status: str
    callback: str = ""
    metadata: dict[str, Any] = {}
    created_at: datetime
    finalized_at: datetime | None = None
    completed_at: datetime | None = None


class BatchStatus(_Model):
    """A batch's status and how many of its tasks are in each status."""

    status: str
    pending: int = 0
    completed: int = 0
    canceled: int = 0
