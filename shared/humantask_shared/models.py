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
MAX_METADATA_BYTES = 16 * 1024
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
        if metadata is not None and len(orjson.dumps(metadata)) > MAX_METADATA_BYTES:
            raise ValueError(f"must be at most {MAX_METADATA_BYTES} bytes as JSON")
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


class ErrorBody(BaseModel):
    """Every error the API returns."""

    status_code: int
    error: str
