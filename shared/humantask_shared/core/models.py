"""The task object and the HTTP bodies of the customer API: defined once, used everywhere.

The task object has exactly the fields of docs/reference/contract.md §4; optional extras are
left out of the JSON when they do not apply.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import os
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, cast
from urllib.parse import urlsplit

import idna
import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.functional_validators import ModelWrapValidatorHandler
from pydantic_core import InitErrorDetails
from yarl import URL

from .timeutil import format_timestamp

TASK_ID_PATTERN = re.compile(r"^[0-9a-f]{24}$")


# What makes a task id unique besides its second, as MongoDB's ObjectId does it: five
# random bytes per process (drawn again in a forked child) and a counter.
_process_bytes = os.urandom(5)
_counter = itertools.count(int.from_bytes(os.urandom(3), "big"))


def _new_process() -> None:
    global _process_bytes
    _process_bytes = os.urandom(5)


os.register_at_fork(after_in_child=_new_process)


def new_task_id() -> str:
    """A new task id, laid out as a MongoDB ObjectId (the task-store stores it as one):
    24 lowercase hex characters, the creation second first, so ids are time-ordered."""
    seconds = int(time.time()) & 0xFFFFFFFF
    count = next(_counter) & 0xFFFFFF
    return (seconds.to_bytes(4, "big") + _process_bytes + count.to_bytes(3, "big")).hex()


MAX_METADATA_BYTES = 16 * 1024
# Well below the 255 levels orjson can write, so a task holding it can still be
# sent inside replies, pages and events (each adds a few levels around it).
MAX_METADATA_DEPTH = 64
MAX_UNIQUE_ID_LENGTH = 256
MAX_URL_LENGTH = 2048
MAX_INSTRUCTION_LENGTH = 10_000
MAX_TEXT_ATTACHMENT_LENGTH = 10_000
MIN_CATEGORIES, MAX_CATEGORIES = 2, 100
MAX_CATEGORY_LENGTH = 256
MAX_LIST_LIMIT = 100
MAX_LIST_OFFSET = 10_000
# A list cursor never looks further than this in one span (just over the 1970-9999 range).
MAX_LIST_SPAN_SECONDS = 10_000 * 366 * 24 * 3600
# start_time/end_time must fall in these years once converted to UTC.
MIN_QUERY_YEAR, MAX_QUERY_YEAR = 1970, 9999
# Several workers per task (docs/reference/contract.md §10).
MIN_WORKERS_LIMIT, MAX_WORKERS_LIMIT = 1, 10
MIN_CONFIDENCE, MAX_CONFIDENCE = 0.5, 0.99
DEFAULT_CONFIDENCE = 0.9
# The create parameters of docs/reference/contract.md §10, which the task shows when given.
QUALITY_FIELDS = ("min_workers", "max_workers", "confidence", "gold_category")

AttachmentType = Literal["text", "image", "video", "audio", "website"]
TaskStatus = Literal["pending", "completed", "canceled"]
TaskType = Literal["categorization"]
CallbackFormat = Literal["form", "json"]

Timestamp = Annotated[
    datetime,
    PlainSerializer(format_timestamp, return_type=str, when_used="json"),
    Field(json_schema_extra={"example": "2016-06-23T09:09:34.752Z"}),
]


def http_url_problem(value: str) -> str | None:
    """What is wrong with `value` as an absolute http(s) URL, or None when nothing is.

    At most MAX_URL_LENGTH characters, and a host that is ASCII or a valid IDNA name
    (IDNA 2008 with UTS 46 mapping, so `bücher.example` and fullwidth forms pass and
    `☃.example` does not), which yarl, the notifier's URL parser, also accepts: a URL
    the notifier could never send to is refused when the task is created."""
    if len(value) > MAX_URL_LENGTH:
        return f"must be at most {MAX_URL_LENGTH} characters"
    not_a_url = "must be an absolute http or https URL"
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        return not_a_url
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError:
        return not_a_url
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        return not_a_url
    if not host.isascii():
        try:
            idna.encode(host, uts46=True)
        except (idna.IDNAError, UnicodeError, ValueError):
            return f"{not_a_url} with an ASCII or valid IDNA host"
    try:
        if not URL(value).raw_host:
            return not_a_url
    except (ValueError, TypeError, UnicodeError):
        return f"{not_a_url} with an ASCII or valid IDNA host"
    return None


def is_http_url(value: str) -> bool:
    """An absolute http(s) URL with a host, as a customer would paste it."""
    return http_url_problem(value) is None


def _http_url(value: str) -> str:
    problem = http_url_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def json_depth(value: Any) -> int:
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


def _utc_in_range(moment: datetime) -> datetime:
    """The moment in UTC (a naive one is UTC), refused outside years 1970 to 9999."""
    out_of_range = f"must be between years {MIN_QUERY_YEAR} and {MAX_QUERY_YEAR} in UTC"
    try:
        utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (OverflowError, ValueError) as exc:  # 9999-12-31T23:00-05:00 is past year 9999
        raise ValueError(out_of_range) from exc
    if not MIN_QUERY_YEAR <= utc.year <= MAX_QUERY_YEAR:
        raise ValueError(out_of_range)
    return utc


# What the validators refuse, said in the JSON Schema too (the contract; its fuzz): a
# non-blank string holds a non-space character, an http(s) URL starts with its scheme.
_NOT_BLANK_SCHEMA = Field(json_schema_extra={"minLength": 1, "pattern": r"\S"})
_HTTP_URL_SCHEMA = Field(
    json_schema_extra={"format": "uri", "pattern": r"^[Hh][Tt][Tt][Pp][Ss]?://"}
)
HttpUrlString = Annotated[
    StrictStr, Field(max_length=MAX_URL_LENGTH), _HTTP_URL_SCHEMA, AfterValidator(_http_url)
]
NonEmptyString = Annotated[StrictStr, _NOT_BLANK_SCHEMA, AfterValidator(_not_blank)]
InstructionString = Annotated[
    StrictStr,
    Field(max_length=MAX_INSTRUCTION_LENGTH),
    _NOT_BLANK_SCHEMA,
    AfterValidator(_not_blank),
]
AttachmentString = Annotated[
    StrictStr,
    Field(max_length=MAX_TEXT_ATTACHMENT_LENGTH),
    _NOT_BLANK_SCHEMA,
    AfterValidator(_not_blank),
]
CategoryString = Annotated[
    StrictStr, Field(max_length=MAX_CATEGORY_LENGTH), _NOT_BLANK_SCHEMA, AfterValidator(_not_blank)
]
_ISO_DATE_START = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _iso_8601(value: Any) -> Any:
    """Query times are ISO 8601 (docs/reference/contract.md §5); pydantic alone would take
    unix seconds too."""
    if isinstance(value, str) and not _ISO_DATE_START.match(value):
        raise ValueError("must be an ISO 8601 date and time")
    return value


QueryTime = Annotated[datetime, BeforeValidator(_iso_8601), AfterValidator(_utc_in_range)]


class TaskParams(BaseModel):
    model_config = ConfigDict(frozen=True)

    attachment_type: AttachmentType
    attachment: str
    categories: list[str]


class TaskResponse(BaseModel):
    """A completed task's answer. With several workers (`max_workers` > 1) it also says how
    sure the answer is (`confidence`, calibrated) and how the counted answers split
    (`votes`); a single-worker task's is `{"category", "status_code"}` only."""

    model_config = ConfigDict(frozen=True)

    category: str
    status_code: int = 200
    confidence: float | None = None
    votes: dict[str, int] | None = None


