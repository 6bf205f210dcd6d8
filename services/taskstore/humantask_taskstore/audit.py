"""A customer's audit of a completed task (docs/reference/contract.md §11). No I/O here.

Accepted: the task says so (`customer_review_status: "accepted"`). Rejected: the task is
pending again under the several-worker model (`domain.reopen_for_audit`): every answer it
has stops counting but is remembered, so every worker who answered it (its completion's,
and any other) may not claim it again, gold and quality rules included; its slots are
free, so `max_workers` new answers may come, and it completes again by the same rule.
That completion is its next (`TaskRecord.reopened` counts them): a `task.completed` of its
own, called back as a delivery of its own (the notifier numbers deliveries per task).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from humantask_shared.core.errors import Conflict
from humantask_shared.core.messages.events import TaskEvent, TaskReopened
from humantask_shared.core.scale_models import MAX_AUDITS, AuditRequest, TaskAudit

from .domain import TaskRecord, reopen_for_audit


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
    reopened = reopen_for_audit(audited, now)
    return reopened, [
        TaskReopened(
            customer_id=reopened.customer_id,
            callback_format=reopened.callback_format,
            task=reopened.to_public(),
            request_id=request_id,
        )
    ]
