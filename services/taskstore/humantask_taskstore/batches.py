"""Batches (docs/reference/contract.md §11): a customer's named group of tasks of one project.
No I/O here.

    staging ──finalize──▶ in_progress ──every task completed or canceled──▶ completed

Tasks join a batch only while it is staging (Scale's rule: none may be added once it is
finalized); they are served to workers whatever the batch's status. A finalized batch
completes when none of its tasks is pending: the task-store decides it once, by a
conditional write on the batch (`complete`), whenever a task of it settles or it is
finalized (`batch.task_settled`, `batch.finalized`, on `taskstore.batch-progress`), and
the `batch.completed` it raises goes out through the batch's outbox to the notifier,
which calls the batch's `callback` once, keyed by the batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from humantask_shared.core.errors import Conflict
from humantask_shared.core.messages.base import Event
from humantask_shared.core.messages.events import (
    BatchCompleted,
    BatchEvent,
    BatchFinalized,
    BatchTaskSettled,
)
from humantask_shared.core.scale_models import (
    Batch,
    BatchCounts,
    BatchStatus,
    BatchStatusView,
    CreateBatchRequest,
)

from .domain import TaskRecord


@dataclass(frozen=True)
class BatchRecord:
    batch_id: str
    customer_id: str
    name: str
    project: str
    created_at: datetime
    callback: str = ""
    metadata: dict[str, Any] | None = None
    status: BatchStatus = "staging"
    finalized_at: datetime | None = None
    completed_at: datetime | None = None
    # Its tasks' counts when it completed.
    counts: BatchCounts | None = None
    # Optimistic concurrency: every write checks and bumps it.
    version: int = 0
    request_id: str | None = field(default=None, compare=False)

    def to_public(self) -> Batch:
        return Batch(
            name=self.name,
            project=self.project,
            status=self.status,
            callback=self.callback,
            metadata=self.metadata or {},
            created_at=self.created_at,
            finalized_at=self.finalized_at,
            completed_at=self.completed_at,
        )


def new_batch(
    batch_id: str, customer_id: str, request: CreateBatchRequest, now: datetime
) -> BatchRecord:
    return BatchRecord(
        batch_id=batch_id,
        customer_id=customer_id,
        name=request.name,
        project=request.project,
        created_at=now,
        callback=request.callback,
        metadata=request.metadata,
    )


def admit_task(batch: BatchRecord) -> None:
    """A task may join the batch only while it is staging."""
    if batch.status != "staging":
        raise Conflict(
            f"batch {batch.name!r} is {batch.status}: tasks can be added only while it is "
            "staging (before it is finalized)"
        )


def _event(event_type: type[BatchEvent], batch: BatchRecord, **facts: Any) -> BatchEvent:
    return event_type(
        customer_id=batch.customer_id,
        batch_id=batch.batch_id,
        batch=batch.to_public(),
        request_id=batch.request_id,
        **facts,
    )


def finalize(
    batch: BatchRecord, now: datetime, request_id: str | None = None
) -> tuple[BatchRecord, list[Event]]:
    """Staging → in progress; a batch already finalized stays as it is."""
    if batch.status != "staging":
        return batch, []
    finalized = replace(batch, status="in_progress", finalized_at=now, request_id=request_id)
    return finalized, [_event(BatchFinalized, finalized)]


def complete(
    batch: BatchRecord, counts: BatchCounts, now: datetime
) -> tuple[BatchRecord, list[Event]]:
    """In progress → completed once no task of it is pending; otherwise as it is."""
    if batch.status != "in_progress" or counts.pending:
        return batch, []
    completed = replace(batch, status="completed", completed_at=now, counts=counts)
    return completed, [_event(BatchCompleted, completed, counts=counts)]


def status_view(batch: BatchRecord, counts: BatchCounts) -> BatchStatusView:
    return BatchStatusView(status=batch.status, **counts.model_dump())


def settled(before: TaskRecord, after: TaskRecord) -> list[Event]:
    """`batch.task_settled` when a change completes or cancels a pending task of a batch."""
    if after.batch is None or before.status != "pending" or after.status == "pending":
        return []
    return [
        BatchTaskSettled(
            customer_id=after.customer_id,
            batch=after.batch,
            task_id=after.task_id,
            request_id=after.request_id,
        )
    ]
