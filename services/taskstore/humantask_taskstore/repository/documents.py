"""How a task is stored: one document in `tasks` per task, `_id` its id as an ObjectId,
the events its changes raised and nobody published yet in its `outbox` (their JSON text,
as published), `outbox_at` while there are any, and `size_bytes`, what the task counts
against its customer's stored-bytes quota (`task_bytes`; tasks stored before quotas
existed have none, and count nothing).

Its workers: `leases` (`{worker_id, expires_at}`, one per worker holding one), `answers`
(`{worker_id, category, at, counted}`, in the order given), `free_at` (when a slot frees
up while none is free), and `pool` ("work" or "gold" while it is pending, else null: the
claims' index). The §10 settings (`min_workers`, `max_workers`, `confidence`,
`gold_category`) only when the customer gave them; `posterior` (pairs of category and
probability: a category may hold `.` or start with `$`, which field names may not) once
it completed; `answers_version`, bumped by every change of its answers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from bson import ObjectId

from humantask_shared.core.messages.envelope import StampedEvent
from humantask_shared.core.models import TaskParams, TaskResponse
from humantask_shared.core.scale_models import TaskAudit
from humantask_shared.core.timeutil import as_utc

from ..domain import Answer, Lease, TaskRecord

TASKS = "tasks"

# Fields a task holds only while they apply (absent otherwise: the partial indexes on
# them hold only the tasks that have them); a save unsets those that no longer apply.
OPTIONAL_FIELDS = (
    "unique_id",
    "fingerprint",
    "project",
    "batch",
    "tags",
    "customer_review_status",
    "audits",
)


def record_fields(record: TaskRecord) -> dict[str, Any]:
    """The task's fields as stored (`_id` included), without its outbox."""
    document = {
        "_id": ObjectId(record.task_id),
        "customer_id": record.customer_id,
        "created_at": record.created_at,
        "callback_url": record.callback_url,
        "callback_format": record.callback_format,
        "instruction": record.instruction,
        "params": record.params.model_dump(),
        "status": record.status,
        # Kept opaque: customer keys may hold '.' or '$', which MongoDB-likes reject.
        "metadata_json": None
        if record.metadata is None
        else orjson.dumps(record.metadata).decode(),
        "completed_at": record.completed_at,
        "canceled_at": record.canceled_at,
        "response": None if record.response is None else _response_fields(record.response),
        "leases": [
            {"worker_id": lease.worker_id, "expires_at": lease.expires_at}
            for lease in record.leases
        ],
        "answers": [
            {
                "worker_id": answer.worker_id,
                "category": answer.category,
                "at": answer.at,
                "counted": answer.counted,
            }
            for answer in record.answers
        ],
        "free_at": record.free_at,
        "pool": record.pool,
        "posterior": None
        if record.posterior is None
        else [list(p) for p in record.posterior.items()],
        "reopened": record.reopened,
        "answers_version": record.answers_version,
        "version": record.version,
        "request_id": record.request_id,
        **record.quality_settings(),
        "updated_at": record.updated_at,
    }
    if record.unique_id is not None:  # absent, not null: see indexes.UNIQUE_ID_INDEX
        document["unique_id"] = record.unique_id
        document["fingerprint"] = record.fingerprint
    optional: dict[str, Any] = {
        "project": record.project,
        "batch": record.batch,
        "tags": list(record.tags),
        "customer_review_status": record.customer_review_status,
        "audits": [audit.model_dump() for audit in record.audits],
    }
    document.update({name: value for name, value in optional.items() if value})
    return document


# Left out of a new task's document while empty (a create writes no more than it must).
_EMPTY_AT_CREATE = ("leases", "answers", "free_at", "posterior", "reopened", "answers_version")


