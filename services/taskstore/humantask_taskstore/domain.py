"""The task and its state machine: pending → completed | canceled. No I/O here.

Every change returns the new task and the events it raised; the repository writes both
in one document write (the outbox), so an event is never lost between write and publish.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import orjson

from humantask_shared.errors import Conflict
from humantask_shared.messages.events import TaskCanceled, TaskCreated, TaskEvent
from humantask_shared.models import (
    CallbackFormat,
    CreateTaskRequest,
    Task,
    TaskParams,
    TaskResponse,
    TaskStatus,
)


@dataclass(frozen=True)
class TaskRecord:
    """Everything the task-store knows about a task, including what customers never see."""

    task_id: str
    customer_id: str
    created_at: datetime
    callback_url: str
    callback_format: CallbackFormat
    instruction: str
    params: TaskParams
    status: TaskStatus = "pending"
    metadata: dict[str, Any] | None = None
    unique_id: str | None = None
    completed_at: datetime | None = None
    canceled_at: datetime | None = None
    response: TaskResponse | None = None
    # Optimistic concurrency: every write checks and bumps it.
    version: int = 0
    request_id: str | None = field(default=None, compare=False)

    def to_public(self) -> Task:
        return Task(
            task_id=self.task_id,
            created_at=self.created_at,
            completed_at=self.completed_at,
            callback_url=self.callback_url,
            status=self.status,
            instruction=self.instruction,
            params=self.params,
            response=self.response,
            metadata=self.metadata,
            unique_id=self.unique_id,
            canceled_at=self.canceled_at,
        )


def request_fingerprint(request: CreateTaskRequest) -> str:
    """What makes two creations "the same" for `unique_id` idempotency."""
    canonical = request.model_dump(mode="json", exclude={"unique_id"})
    return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _event(event_type: type[TaskEvent], record: TaskRecord) -> TaskEvent:
    return event_type(
        customer_id=record.customer_id,
        callback_format=record.callback_format,
        task=record.to_public(),
        request_id=record.request_id,
    )


def create_task(
    task_id: str,
    customer_id: str,
    request: CreateTaskRequest,
    now: datetime,
    request_id: str | None = None,
) -> tuple[TaskRecord, list[TaskEvent]]:
    record = TaskRecord(
        task_id=task_id,
        customer_id=customer_id,
        created_at=now,
        callback_url=request.callback_url,
        callback_format=request.callback_format,
        instruction=request.instruction,
        params=TaskParams(
            attachment_type=request.attachment_type,
            attachment=request.attachment,
            categories=list(request.categories),
        ),
        metadata=request.metadata,
        unique_id=request.unique_id,
        request_id=request_id,
    )
    return record, [_event(TaskCreated, record)]


def cancel_task(
    record: TaskRecord, now: datetime, request_id: str | None = None
) -> tuple[TaskRecord, list[TaskEvent]]:
    """Cancel a pending task; a canceled one stays as it is; a completed one cannot be."""
    if record.status == "canceled":
        return record, []
    if record.status == "completed":
        raise Conflict(f"task {record.task_id} is already completed and cannot be canceled")
    canceled = replace(record, status="canceled", canceled_at=now, request_id=request_id)
    return canceled, [_event(TaskCanceled, canceled)]
