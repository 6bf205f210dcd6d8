"""Scale's current API for its official SDK (docs/reference/contract.md §11): the task object
as `/scale/v1` shows it, projects, batches, audits, and the bodies and queries of those
routes. `/v1` keeps the v1 API's shapes (`models.py`); both see the same tasks.

The shapes are the ones the official Python SDK (`scaleapi` 2.18) reads: a task list is
`{"docs", "total", "limit", "offset", "has_more", "next_token"}`, a batch list
`{"docs", "totalDocs", "limit", "offset", "has_more"}`, a project carries its
`param_history` (the SDK takes the last entry's `version` and `instruction`), a batch its
`name`, `project`, `status`, `created_at` and `metadata`.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    RootModel,
    StrictBool,
    StrictStr,
    field_validator,
    model_validator,
)

from .models import (
    MAX_CATEGORIES,
    MAX_LIST_LIMIT,
    MAX_LIST_OFFSET,
    MAX_METADATA_BYTES,
    MAX_METADATA_DEPTH,
    MAX_NEXT_TOKEN_LENGTH,
    MAX_UNIQUE_ID_LENGTH,
    MIN_CATEGORIES,
    NOT_OUR_TOKEN,
    TOKEN_SIGNATURE,
    AttachmentString,
    AttachmentType,
    CallbackFormat,
    CategoryString,
    Confidence,
    CreateTaskRequest,
    HttpUrlString,
    InstructionString,
    ListCursor,
    NonEmptyString,
    QueryTime,
    Task,
    TaskStatus,
    TaskType,
    Timestamp,
    WorkerCount,
    http_url_problem,
    json_depth,
    workers_problem,
)

MAX_NAME_LENGTH = 256
MAX_TAG_LENGTH = 256
MAX_TAGS = 100
MAX_FILTER_TAGS = 10  # a list filters on at most this many tags at once
MAX_COMMENTS_LENGTH = 10_000
MAX_PROJECT_VERSIONS = 100  # a project keeps its last 100 versions of params
MAX_AUDITS = 100  # a task keeps its last 100 audits

# What a customer's audit says of a completed task. Scale also knows `fixed`,
# `commented` and `pending` (awaiting audit): a filter may name them, nothing sets them.
ReviewStatus = Literal["accepted", "rejected"]
ReviewStatusFilter = Literal["accepted", "rejected", "fixed", "commented", "pending"]
BatchStatus = Literal["staging", "in_progress", "completed"]
TagOperation = Literal["set", "add", "delete"]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


# A project's or batch's name: part of URLs (the SDK quotes it), unique per customer.
Name = Annotated[
    StrictStr,
    Field(min_length=1, max_length=MAX_NAME_LENGTH, json_schema_extra={"pattern": r"\S"}),
    AfterValidator(_not_blank),
]
Tag = Annotated[
    StrictStr,
    Field(min_length=1, max_length=MAX_TAG_LENGTH, json_schema_extra={"pattern": r"\S"}),
    AfterValidator(_not_blank),
]
# What Scale has and humantask does not (its Rapid and Studio products, calibration and
# self-label batches): `false` only, as the SDK sends by default.
NotOffered = Annotated[StrictBool, Field(json_schema_extra={"enum": [False]})]
UniqueId = Annotated[NonEmptyString, Field(max_length=MAX_UNIQUE_ID_LENGTH)]


def check_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """The limits of a task's `metadata` (docs/reference/contract.md §5), for any object a
    customer stores: a batch's, a task's set with `setMetadata`."""
    too_deep = f"must not be nested more than {MAX_METADATA_DEPTH} levels deep"
    try:
        size = len(orjson.dumps(metadata))
    except orjson.JSONEncodeError as exc:
        raise ValueError(f"must be plain JSON and {too_deep}") from exc
    if size > MAX_METADATA_BYTES:
        raise ValueError(f"must be at most {MAX_METADATA_BYTES} bytes as JSON")
    if json_depth(metadata) > MAX_METADATA_DEPTH:
        raise ValueError(too_deep)
    return metadata


Metadata = Annotated[dict[str, Any], AfterValidator(check_metadata)]


def _distinct_tags(tags: list[str]) -> list[str]:
    """Tags are a set kept in the order first given: repeats are dropped."""
    return list(dict.fromkeys(tags))


Tags = Annotated[list[Tag], Field(max_length=MAX_TAGS), AfterValidator(_distinct_tags)]


# -- tasks ---------------------------------------------------------------------------------


class TaskAudit(BaseModel):
    """One audit of a task by its customer."""

    model_config = ConfigDict(frozen=True)

    accepted: bool
    comments: str | None = None
    audited_at: Timestamp


class ScaleTask(Task):
    """A task as `/scale/v1` shows it: the v1 task object and Scale's fields, where they
    apply (`project` and `batch` when the task has them, `customer_review_status` once
    audited)."""

    updated_at: Timestamp
    project: str | None = None
    batch: str | None = None
    tags: list[str] = Field(default_factory=list)
    customer_review_status: ReviewStatus | None = None
    audits: list[TaskAudit] = Field(default_factory=list)


class TaskPlacement(BaseModel):
    """Where a task created through `/scale/v1` goes: its project (whose params are the
    defaults of its create parameters), its batch (of that project) and its tags."""

    model_config = ConfigDict(frozen=True)

    project: Name | None = None
    batch: Name | None = None
    tags: Tags = Field(default_factory=list)

    @property
    def is_placed(self) -> bool:
        return self.project is not None or self.batch is not None


class ScaleCreateTaskRequest(CreateTaskRequest):
    """`POST /scale/v1/task/categorization`: the parameters of `/v1` (docs/reference/contract.md
    §5 and §10), and Scale's `project`, `batch` and `tags`. With a project (or a batch,
    whose project it is), a parameter the request leaves out comes from the project's
    params, so `instruction`, `attachment_type`, `categories` or `callback_url` may be
    left out when the project has them."""

    project: Name | None = None
    batch: Name | None = None
    tags: Tags = Field(default_factory=list)


class AuditRequest(BaseModel):
    """`POST /scale/v1/task/{task_id}/audit`."""

    model_config = ConfigDict(frozen=True)

    accepted: bool  # a form says `true` or `false`
    comments: Annotated[StrictStr, Field(max_length=MAX_COMMENTS_LENGTH)] | None = None


class TagList(RootModel[Tags]):
    """The body of `POST|PUT|DELETE /scale/v1/task/{task_id}/tags`: a JSON array of tags."""


class MetadataBody(RootModel[Metadata]):
    """The body of `POST /scale/v1/task/{task_id}/setMetadata`: the new metadata object."""


class UniqueIdRequest(BaseModel):
    """`POST /scale/v1/task/{task_id}/unique_id`."""

    model_config = ConfigDict(frozen=True)

    unique_id: UniqueId


# -- the task list -------------------------------------------------------------------------


class ScaleListToken(BaseModel):
    """Where the next page of `GET /scale/v1/tasks` starts (the list's own cursor), with the
    `total` counted for the first page and the `offset` of the next page, so that later
    pages cost no count. On the wire it is the `next_token`: `<payload>.<signature>`, the
    payload URL-safe base64 of a short JSON array, the signature the task-store's (an HMAC
    over the payload, the customer and the query's filters, as `/v1`'s: a token it did not
    give out, or one changed, is refused)."""

    model_config = ConfigDict(frozen=True)

    cursor: ListCursor
    total: Annotated[int, Field(ge=0)]
    offset: Annotated[int, Field(ge=0)]

    def payload(self) -> str:
        cursor = self.cursor
        fields = [
            round(cursor.created_at.timestamp() * 1000),
            cursor.task_id,
            cursor.span_seconds,
            self.total,
            self.offset,
        ]
        return base64.urlsafe_b64encode(orjson.dumps(fields)).decode().rstrip("=")

    @classmethod
    def from_payload(cls, payload: str) -> ScaleListToken:
        try:
            raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
            millis, task_id, span, total, offset = orjson.loads(raw)
            created_at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=millis)
            cursor = ListCursor(created_at=created_at, task_id=task_id, span_seconds=span)
            return cls(cursor=cursor, total=total, offset=offset)
        except (
            binascii.Error,
            orjson.JSONDecodeError,
            ValueError,
            TypeError,
            OverflowError,
        ) as exc:
            raise ValueError(NOT_OUR_TOKEN) from exc


def split_scale_token(token: str) -> tuple[ScaleListToken, str]:
    """The page a `/scale/v1` `next_token` carries and its signature, unchecked (the
    task-store checks the signature); ValueError when the token is not shaped like one."""
    payload, dot, signature = token.rpartition(".")
    if not dot or not TOKEN_SIGNATURE.match(signature):
        raise ValueError(NOT_OUR_TOKEN)
    return ScaleListToken.from_payload(payload), signature


def _shaped_like_a_scale_token(value: str) -> str:
    split_scale_token(value)
    return value


ScaleNextToken = Annotated[
    StrictStr,
    Field(
        max_length=MAX_NEXT_TOKEN_LENGTH,
        json_schema_extra={"description": "opaque cursor: the `next_token` of the page before"},
    ),
    AfterValidator(_shaped_like_a_scale_token),
]


def _split_commas(value: Any) -> Any:
    """`accepted,rejected` (the SDK joins a list so) or repeated parameters."""
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        return [part.strip() for item in value for part in str(item).split(",") if part.strip()]
    return value


def _one_of_many(value: Any) -> Any:
    """A parameter given once is a list of one."""
    return [value] if isinstance(value, str) else value


class ScaleTaskListQuery(BaseModel):
    """`GET /scale/v1/tasks` query parameters. `unique_id` and `tags` may repeat (a task
    matches one of the unique ids, and has all the tags); `customer_review_status` may
    list several, comma-separated. `start_time` <= `created_at` < `end_time`,
    `completed_after` <= `completed_at` < `completed_before`."""

    model_config = ConfigDict(frozen=True)

    status: TaskStatus | None = None
    type: TaskType | None = None
    project: Name | None = None
    batch: Name | None = None
    unique_id: Annotated[
        list[Annotated[StrictStr, Field(max_length=MAX_UNIQUE_ID_LENGTH)]],
        BeforeValidator(_one_of_many),
        Field(max_length=MAX_LIST_LIMIT),
    ] = Field(default_factory=list)
    tags: Annotated[
        list[Annotated[StrictStr, Field(max_length=MAX_TAG_LENGTH)]],
        BeforeValidator(_one_of_many),
        Field(max_length=MAX_FILTER_TAGS),
    ] = Field(default_factory=list)
    start_time: QueryTime | None = None
    end_time: QueryTime | None = None
    completed_after: QueryTime | None = None
    completed_before: QueryTime | None = None
    customer_review_status: Annotated[list[ReviewStatusFilter], BeforeValidator(_split_commas)] = (
        Field(default_factory=list)
    )
    limit: int = Field(default=MAX_LIST_LIMIT, ge=1, le=MAX_LIST_LIMIT)
    next_token: ScaleNextToken | None = None
    # The SDK sends these; every attachment here is already a URL, and a full task is
    # as cheap as a limited one: accepted, and changing nothing.
    include_attachment_url: bool | None = None
    limited_response: bool | None = None


class ScaleTaskPage(BaseModel):
    """One page of `GET /scale/v1/tasks`, newest first. `total` counts every task the
    filters match (at most 10,000: docs/reference/contract.md §11), as of the first
    page; `offset` is how many came before this page."""

    docs: list[ScaleTask]
    total: int
    limit: int
    offset: int
    has_more: bool
    # Signed by the task-store, handed on as it is by the gateway.
    next_token: str | None = None


# -- projects ------------------------------------------------------------------------------


class ProjectParams(BaseModel):
    """A project's params: defaults for its tasks' create parameters (docs/reference/contract.md
    §5 and §10). A task's own parameter wins over its project's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    callback_url: HttpUrlString | None = None
    instruction: InstructionString | None = None
    attachment_type: AttachmentType | None = None
    attachment: AttachmentString | None = None
    categories: (
        Annotated[
            list[CategoryString],
            Field(
                min_length=MIN_CATEGORIES,
                max_length=MAX_CATEGORIES,
                json_schema_extra={"uniqueItems": True},
            ),
        ]
        | None
    ) = None
    callback_format: CallbackFormat | None = None
    metadata: Metadata | None = None
    # docs/reference/contract.md §10: how many workers answer each task, and how sure they must
    # be; checked as a create checks them (`CreateTaskRequest`).
    min_workers: WorkerCount | None = None
    max_workers: WorkerCount | None = None
    confidence: Confidence | None = None

    @field_validator("categories")
    @classmethod
    def _distinct(cls, categories: list[str] | None) -> list[str] | None:
        if categories is not None and len(set(categories)) != len(categories):
            raise ValueError("categories must be distinct")
        return categories

    @model_validator(mode="after")
    def _max_not_below_min(self) -> ProjectParams:
        problem = workers_problem(self.min_workers, self.max_workers)
        if problem is not None:
            raise ValueError(problem)
        return self

    def defaults(self) -> dict[str, Any]:
        """The parameters this sets, as a create request spells them."""
        return self.model_dump(mode="json", exclude_unset=True, exclude_none=True)


