"""The requests of `api.tasks`, as `Call`s (no I/O: the sync and async clients send them)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from pydantic import TypeAdapter

from ._http import Call, drop_none
from .models import CallbackAttempt, Task

_TASKS = TypeAdapter(list[Task])
_CALLBACKS = TypeAdapter(list[CallbackAttempt])


def task_path(task_id: str, suffix: str = "") -> str:
    if not isinstance(task_id, str) or not task_id:
        raise ValueError("task_id must be a non-empty string")
    return f"task/{quote(task_id, safe='')}{suffix}"


def timestamp(value: datetime | str) -> str:
    if isinstance(value, str):
        return value
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="milliseconds") + "Z"


def create(
    *,
    callback_url: str | None,
    instruction: str | None,
    attachment_type: str | None,
    attachment: str | None,
    categories: list[str] | None,
    metadata: dict[str, Any] | None = None,
    unique_id: str | None = None,
    callback_format: str | None = None,
    project: str | None = None,
    batch: str | None = None,
    tags: list[str] | None = None,
    extra: dict[str, Any],
) -> Call[Task]:
    """`POST task/categorize`; sent again after a failure only when it has a `unique_id`,
    with which the server makes the same task once however often it is asked. In a
    project or a batch, or with tags, Scale's `POST /scale/v1/task/categorization`: the
    project's params fill in what is left out."""
    body = drop_none(
        {
            **extra,
            "callback_url": callback_url,
            "instruction": instruction,
            "attachment_type": attachment_type,
            "attachment": attachment,
            "categories": None if categories is None else list(categories),
            "metadata": metadata,
            "unique_id": unique_id,
            "callback_format": callback_format,
            "project": project,
            "batch": batch,
            "tags": None if tags is None else list(tags),
        }
    )
    placed = project is not None or batch is not None or tags is not None
    return Call(
        "POST",
        "task/categorization" if placed else "task/categorize",
        Task.model_validate,
        json=body,
        retryable=unique_id is not None,
        scale=placed,
    )


def get(task_id: str) -> Call[Task]:
    return Call("GET", task_path(task_id), Task.model_validate, retryable=True)


def cancel(task_id: str, clear_unique_id: bool = False) -> Call[Task]:
    # Canceling a canceled task answers the same task again: safe to repeat.
    if clear_unique_id:  # Scale's: the unique_id is free for another task
        return Call(
            "POST",
            task_path(task_id, "/cancel"),
            Task.model_validate,
            params={"clear_unique_id": "true"},
            retryable=True,
            scale=True,
        )
    return Call("POST", task_path(task_id, "/cancel"), Task.model_validate, retryable=True)


# -- Scale's task calls (under /scale/v1/): audits, tags, metadata, unique_id ------------


def audit(task_id: str, accepted: bool, comments: str | None) -> Call[Task]:
    """Accept a completed task's answer, or reject it (the task goes back to workers who
    have not answered it). Not retried: a second rejection would meet a pending task."""
    body = drop_none({"accepted": accepted, "comments": comments})
    return Call("POST", task_path(task_id, "/audit"), Task.model_validate, json=body, scale=True)


def tags(task_id: str, method: str, tags: list[str]) -> Call[Task]:
    """`POST` sets the tags, `PUT` adds to them, `DELETE` deletes from them: each the
    same however often it is sent."""
    return Call(
        method,
        task_path(task_id, "/tags"),
        Task.model_validate,
        json=list(tags),
        retryable=True,
        scale=True,
    )


def set_metadata(task_id: str, metadata: dict[str, Any]) -> Call[Task]:
    return Call(
        "POST",
        task_path(task_id, "/setMetadata"),
        Task.model_validate,
        json=dict(metadata),
        retryable=True,
        scale=True,
    )


def set_unique_id(task_id: str, unique_id: str | None) -> Call[Task]:
    if unique_id is None:
        return Call(
            "DELETE",
            task_path(task_id, "/unique_id"),
            Task.model_validate,
            retryable=True,
            scale=True,
        )
    return Call(
        "POST",
        task_path(task_id, "/unique_id"),
        Task.model_validate,
        json={"unique_id": unique_id},
        retryable=True,
        scale=True,
    )


def callbacks(task_id: str) -> Call[list[CallbackAttempt]]:
    return Call("GET", task_path(task_id, "/callbacks"), _CALLBACKS.validate_python, retryable=True)


def list_(
    *,
    status: str | None = None,
    type: str | None = None,  # noqa: A002 - the API's name
    unique_id: str | None = None,
    start_time: datetime | str | None = None,
    end_time: datetime | str | None = None,
    limit: int | None = None,
    offset: int | None = None,
    next_token: str | None = None,
) -> Call[list[Task]]:
    params = drop_none(
        {
            "status": status,
            "type": type,
            "unique_id": unique_id,
            "start_time": None if start_time is None else timestamp(start_time),
            "end_time": None if end_time is None else timestamp(end_time),
            "limit": None if limit is None else str(limit),
            "offset": None if offset is None else str(offset),
            "next_token": next_token,
        }
    )
    return Call("GET", "tasks", _TASKS.validate_python, params=params, retryable=True)
