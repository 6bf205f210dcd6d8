"""The task object and the callback log, as the API returns them.

A deliberate small copy of the server's models: this package is installed by customers
on its own and must not depend on the server. Unknown fields are ignored, so a newer
server does not break an older client.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

AttachmentType = Literal["text", "image", "video", "audio", "website"]
TaskStatus = Literal["pending", "completed", "canceled"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class TaskParams(_Model):
    attachment_type: str
    attachment: str
    categories: list[str]


class TaskResponse(_Model):
    category: str
    status_code: int = 200


class Task(_Model):
    """The seed's task object; `response` and `completed_at` once completed."""

    task_id: str
    created_at: datetime
    completed_at: datetime | None = None
    callback_url: str
    type: str
    status: TaskStatus
    instruction: str
    params: TaskParams
    response: TaskResponse | None = None
    metadata: dict[str, Any] | None = None
    unique_id: str | None = None
    canceled_at: datetime | None = None


class CallbackAttempt(_Model):
    """One attempt at delivering a task's callback (`GET /v1/task/{id}/callbacks`)."""

    attempt: int
    at: datetime
    status_code: int | None = None
    error: str | None = None
    delivered: bool