class Task(BaseModel):
    """The customer's view of a task: Scale's v1 task object."""

    model_config = ConfigDict(frozen=True)

    task_id: str
    created_at: Timestamp
    completed_at: Timestamp | None = None
    # Absent only on a gold task created without one (it is never called back).
    callback_url: str | None = None
    type: TaskType = "categorization"
    status: TaskStatus
    instruction: str
    params: TaskParams
    response: TaskResponse | None = None
    metadata: dict[str, Any] | None = None
    unique_id: str | None = None
    canceled_at: Timestamp | None = None
    # docs/reference/contract.md §10, each shown only when the customer set it.
    min_workers: int | None = None
    max_workers: int | None = None
    confidence: float | None = None
    gold_category: str | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


# docs/reference/contract.md §10's settings, as a create (and a `/scale/v1` project's params)
# takes them. Strict: a JSON body says numbers as numbers (a form's text is converted by
# the gateway first).
WorkerCount = Annotated[StrictInt, Field(ge=MIN_WORKERS_LIMIT, le=MAX_WORKERS_LIMIT)]
Confidence = Annotated[StrictFloat, Field(ge=MIN_CONFIDENCE, le=MAX_CONFIDENCE)]


def workers_problem(min_workers: int | None, max_workers: int | None) -> str | None:
    """What is wrong with these §10 settings together, if anything (`max_workers` below
    `min_workers`, 1 when not given)."""
    low = min_workers or MIN_WORKERS_LIMIT
    if max_workers is not None and max_workers < low:
        return f"max_workers: must be at least min_workers ({low})"
    return None


