"""The task object and the HTTP bodies of the customer API: defined once, used everywhere.

The task object has exactly the seed's fields (API.md section 4); optional extras are
left out of the JSON when they do not apply.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import orjson
from bson import ObjectId
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictStr,
    field_validator,
    model_validator,
)

from .timeutil import format_timestamp

TASK_ID_PATTERN = re.compile(r"^[0-9a-f]{24}$")


def new_task_id() -> str:
    """A new task id: a MongoDB ObjectId (24 lowercase hex characters, time-ordered)."""
    return str(ObjectId())
MAX_METADATA_BYTES = 16 * 1024
# Well below the 255 levels orjson can write, so a task holding it can still be
# sent inside replies, pages and events (each adds a few levels around it).
MAX_METADATA_DEPTH = 64
MAX_UNIQUE_ID_LENGTH = 256
MAX_URL_LENGTH = 2048

AttachmentType = Literal["text", "image", "video", "audio", "website"]
TaskStatus = Literal["pending", "completed", "canceled"]
TaskType = Literal["categorization"]
CallbackFormat = Literal["form", "json"]

Timestamp = Annotated[
    datetime,
    PlainSerializer(format_timestamp, return_type=str, when_used="json"),
    Field(json_schema_extra={"example": "2016-06-23T09:09:34.752Z"}),
]


def is_http_url(value: str) -> bool:
    """An absolute http(s) URL with a host, as a customer would paste it."""
    if len(value) > MAX_URL_LENGTH or any(ch.isspace() for ch in value):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _http_url(value: str) -> str:
    if not is_http_url(value):
        raise ValueError("must be an absolute http or https URL")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _json_depth(value: Any) -> int:
    """How many objects and arrays deep `value` goes (iterative: no recursion limit)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in item)
    return deepest


HttpUrlString = Annotated[StrictStr, AfterValidator(_http_url)]
NonEmptyString = Annotated[StrictStr, AfterValidator(_not_blank)]


class TaskParams(BaseModel):
    model_config = ConfigDict(frozen=True)

    attachment_type: AttachmentType
    attachment: str
    categories: list[str]


class TaskResponse(BaseModel):
    model_config = ConfigDict(frozen=True)

    category: str
    status_code: int = 200


class Task(BaseModel):
    """The customer's view of a task: the seed's task object."""

    model_config = ConfigDict(frozen=True)

    task_id: str
    created_at: Timestamp
    completed_at: Timestamp | None = None
    callback_url: str
    type: TaskType = "categorization"
    status: TaskStatus
    instruction: str
    params: TaskParams
    response: TaskResponse | None = None
    metadata: dict[str, Any] | None = None
    unique_id: str | None = None
    canceled_at: Timestamp | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class CreateTaskRequest(BaseModel):
    """`POST /v1/task/categorize`: what a customer may send."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    callback_url: HttpUrlString
    instruction: NonEmptyString
    attachment_type: AttachmentType
    attachment: NonEmptyString
    categories: list[NonEmptyString] = Field(min_length=2)
    metadata: dict[str, Any] | None = None
    unique_id: Annotated[NonEmptyString, Field(max_length=MAX_UNIQUE_ID_LENGTH)] | None = None
    callback_format: CallbackFormat = "form"

    @field_validator("categories")
    @classmethod
    def _distinct(cls, categories: list[str]) -> list[str]:
        if len(set(categories)) != len(categories):
            raise ValueError("categories must be distinct")
        return categories

    @field_validator("metadata")
    @classmethod
    def _small_metadata(cls, metadata: dict[str, Any] | None) -> dict[str, Any] | None:
        if metadata is None:
            return None
        too_deep = f"must not be nested more than {MAX_METADATA_DEPTH} levels deep"
        try:
            size = len(orjson.dumps(metadata))
        except orjson.JSONEncodeError as exc:  # a TypeError: pydantic would not catch it
            raise ValueError(f"must be plain JSON and {too_deep}") from exc
        if size > MAX_METADATA_BYTES:
            raise ValueError(f"must be at most {MAX_METADATA_BYTES} bytes as JSON")
        if _json_depth(metadata) > MAX_METADATA_DEPTH:
            raise ValueError(too_deep)
        return metadata

    @model_validator(mode="after")
    def _attachment_matches_type(self) -> CreateTaskRequest:
        if self.attachment_type != "text" and not is_http_url(self.attachment):
            # Raised without a field location; the message names the field itself.
            raise ValueError(
                f"attachment: must be an absolute http or https URL "
                f"when attachment_type is {self.attachment_type}"
            )
        return self


class TaskListQuery(BaseModel):
    """`GET /v1/tasks` query parameters."""

    model_config = ConfigDict(frozen=True)

    status: TaskStatus | None = None
    type: TaskType | None = None
    unique_id: str | None = None
    limit: int = Field(default=100, ge=1, le=100)
    offset: int = Field(default=0, ge=0)
    start_time: datetime | None = None
    end_time: datetime | None = None


class TaskPage(BaseModel):
    """One page of `GET /v1/tasks`: the tasks, and whether more follow."""

    tasks: list[Task]
    has_more: bool


class CallbackAttempt(BaseModel):
    """One entry of `GET /v1/task/{task_id}/callbacks`: an attempt to deliver the callback.

    `at` is when the attempt started; `status_code` is the receiver's answer (null when
    none came: timeout, refused connection, DNS failure, a refused address); `error`
    says what went wrong (null when the receiver answered 200).
    """

    model_config = ConfigDict(frozen=True)

    attempt: Literal[1, 2]
    at: Timestamp
    status_code: int | None = None
    error: str | None = None
    delivered: bool


class ErrorBody(BaseModel):
    """Every error the API returns."""

    status_code: int
    error: str
