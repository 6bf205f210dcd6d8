"""What a customer may change of a task besides its state (docs/reference/contract.md §11):
its metadata, its tags and its unique_id. No I/O here; none of them raises an event."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from humantask_shared.core.scale_models import MAX_TAGS, TagOperation

from .domain import TaskRecord


def set_metadata(record: TaskRecord, metadata: dict[str, Any]) -> TaskRecord:
    return replace(record, metadata=metadata)


def change_tags(record: TaskRecord, operation: TagOperation, tags: list[str]) -> TaskRecord:
    """Set the tags, add some (those already there stay where they are) or delete some
    (those not there are ignored); at most MAX_TAGS, the oldest kept."""
    if operation == "set":
        kept = list(dict.fromkeys(tags))
    elif operation == "add":
        kept = list(dict.fromkeys([*record.tags, *tags]))
    else:
        deleted = set(tags)
        kept = [tag for tag in record.tags if tag not in deleted]
    return replace(record, tags=tuple(kept[:MAX_TAGS]))


def set_unique_id(record: TaskRecord, unique_id: str | None) -> TaskRecord:
    """A new unique_id (or none). The parameters a create was checked against are the
    first create's: a unique_id given later matches no create, so a create that names it
    is a `409` naming this task."""
    if unique_id == record.unique_id:
        return record
    return replace(record, unique_id=unique_id, fingerprint=None)