class CreateTaskRequest(BaseModel):
    """`POST /v1/task/categorize`: what a customer may send."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    # Required, except on a gold task (never called back): see `_callback_unless_gold`.
    callback_url: HttpUrlString | None = None
    instruction: InstructionString
    attachment_type: AttachmentType
    # At most MAX_TEXT_ATTACHMENT_LENGTH for text, a URL of at most MAX_URL_LENGTH otherwise.
    attachment: AttachmentString
    categories: list[CategoryString] = Field(
        min_length=MIN_CATEGORIES,
        max_length=MAX_CATEGORIES,
        json_schema_extra={"uniqueItems": True},
    )
    metadata: dict[str, Any] | None = None
    unique_id: Annotated[NonEmptyString, Field(max_length=MAX_UNIQUE_ID_LENGTH)] | None = None
    callback_format: CallbackFormat = "form"
    # Several workers per task, and gold (docs/reference/contract.md §10).
    min_workers: WorkerCount | None = None
    max_workers: WorkerCount | None = None
    confidence: Confidence | None = None
    gold_category: CategoryString | None = None

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
        if json_depth(metadata) > MAX_METADATA_DEPTH:
            raise ValueError(too_deep)
        return metadata

    @model_validator(mode="after")
    def _attachment_matches_type(self) -> CreateTaskRequest:
        if self.attachment_type != "text":
            problem = http_url_problem(self.attachment)
            if problem is not None:
                # Raised without a field location; the message names the field itself.
                raise ValueError(
                    f"attachment: {problem} when attachment_type is {self.attachment_type}"
                )
        return self

    @model_validator(mode="wrap")
    @classmethod
    def _callback_unless_gold(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        """`callback_url` is required (first, as it comes first) unless the task is gold:
        a gold task is never called back."""
        if not isinstance(data, dict) or data.get("gold_category") is not None:
            return handler(data)
        if data.get("callback_url") is not None:
            return handler(data)
        problem: InitErrorDetails = (
            {"type": "missing", "loc": ("callback_url",), "input": data}
            if "callback_url" not in data
            else {"type": "string_type", "loc": ("callback_url",), "input": None}
        )
        others: list[InitErrorDetails] = []
        try:
            handler(data)
        except ValidationError as exc:
            others = [cast(InitErrorDetails, error) for error in exc.errors()]
        raise ValidationError.from_exception_data(cls.__name__, [problem, *others])

    @model_validator(mode="after")
    def _workers_and_gold_fit(self) -> CreateTaskRequest:
        problem = workers_problem(self.min_workers, self.max_workers)
        if problem is not None:
            raise ValueError(problem)
        if self.gold_category is not None and self.gold_category not in self.categories:
            raise ValueError("gold_category: must be one of the task's categories")
        return self

    def quality_settings(self) -> dict[str, Any]:
        """The §10 parameters the customer set (what the task shows back)."""
        return {
            name: value for name in QUALITY_FIELDS if (value := getattr(self, name)) is not None
        }


class ListCursor(BaseModel):
    """Where the next page of `GET /v1/tasks` starts: right after the task
    (`created_at`, `task_id`) that ended the page before, newest first. `span_seconds` is
    the span of creation times that filled that page, where the next one looks first.

    On the wire it is the `next_token`: `<payload>.<signature>`, the payload URL-safe
    base64 of a short JSON array, the signature the task-store's (an HMAC over the payload,
    the customer and the query's filters: a token it did not give out is refused)."""

    model_config = ConfigDict(frozen=True)

    created_at: datetime
    task_id: Annotated[str, Field(pattern=TASK_ID_PATTERN.pattern)]
    span_seconds: Annotated[float, Field(gt=0, le=MAX_LIST_SPAN_SECONDS)]

    def payload(self) -> str:
        fields = [round(self.created_at.timestamp() * 1000), self.task_id, self.span_seconds]
        return base64.urlsafe_b64encode(orjson.dumps(fields)).decode().rstrip("=")

    @classmethod
    def from_payload(cls, payload: str) -> ListCursor:
        try:
            raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
            millis, task_id, span = orjson.loads(raw)
            created_at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=millis)
            return cls(created_at=created_at, task_id=task_id, span_seconds=span)
        except (
            binascii.Error,
            orjson.JSONDecodeError,
            ValueError,
            TypeError,
            OverflowError,
        ) as exc:
            raise ValueError(NOT_OUR_TOKEN) from exc


