"""One exception per kind of failure, all under `HumantaskError`.

Every error body of the server is `{"status_code": int, "error": str}`. An `APIError`
carries the status (`status_code`), the server's message (`message`), the id the server
gave the request (`request_id`, from its `X-Request-Id` header: quote it when asking an
operator), the server's `Retry-After` in seconds when it sent one (`retry_after`) and the
parsed body (`body`).
"""

from __future__ import annotations

from typing import Any


class HumantaskError(Exception):
    """Anything the API, or the connection to it, went wrong with."""

    def __init__(
        self,
        message: str,
        status_code: int | None = None,
        body: Any = None,
        *,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        text = message if status_code is None else f"{status_code}: {message}"
        if request_id:
            text += f" (request id {request_id})"
        super().__init__(text)
        self.message = message
        self.status_code = status_code
        self.body = body
        self.request_id = request_id
        self.retry_after = retry_after


class APIConnectionError(HumantaskError):
    """No answer from the server: it could not be reached, or the connection broke
    (after the retries, when the call may be retried)."""


class APITimeoutError(APIConnectionError):
    """The server did not answer within the client's `timeout` (after the retries)."""


class APIError(HumantaskError):
    """An error status; this class itself for a status with no class of its own."""


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


class RateLimited(APIError):
    """429: more requests a second with this key than the server allows (after the
    retries, when the call may be retried); `retry_after` says when to come back."""


class ServerError(APIError):
    """5xx: the server, or a proxy in front of it, failed (after the retries for 502,
    503 and 504, when the call may be retried)."""


class ServiceUnavailable(ServerError):
    """503: the server is overloaded, or a service behind it did not answer in time."""


ERRORS_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequest,
    401: Unauthorized,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    429: RateLimited,
    503: ServiceUnavailable,
}


def error_class(status_code: int) -> type[APIError]:
    if status_code in ERRORS_BY_STATUS:
        return ERRORS_BY_STATUS[status_code]
    return ServerError if status_code >= 500 else APIError


def error_for(
    status_code: int,
    body: Any,
    fallback_message: str,
    *,
    request_id: str | None = None,
    retry_after: float | None = None,
) -> APIError:
    """The exception for an error response: its class by status, its message from the body."""
    message = body.get("error") if isinstance(body, dict) else None
    if not isinstance(message, str) or not message:
        message = fallback_message
    return error_class(status_code)(
        message, status_code, body, request_id=request_id, retry_after=retry_after
    )
