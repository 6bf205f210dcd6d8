"""A task as `/scale/v1` shows it (docs/reference/contract.md §11): the v1 task object with
Scale's fields. No I/O here."""

from __future__ import annotations

from humantask_shared.core.scale_models import ScaleTask

from .domain import TaskRecord


def scale_view(record: TaskRecord) -> ScaleTask:
    public = record.to_public()
    return ScaleTask(
        **dict(public),
        updated_at=record.updated_at or record.created_at,
        project=record.project,
        batch=record.batch,
        tags=list(record.tags),
        customer_review_status=record.customer_review_status,
        audits=list(record.audits),
    )