NOT_OUR_TOKEN = "is not a next_token this API gave out"
# A payload of at most ~80 characters, a dot, and 22 characters of signature (16 bytes).
MAX_NEXT_TOKEN_LENGTH = 200
NEXT_TOKEN_SIGNATURE_LENGTH = 22
TOKEN_SIGNATURE = re.compile(rf"^[A-Za-z0-9_-]{{{NEXT_TOKEN_SIGNATURE_LENGTH}}}$")


def split_next_token(token: str) -> tuple[ListCursor, str]:
    """The cursor a `next_token` carries and its signature, unchecked (the task-store
    checks the signature); ValueError when the token is not shaped like one."""
    payload, dot, signature = token.rpartition(".")
    if not dot or not TOKEN_SIGNATURE.match(signature):
        raise ValueError(NOT_OUR_TOKEN)
    return ListCursor.from_payload(payload), signature


def _shaped_like_a_token(value: str) -> str:
    split_next_token(value)
    return value


NextToken = Annotated[
    StrictStr,
    Field(
        max_length=MAX_NEXT_TOKEN_LENGTH,
        json_schema_extra={"description": "opaque cursor from the Link header"},
    ),
    AfterValidator(_shaped_like_a_token),
]


class TaskListQuery(BaseModel):
    """`GET /v1/tasks` query parameters."""

    model_config = ConfigDict(frozen=True)

    status: TaskStatus | None = None
    type: TaskType | None = None
    unique_id: Annotated[str, Field(max_length=MAX_UNIQUE_ID_LENGTH)] | None = None
    limit: int = Field(default=MAX_LIST_LIMIT, ge=1, le=MAX_LIST_LIMIT)
    offset: int = Field(default=0, ge=0, le=MAX_LIST_OFFSET)
    # ISO 8601; without an offset it is UTC. Kept in UTC, years 1970 to 9999.
    start_time: QueryTime | None = None
    end_time: QueryTime | None = None
    next_token: NextToken | None = None

    @model_validator(mode="after")
    def _one_way_to_page(self) -> TaskListQuery:
        if self.next_token is not None and self.offset:
            raise ValueError("offset: use either offset or next_token, not both")
        return self


class TaskPage(BaseModel):
    """One page of `GET /v1/tasks`: the tasks, and where the next page starts when more
    follow."""

    tasks: list[Task]
    # Signed by the task-store, handed on as it is by the gateway (the `Link` header).
    next_token: str | None = None


def _without_default(schema: dict[str, Any]) -> None:
    """A field documented as absent rather than null: no `default: null` in its schema."""
    schema.pop("default", None)


class CallbackAttempt(BaseModel):
    """One entry of `GET /v1/task/{task_id}/callbacks`: an attempt to deliver the callback.

    `at` is when the attempt started; `status_code` is the receiver's answer (null when
    none came: timeout, refused connection, DNS failure, a refused address); `error`
    says what went wrong (null when the receiver answered 200). `attempt` counts within
    one delivery; `delivery` says which delivery an attempt belongs to (2, 3...: a later
    completion's callback or a redelivery) and is absent from the first delivery's
    attempts, so the log of a task called back once is what it always was
    (docs/reference/contract.md §5)."""

    model_config = ConfigDict(frozen=True)

    attempt: Literal[1, 2]
    at: Timestamp
    status_code: int | None = None
    error: str | None = None
    delivered: bool
    # Never null on the wire: absent instead (`exclude_if`), and so documented.
    delivery: Annotated[
        int | None,
        WithJsonSchema(
            {
                "type": "integer",
                "minimum": 2,
                "description": "Which delivery of the task's callback the attempt "
                "belongs to, when not the first: a later completion's (a task rejected "
                "in an audit and completed again) or a redelivery (`POST /v1/task/"
                "{task_id}/callbacks/redeliver`), numbered 2, 3... in the order they "
                "started. Absent for the first delivery's attempts.",
            }
        ),
    ] = Field(
        default=None,
        ge=2,
        exclude_if=lambda delivery: delivery is None,
        json_schema_extra=_without_default,
    )


class ErrorBody(BaseModel):
    """Every error the API returns."""

    status_code: int
    error: str
