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
from humantask_shared.core.scale_models import ReviewStatus, TaskAudit, TaskPlacement
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
    # Scale's (docs/reference/api.md §11): where the task belongs, its tags, its audits.
    project: str | None = None
    batch: str | None = None
    tags: tuple[str, ...] = ()
    customer_review_status: ReviewStatus | None = None
    audits: tuple[TaskAudit, ...] = ()
    # When the customer's view of the task last changed (None: never since created).
    updated_at: datetime | None = None
    # How often it was completed: a task rejected in an audit completes again.
    completions: int = 0
    # Workers who may not claim it: they answered it before an audit rejected it.
    excluded_workers: tuple[str, ...] = ()
    # What it counts against its customer's stored-bytes quota, as read from the database
    # (None: not read from it, or stored before quotas, and so counting nothing); the
    # repository keeps it (`task_bytes`).
    size_bytes: int | None = field(default=None, compare=False)

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


def request_fingerprint(request: CreateTaskRequest, placement: TaskPlacement | None = None) -> str:
    """What makes two creations "the same" for `unique_id` idempotency (a task's project,
    batch and tags, when it has any, among it)."""
    canonical = request.model_dump(mode="json", exclude={"unique_id"})
    if placement is not None and placement != TaskPlacement():
        canonical["placement"] = placement.model_dump(mode="json")
    return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _event(event_type: type[TaskEvent], record: TaskRecord) -> TaskEvent:
    return event_type(
        customer_id=record.customer_id,
        callback_format=record.callback_format,
        task=record.to_public(),
        request_id=record.request_id,
    )


def completed_event(record: TaskRecord) -> TaskCompleted:
    """`task.completed`, numbered: the notifier calls back each completion once."""
    return TaskCompleted(
        customer_id=record.customer_id,
        callback_format=record.callback_format,
        task=record.to_public(),
        request_id=record.request_id,
        completion=max(record.completions, 1),
    )


def touched(before: TaskRecord, after: TaskRecord, now: datetime) -> TaskRecord:
    """`after`, its `updated_at` moved to `now` if what its customer sees changed (a
    lease, a version or a request id is not what a customer sees)."""
    if _customer_view(after) == _customer_view(before):
        return after
    return replace(after, updated_at=now)


def _customer_view(record: TaskRecord) -> tuple[Any, ...]:
    return (
        record.to_public(),
        record.project,
        record.batch,
        record.tags,
        record.customer_review_status,
        record.audits,
    )


def create_task(
    task_id: str,
    customer_id: str,
    request: CreateTaskRequest,
    now: datetime,
    request_id: str | None = None,
    placement: TaskPlacement | None = None,
) -> tuple[TaskRecord, list[TaskEvent]]:
    """A new pending task; `placement` puts it in a project and a batch, with tags
    (`/scale/v1`, whose handler checks them first)."""
    placed = placement or TaskPlacement()
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
        fingerprint=None if request.unique_id is None else request_fingerprint(request, placement),
        request_id=request_id,
        project=placed.project,
        batch=placed.batch,
        tags=tuple(placed.tags),
        updated_at=now,
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
        completions=record.completions + 1,
    )
    return completed, [completed_event(completed)]


def release_work(record: TaskRecord, worker_id: str, now: datetime) -> TaskRecord:
    """Give the lease back: the task is claimable again at once."""
    _require_live_lease(record, worker_id, now)
    return _without_lease(record)


def _without_lease(record: TaskRecord) -> TaskRecord:
    return replace(record, lease_worker_id=None, lease_expires_at=None)


def _require_live_lease(record: TaskRecord, worker_id: str, now: datetime) -> None:
    if not holds_live_lease(record, worker_id, now):
        raise no_live_lease(record.task_id)