class GivenCreateFields(ProjectParams):
    """The create parameters a `/scale/v1` create in a project gives, each checked on its
    own: what the project's params leave out is checked once they are filled in."""

    unique_id: UniqueId | None = None
    # A gold task (docs/reference/contract.md §10): a task's own, never a project's default.
    gold_category: CategoryString | None = None


class CreateProjectRequest(BaseModel):
    """`POST /scale/v1/projects`: what the SDK's `create_project` sends."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    type: TaskType
    name: Name
    params: ProjectParams | None = None
    # Scale Rapid and Studio projects are Scale's own workforce products.
    rapid: NotOffered = False
    studio: NotOffered = False
    datasetId: str | None = None  # noqa: N815 - the SDK's spelling; Nucleus datasets, ignored

    @field_validator("rapid", "studio")
    @classmethod
    def _not_supported(cls, value: bool) -> bool:
        if value:
            raise ValueError("Scale Rapid and Studio projects are not supported")
        return value


class SetProjectParamsRequest(ProjectParams):
    """`POST /scale/v1/projects/{project_name}/setParams`: the project's new params, a new
    version of them. `patch: true` keeps the params this leaves out; otherwise they
    replace the last version."""

    patch: StrictBool = False

    def defaults(self) -> dict[str, Any]:
        params = super().defaults()
        params.pop("patch", None)
        return params


class ProjectVersion(BaseModel):
    """One version of a project's params: the params, their `version` (0 when the project
    was created) and when they were set."""

    model_config = ConfigDict(frozen=True, extra="allow")

    version: int
    created_at: Timestamp


class Project(BaseModel):
    """A project as the SDK reads it: its params are the last of `param_history`."""

    model_config = ConfigDict(frozen=True)

    type: TaskType = "categorization"
    name: str
    param_history: list[ProjectVersion]
    created_at: Timestamp


class ProjectList(BaseModel):
    projects: list[Project]


# -- batches -------------------------------------------------------------------------------


def _callback_or_empty(value: str) -> str:
    """Scale's batch `callback` is a URL to POST to, or an email address (not sent here)."""
    if value:
        problem = http_url_problem(value)
        if problem is not None:
            raise ValueError(problem)
    return value


