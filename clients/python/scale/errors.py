"""One exception per class of error the API answers, all under `ScaleError`.

Every error body of the server is `{"status_code": int, "error": str}`; the exception
carries both (`status_code`, `message`) and the parsed body.
"""

from __future__ import annotations

from typing import Any


class ScaleError(Exception):
    """Anything the API or the connection to it went wrong with."""

    def __init__(self, message: str, status_code: int | None = None, body: Any = None) -> None:
        super().__init__(message if status_code is None else f"{status_code}: {message}")
        self.message = message
        self.status_code = status_code
        self.body = body


class APIConnectionError(ScaleError):
    """The server could not be reached (after the retries)."""


class APITimeoutError(APIConnectionError):
    """The server did not answer within the client's timeout."""


class APIError(ScaleError):
    """An error status that has no class of its own (for example a 500)."""


class BadRequest(APIError):
    """400: a parameter is missing or wrong; the message names it."""


class Unauthorized(APIError):
    """401: missing or unknown API key."""


class NotFound(APIError):
    """404: no such task (or it is another customer's), or no such endpoint."""


class MethodNotAllowed(APIError):
    """405: the endpoint does not take this HTTP method."""


class Conflict(APIError):
    """409: the task's state does not allow it (or a `unique_id` clash)."""


class PayloadTooLarge(APIError):
    """413: the request body is over 1 MiB."""


class UnsupportedMediaType(APIError):
    """415: the body is neither JSON nor a form."""


class ServiceUnavailable(APIError):
    """503: the server is overloaded or a service did not answer in time (after the retries)."""


ERRORS_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequest,
    401: Unauthorized,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    503: ServiceUnavailable,
}


def error_for(status_code: int, body: Any, fallback_message: str) -> APIError:
    """The exception for an error response: its class by status, its message from the body."""
    message = body.get("error") if isinstance(body, dict) else None
    if not isinstance(message, str) or not message:
        message = fallback_message
    return ERRORS_BY_STATUS.get(status_code, APIError)(message, status_code, body)
