"""A customer's audit of a completed task (docs/reference/api.md §11). No I/O here.

Accepted: the task says so (`customer_review_status: "accepted"`). Rejected: the task is
pending again, its answer no longer counts, and only a worker who has not answered it may
claim it; when it completes again, its callback is sent again (a new delivery: the
notifier keys deliveries by the task and its completion number).

`reopen_for_audit` is the one step that knows how a task counts its answers. Here a task
has one answer (its worker's): reopening forgets the response and the worker, and
remembers the worker in `excluded_workers`, which the claim honours.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from humantask_shared.core.errors import Conflict
from humantask_shared.core.messages.events import TaskEvent, TaskReopened
from humantask_shared.core.scale_models import MAX_AUDITS, AuditRequest, TaskAudit

from .domain import TaskRecord


def audit_task(
    record: TaskRecord, audit: AuditRequest, now: datetime, request_id: str | None = None
) -> tuple[TaskRecord, list[TaskEvent]]:
    """Accept or reject a completed task's answer."""
    if record.status != "completed":
        raise Conflict(
            f"task {record.task_id} is {record.status}: only a completed task can be audited"
        )
    entry = TaskAudit(accepted=audit.accepted, comments=audit.comments, audited_at=now)
    audited = replace(
        record,
        audits=(*record.audits, entry)[-MAX_AUDITS:],
        customer_review_status="accepted" if audit.accepted else "rejected",
        request_id=request_id,
    )
    if audit.accepted:
        return audited, []
    reopened = reopen_for_audit(audited)
    return reopened, [
        TaskReopened(
            customer_id=reopened.customer_id,
            callback_format=reopened.callback_format,
            task=reopened.to_public(),
            request_id=request_id,
        )
    ]


def reopen_for_audit(record: TaskRecord) -> TaskRecord:
    """The task pending again: its answers stop counting, and whoever gave them may not
    answer it again. Its completion count stays, so its next completion is a new one."""
    excluded = record.excluded_workers
    if record.completed_by is not None and record.completed_by not in excluded:
        excluded = (*excluded, record.completed_by)
    return replace(
        record,
        status="pending",
        response=None,
        completed_at=None,
        completed_by=None,
        lease_worker_id=None,
        lease_expires_at=None,
        excluded_workers=excluded,
    )