class CreateBatchRequest(BaseModel):
    """`POST /scale/v1/batches`: what the SDK's `create_batch` sends."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    project: Name
    name: Name
    callback: Annotated[StrictStr, Field(max_length=2048), AfterValidator(_callback_or_empty)] = ""
    calibration_batch: NotOffered = False
    self_label_batch: NotOffered = False
    metadata: Metadata | None = None

    @field_validator("calibration_batch", "self_label_batch")
    @classmethod
    def _not_supported(cls, value: bool) -> bool:
        if value:
            raise ValueError("calibration and self-label batches are not supported")
        return value


class BatchCounts(BaseModel):
    """How many of a batch's tasks are in each status."""

    model_config = ConfigDict(frozen=True)

    pending: int = 0
    completed: int = 0
    canceled: int = 0


class Batch(BaseModel):
    """A batch as the SDK reads it."""

    model_config = ConfigDict(frozen=True)

    name: str
    project: str
    status: BatchStatus
    callback: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: Timestamp
    finalized_at: Timestamp | None = None
    completed_at: Timestamp | None = None


class BatchStatusView(BatchCounts):
    """`GET /scale/v1/batches/{batch_name}/status`."""

    status: BatchStatus


class BatchListQuery(BaseModel):
    """`GET /scale/v1/batches` query parameters, newest first."""

    model_config = ConfigDict(frozen=True)

    project: Name | None = None
    status: BatchStatus | None = None
    start_time: QueryTime | None = None
    end_time: QueryTime | None = None
    limit: int = Field(default=MAX_LIST_LIMIT, ge=1, le=MAX_LIST_LIMIT)
    offset: int = Field(default=0, ge=0, le=MAX_LIST_OFFSET)
    # Archiving is Scale's; nothing is archived here.
    exclude_archived: bool | None = None


class BatchPage(BaseModel):
    """One page of `GET /scale/v1/batches`, as the SDK's `batches()` reads it."""

    docs: list[Batch]
    totalDocs: int  # noqa: N815 - the SDK's spelling
    limit: int
    offset: int
    has_more: bool


class BatchCallback(BaseModel):
    """What a completed batch's `callback` URL receives, as JSON."""

    batch: Batch
    counts: BatchCounts
