"""Domain errors every service speaks, and the one table that maps them to HTTP.

Services raise these; the task-store sends their `code` back over RabbitMQ; the gateway
turns a code into a status with `HTTP_STATUS` and nothing else.
"""

from __future__ import annotations

from typing import ClassVar


class HumantaskError(Exception):
    code: ClassVar[str] = "internal"
    # Sent as `Retry-After` (seconds) with the error's HTTP answer, when set.
    retry_after_seconds: ClassVar[int | None] = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(HumantaskError):
    code = "invalid"


class Unauthorized(HumantaskError):
    code = "unauthorized"


class NotFound(HumantaskError):
    code = "not_found"


class Conflict(HumantaskError):
    code = "conflict"


class UnsupportedMediaType(HumantaskError):
    code = "unsupported_media_type"


class RequestTimeout(HumantaskError):
    """The request's body did not arrive in time (the gateway's REQUEST_BODY_TIMEOUT_SECONDS)."""

    code = "request_timeout"


class QuotaExceeded(HumantaskError):
    """A customer has as many pending tasks as its quota allows: a `429` with
    `Retry-After`, since the quota frees up as workers finish its tasks."""

    code = "quota_exceeded"
    retry_after_seconds = 30


class StorageQuotaExceeded(HumantaskError):
    """A customer's tasks take as many bytes as its quota allows: a `403`, since waiting
    does not help (only retention, or the operator, frees bytes)."""

    code = "storage_quota_exceeded"


class Unavailable(HumantaskError):
    """The broker, a service or the database did not answer in time."""

    code = "unavailable"


ERRORS_BY_CODE: dict[str, type[HumantaskError]] = {
    cls.code: cls
    for cls in (
        InvalidRequest,
        Unauthorized,
        NotFound,
        Conflict,
        UnsupportedMediaType,
        RequestTimeout,
        QuotaExceeded,
        StorageQuotaExceeded,
        Unavailable,
    )
}

HTTP_STATUS: dict[str, int] = {
    InvalidRequest.code: 400,
    Unauthorized.code: 401,
    NotFound.code: 404,
    Conflict.code: 409,
    UnsupportedMediaType.code: 415,
    RequestTimeout.code: 408,
    QuotaExceeded.code: 429,
    StorageQuotaExceeded.code: 403,
    Unavailable.code: 503,
    HumantaskError.code: 500,
}


def error_from_code(code: str, message: str) -> HumantaskError:
    cls = ERRORS_BY_CODE.get(code, HumantaskError)
    return cls(message)
