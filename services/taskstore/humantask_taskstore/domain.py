"""The task and its state machine: pending → completed | canceled, and worker leases.
No I/O here.

A pending task is *claimable* unless a worker holds a live lease on it. A lease ends when
it expires, when its worker releases it or completes the task, or when the task is
canceled. Only the worker holding the live lease may complete the task.

Every change returns the new task and the events it raised; the repository writes both
in one document write (the outbox), so an event is never lost between write and publish.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import orjson

from humantask_shared.core.errors import Conflict, InvalidRequest
from humantask_shared.core.messages.events import (
    TaskCanceled,
    TaskCompleted,
    TaskCreated,
    TaskEvent,
)
from humantask_shared.core.models import (
    CallbackFormat,
    CreateTaskRequest,
    Task,
    TaskParams,
    TaskResponse,
    TaskStatus,
)
from humantask_shared.core.worker_models import CompletedWork, WorkItem, no_live_lease


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
    # What makes a repeated create with the same unique_id "the same" (`request_fingerprint`).
    fingerprint: str | None = None
    completed_at: datetime | None = None
    canceled_at: datetime | None = None
    response: TaskResponse | None = None
    # The worker holding the lease, and until when; both None when nobody holds one.
    lease_worker_id: str | None = None
    lease_expires_at: datetime | None = None
    # Who answered (for operators; never shown to customers).
    completed_by: str | None = None
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

    def to_work_item(self) -> WorkItem:
        """The leased task as its worker sees it: nothing about the customer."""
        assert self.lease_expires_at is not None, "only a leased task is a work item"
        return WorkItem(
            task_id=self.task_id,
            instruction=self.instruction,
            params=self.params,
            lease_expires_at=self.lease_expires_at,
        )

    def to_completed_work(self) -> CompletedWork:
        assert self.response is not None and self.completed_at is not None
        return CompletedWork(
            task_id=self.task_id,
            instruction=self.instruction,
            params=self.params,
            status=self.status,
            response=self.response,
            completed_at=self.completed_at,
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
        fingerprint=None if request.unique_id is None else request_fingerprint(request),
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
    canceled = replace(
        _without_lease(record), status="canceled", canceled_at=now, request_id=request_id
    )
    return canceled, [_event(TaskCanceled, canceled)]


# --- worker leases -----------------------------------------------------------------------


def holds_live_lease(record: TaskRecord, worker_id: str, now: datetime) -> bool:
    return (
        record.status == "pending"
        and record.lease_worker_id == worker_id
        and record.lease_expires_at is not None
        and record.lease_expires_at > now
    )


def lease_expiry(now: datetime, lease_seconds: float) -> datetime:
    """When a lease taken now ends. A task is claimable while it is pending and nobody
    holds a live lease on it (the repository claims it in one atomic write)."""
    return now + timedelta(seconds=lease_seconds)


def submit_work(
    record: TaskRecord,
    worker_id: str,
    category: str,
    now: datetime,
    request_id: str | None = None,
) -> tuple[TaskRecord, list[TaskEvent]]:
    """Complete the task with `category`; the worker must hold the live lease on it."""
    _require_live_lease(record, worker_id, now)
    if category not in record.params.categories:
        raise InvalidRequest(
            f"category: {category!r} is not one of the task's categories "
            f"({', '.join(repr(c) for c in record.params.categories)})"
        )
    completed = replace(
        _without_lease(record),
        status="completed",
        completed_at=now,
        response=TaskResponse(category=category),
        completed_by=worker_id,
        request_id=request_id,
    )
    return completed, [_event(TaskCompleted, completed)]


def release_work(record: TaskRecord, worker_id: str, now: datetime) -> TaskRecord:
    """Give the lease back: the task is claimable again at once."""
    _require_live_lease(record, worker_id, now)
    return _without_lease(record)


def _without_lease(record: TaskRecord) -> TaskRecord:
    return replace(record, lease_worker_id=None, lease_expires_at=None)


def _require_live_lease(record: TaskRecord, worker_id: str, now: datetime) -> None:
    if not holds_live_lease(record, worker_id, now):
        raise no_live_lease(record.task_id)