def task_document(
    record: TaskRecord, events: Sequence[StampedEvent] = (), now: datetime | None = None
) -> dict[str, Any]:
    """A new task's whole document, its events (stamped at `now`) in its outbox; what
    the task-store inserts, and what tooling inserts in bulk (`bench/`) with no events."""
    document = record_fields(record) | {
        "outbox": outbox_entries(events),
        "size_bytes": task_bytes(record),
    }
    for name in _EMPTY_AT_CREATE:
        if not document[name]:
            del document[name]
    if events:
        document["outbox_at"] = now
    return document


def task_bytes(record: TaskRecord) -> int:
    """What a task counts against its customer's stored-bytes quota: its fields as the
    customer gave them, as UTF-8 JSON (as the gateway's MAX_TASK_BYTES measures them).
    A completion adds a category and no more; a change of its metadata or unique_id
    (`/scale/v1`) changes it, and the save counts the difference."""
    fields = {
        "callback_url": record.callback_url,
        "instruction": record.instruction,
        "params": record.params.model_dump(),
        "metadata": record.metadata,
        "unique_id": record.unique_id,
    }
    return len(orjson.dumps(fields))


def task_record(doc: dict[str, Any]) -> TaskRecord:
    return TaskRecord(
        task_id=str(doc["_id"]),
        customer_id=doc["customer_id"],
        created_at=as_utc(doc["created_at"]),
        callback_url=doc.get("callback_url"),
        callback_format=doc.get("callback_format", "form"),
        instruction=doc["instruction"],
        params=TaskParams.model_validate(doc["params"]),
        status=doc["status"],
        metadata=None if doc.get("metadata_json") is None else orjson.loads(doc["metadata_json"]),
        unique_id=doc.get("unique_id"),
        fingerprint=doc.get("fingerprint"),
        completed_at=as_utc(doc["completed_at"]) if doc.get("completed_at") else None,
        canceled_at=as_utc(doc["canceled_at"]) if doc.get("canceled_at") else None,
        response=_response(doc["response"]) if doc.get("response") else None,
        min_workers=doc.get("min_workers"),
        max_workers=doc.get("max_workers"),
        confidence=doc.get("confidence"),
        gold_category=doc.get("gold_category"),
        leases=tuple(
            Lease(lease["worker_id"], as_utc(lease["expires_at"]))
            for lease in doc.get("leases") or ()
        ),
        answers=tuple(
            Answer(a["worker_id"], a["category"], as_utc(a["at"]), bool(a.get("counted", True)))
            for a in doc.get("answers") or ()
        ),
        free_at=as_utc(doc["free_at"]) if doc.get("free_at") else None,
        posterior=None
        if doc.get("posterior") is None
        else {category: float(p) for category, p in doc["posterior"]},
        reopened=doc.get("reopened", 0),
        answers_version=doc.get("answers_version", 0),
        version=doc.get("version", 0),
        request_id=doc.get("request_id"),
        project=doc.get("project"),
        batch=doc.get("batch"),
        tags=tuple(doc.get("tags") or ()),
        customer_review_status=doc.get("customer_review_status"),
        audits=tuple(_audit(audit) for audit in doc.get("audits") or ()),
        updated_at=as_utc(doc["updated_at"]) if doc.get("updated_at") else None,
        size_bytes=doc.get("size_bytes"),
    )


def _audit(doc: dict[str, Any]) -> TaskAudit:
    return TaskAudit.model_validate({**doc, "audited_at": as_utc(doc["audited_at"])})


def _response_fields(response: TaskResponse) -> dict[str, Any]:
    fields = response.model_dump(exclude_none=True)
    if response.votes is not None:  # categories are not field names: pairs
        fields["votes"] = [[category, count] for category, count in response.votes.items()]
    return fields


def _response(fields: dict[str, Any]) -> TaskResponse:
    votes = fields.get("votes")
    if votes is not None:
        fields = {**fields, "votes": {category: count for category, count in votes}}
    return TaskResponse.model_validate(fields)


def outbox_entries(events: Sequence[StampedEvent]) -> list[str]:
    """The outbox holds events as the JSON text that will be published, byte for byte."""
    return [event.body for event in events]
