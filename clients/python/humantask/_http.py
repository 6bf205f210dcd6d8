"""What the sync and the async client share: configuration, requests, answers, retries.

Nothing here does I/O: `Client` and `AsyncClient` only add sending and sleeping, and ask
`RetryPolicy.retry_delay` after each attempt whether and when to try again. A resource
(`api.tasks`, ...) describes each of its requests as a `Call`; this module turns the
answer into its result or into the matching exception.
"""

from __future__ import annotations

import math
import os
import random
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import httpx

from ._version import __version__
from .errors import APIConnectionError, APIError, APITimeoutError, HumantaskError, error_for

T = TypeVar("T")

DEFAULT_BASE_URL = "http://localhost:8080"
BASE_URL_VARIABLE = "HUMANTASK_URL"
API_KEY_VARIABLE = "HUMANTASK_API_KEY"
# Read when HUMANTASK_URL is not set; deprecated, to be removed.
DEPRECATED_BASE_URL_VARIABLE = "SCALE_API_URL"
REQUEST_ID_HEADER = "X-Request-Id"

# Answers that say "not now": the request was not carried out, or a proxy does not know.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
# Methods the HTTP spec makes idempotent: repeating them changes nothing more.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

_NEXT_LINK = re.compile(r'<([^>]*)>\s*;\s*rel="?next"?')


def api_root(base_url: str | None) -> str:
    """`.../v1/` of the server: `base_url`, else `HUMANTASK_URL` (else the deprecated
    `SCALE_API_URL`), else http://localhost:8080; `/v1` is added when it is not there."""
    url = base_url or os.environ.get(BASE_URL_VARIABLE)
    if not url and os.environ.get(DEPRECATED_BASE_URL_VARIABLE):
        warnings.warn(
            f"{DEPRECATED_BASE_URL_VARIABLE} is deprecated: set {BASE_URL_VARIABLE} instead",
            DeprecationWarning,
            stacklevel=4,
        )
        url = os.environ[DEPRECATED_BASE_URL_VARIABLE]
    url = (url or DEFAULT_BASE_URL).rstrip("/")
    if urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"base_url must be an http or https URL, not {url!r}")
    if not url.endswith("/v1"):
        url += "/v1"
    return url + "/"


def api_key_or_environment(api_key: str | None) -> str:
    key = api_key or os.environ.get(API_KEY_VARIABLE)
    if not key:
        raise ValueError(f"an API key is required: pass one, or set {API_KEY_VARIABLE}")
    return key


def client_options(api_key: str | None, base_url: str | None, timeout: float) -> dict[str, Any]:
    """Keyword arguments for `httpx.Client` / `httpx.AsyncClient`."""
    return {
        "base_url": api_root(base_url),
        "auth": httpx.BasicAuth(api_key_or_environment(api_key), ""),
        "timeout": timeout,
        "headers": {
            "User-Agent": f"humantask-python/{__version__}",
            "Accept": "application/json",
        },
    }


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API request, how to read its answer, and whether it may be sent again.

    `retryable`: repeating the request cannot do anything twice (a GET, a cancel, a
    create that carries a `unique_id`). Only such calls are retried. `scale`: the path
    is under `/scale/v1/` (Scale's current API: projects, batches, audits, tags) rather
    than `/v1/`.
    """

    method: str
    path: str
    parse: Callable[[Any], T]
    params: Mapping[str, str] | None = None
    json: Any = None
    content: bytes | str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    retryable: bool = False
    scale: bool = False

    def with_params(self, params: Mapping[str, str]) -> Call[T]:
        return Call(
            self.method,
            self.path,
            self.parse,
            params=params,
            retryable=self.retryable,
            scale=self.scale,
        )

    def url(self, api_root: httpx.URL) -> str:
        """Where to send it: relative to the client's `.../v1/`, or under `.../scale/v1/`."""
        if not self.scale:
            return self.path
        return str(api_root).removesuffix("v1/") + "scale/v1/" + self.path

    def request_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {"params": self.params, "headers": dict(self.headers)}
        if self.json is not None:
            args["json"] = self.json
        elif self.content is not None:
            args["content"] = self.content
        return args


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """A `Retry-After` header in seconds: delay-seconds, or an HTTP date (seconds from
    `now` until it, never negative); None when absent or unreadable."""
    if not value or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


@dataclass(frozen=True)
class RetryPolicy:
    """When a call is tried again, and after how long.

    A retryable call (see `Call.retryable`) that got a 429, 502, 503 or 504, no answer in
    time, or no connection, is tried again, at most `max_retries` times. The wait before
    retry n (0-based) is the server's `Retry-After` when it sent one, else a random time
    between 0 and `backoff * 2**n` ("full jitter", so that many clients that failed
    together do not come back together); never more than `max_backoff` seconds.
    """

    max_retries: int = 2
    backoff: float = 0.5
    max_backoff: float = 8.0

    def jitter(self, retry: int) -> float:
        return random.uniform(0.0, min(self.max_backoff, self.backoff * 2.0 ** min(retry, 64)))

    def delay(self, retry: int, response: httpx.Response | None) -> float:
        after = (
            None if response is None else retry_after_seconds(response.headers.get("Retry-After"))
        )
        wait = self.jitter(retry) if after is None else after
        return max(0.0, min(wait, self.max_backoff))

    def retry_delay(
        self, call: Call[Any], retry: int, response: httpx.Response | None
    ) -> float | None:
        """After attempt `retry` (0-based) of `call` got `response` (None: no answer, for a
        reason `connection_error` found retryable): the seconds to wait before the next
        attempt, or None when there is none to make."""
        if not call.retryable or retry >= self.max_retries:
            return None
        if response is not None and response.status_code not in RETRY_STATUSES:
            return None
        return self.delay(retry, response)


def connection_error(exc: httpx.TransportError) -> tuple[HumantaskError, bool]:
    """The exception for a request that got no answer, and whether trying again may help."""
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"no answer in time: {exc!r}"), True
    retryable = isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError)
    return APIConnectionError(f"could not reach the server: {exc!r}"), retryable


def read_body(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text


def request_id(response: httpx.Response) -> str | None:
    return response.headers.get(REQUEST_ID_HEADER) or None


def api_error(response: httpx.Response) -> APIError:
    return error_for(
        response.status_code,
        read_body(response),
        response.reason_phrase or "HTTP error",
        request_id=request_id(response),
        retry_after=retry_after_seconds(response.headers.get("Retry-After")),
    )


def result(response: httpx.Response, call: Call[T]) -> T:
    """The parsed result of a 2xx answer; the matching `APIError` otherwise."""
    if not response.is_success:
        raise api_error(response)
    return call.parse(read_body(response))


def next_page_params(response: httpx.Response) -> dict[str, str] | None:
    """The query of the `Link: <...>; rel="next"` page, or None on the last page.

    Only the query is taken: the next page is asked of the same host, with the same key,
    whatever host name the server saw behind a proxy.
    """
    match = _NEXT_LINK.search(response.headers.get("Link", ""))
    if match is None:
        return None
    return dict(httpx.URL(match.group(1)).params)


def answered(response: httpx.Response) -> Any:
    """The JSON of a 2xx answer; the matching `APIError` otherwise."""
    if not response.is_success:
        raise api_error(response)
    return read_body(response)


def drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def raw_call(
    method: str,
    path: str,
    *,
    json: Any = None,
    content: bytes | str | None = None,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    idempotent: bool | None = None,
) -> Call[Any]:
    """Any request under `/v1/` (`path` relative to it); the answer's JSON as it is.

    Retried when `idempotent`, which defaults to whether the method is (GET, PUT, ...).
    """
    method = method.upper()
    return Call(
        method,
        path.lstrip("/"),
        lambda body: body,
        params=params,
        json=json,
        content=content,
        headers=headers or {},
        retryable=method in IDEMPOTENT_METHODS if idempotent is None else idempotent,
    )
