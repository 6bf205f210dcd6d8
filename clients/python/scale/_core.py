"""What the sync and the async client share: configuration, requests, answers, retries.

Neither does I/O here; `Client` and `AsyncClient` only add sending and sleeping.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote, urlsplit

import httpx
from pydantic import TypeAdapter

from .errors import error_for
from .models import CallbackAttempt, Task

__version__ = "0.1.0"

T = TypeVar("T")

DEFAULT_BASE_URL = "http://localhost:8080"
BASE_URL_VARIABLE = "SCALE_API_URL"
_NEXT_LINK = re.compile(r'<([^>]*)>\s*;\s*rel="?next"?')

_TASKS = TypeAdapter(list[Task])
_CALLBACKS = TypeAdapter(list[CallbackAttempt])


def api_root(base_url: str | None) -> str:
    """`.../v1/` of the server: `base_url`, else `SCALE_API_URL`, else localhost:8080.

    The seed calls `https://api.scaleapi.com/v1/` the API endpoint; the server's own
    address works as well, so `/v1` is added when it is not there.
    """
    url = (base_url or os.environ.get(BASE_URL_VARIABLE) or DEFAULT_BASE_URL).rstrip("/")
    if urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"base_url must be an http or https URL, not {url!r}")
    if not url.endswith("/v1"):
        url += "/v1"
    return url + "/"


@dataclass(frozen=True)
class RetryPolicy:
    """503s (and refused connections) are retried `max_retries` times.

    The wait before retry n (0-based) is the server's `Retry-After` when it gives one,
    else `backoff * 2**n` with jitter; never more than `max_backoff` seconds. A 503
    from humantask means the request was not carried out, so retrying a create is safe.
    """

    max_retries: int = 2
    backoff: float = 0.5
    max_backoff: float = 8.0

    def delay(self, retry: int, response: httpx.Response | None) -> float:
        wait = self.backoff * 2.0**retry * random.uniform(0.5, 1.0)
        if response is not None:
            with contextlib.suppress(ValueError):  # no or a malformed Retry-After
                wait = float(response.headers.get("Retry-After", ""))
        return max(0.0, min(wait, self.max_backoff))


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API request, and how to read its answer."""

    method: str
    path: str
    parse: Callable[[Any], T]
    params: Mapping[str, str] | None = None
    json: Any = None
    content: bytes | str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


def client_options(api_key: str, base_url: str | None, timeout: float) -> dict[str, Any]:
    """Keyword arguments for `httpx.Client` / `httpx.AsyncClient`."""
    if not api_key:
        raise ValueError("an API key is required")
    return {
        "base_url": api_root(base_url),
        "auth": httpx.BasicAuth(api_key, ""),
        "timeout": timeout,
        "headers": {
            "User-Agent": f"humantask-scale-python/{__version__}",
            "Accept": "application/json",
        },
    }


def request_args(call: Call[Any]) -> dict[str, Any]:
    args: dict[str, Any] = {"params": call.params, "headers": dict(call.headers)}
    if call.json is not None:
        args["json"] = call.json
    elif call.content is not None:
        args["content"] = call.content
    return args


def read_body(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text


def result(response: httpx.Response, call: Call[T]) -> T:
    """The parsed result of a 2xx answer; the matching `ScaleError` otherwise."""
    body = read_body(response)
    if response.is_success:
        return call.parse(body)
    raise error_for(response.status_code, body, response.reason_phrase or "HTTP error")


def next_page_params(response: httpx.Response) -> dict[str, str] | None:
    """The query of the `Link: <...>; rel="next"` page, or None on the last page.

    Only the query is taken: the next page is asked of the same host, with the same key,
    whatever host name the server saw behind a proxy.
    """
    match = _NEXT_LINK.search(response.headers.get("Link", ""))
    if match is None:
        return None
    return dict(httpx.URL(match.group(1)).params)


def _task_path(task_id: str, suffix: str = "") -> str:
    if not isinstance(task_id, str) or not task_id:
        raise ValueError("task_id must be a non-empty string")
    return f"task/{quote(task_id, safe='')}{suffix}"


def _timestamp(value: datetime | str) -> str:
    if isinstance(value, str):
        return value
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="milliseconds") + "Z"


def _drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


# -- the calls of `api.tasks` -------------------------------------------------------


def create_call(
    *,
    callback_url: str,
    instruction: str,
    attachment_type: str,
    attachment: str,
    categories: list[str],
    metadata: dict[str, Any] | None = None,
    unique_id: str | None = None,
    callback_format: str | None = None,
) -> Call[Task]:
    body = _drop_none(
        {
            "callback_url": callback_url,
            "instruction": instruction,
            "attachment_type": attachment_type,
            "attachment": attachment,
            "categories": list(categories),
            "metadata": metadata,
            "unique_id": unique_id,
            "callback_format": callback_format,
        }
    )
    return Call("POST", "task/categorize", Task.model_validate, json=body)


def get_call(task_id: str) -> Call[Task]:
    return Call("GET", _task_path(task_id), Task.model_validate)


def cancel_call(task_id: str) -> Call[Task]:
    return Call("POST", _task_path(task_id, "/cancel"), Task.model_validate)


def callbacks_call(task_id: str) -> Call[list[CallbackAttempt]]:
    return Call("GET", _task_path(task_id, "/callbacks"), _CALLBACKS.validate_python)


def list_call(
    *,
    status: str | None = None,
    type: str | None = None,  # noqa: A002 - the API's name
    unique_id: str | None = None,
    start_time: datetime | str | None = None,
    end_time: datetime | str | None = None,
    limit: int | None = None,
    offset: int | None = None,
) -> Call[list[Task]]:
    params = _drop_none(
        {
            "status": status,
            "type": type,
            "unique_id": unique_id,
            "start_time": None if start_time is None else _timestamp(start_time),
            "end_time": None if end_time is None else _timestamp(end_time),
            "limit": None if limit is None else str(limit),
            "offset": None if offset is None else str(offset),
        }
    )
    return Call("GET", "tasks", _TASKS.validate_python, params=params)


def with_params(call: Call[T], params: Mapping[str, str]) -> Call[T]:
    return Call(call.method, call.path, call.parse, params=params)


def raw_call(
    method: str,
    path: str,
    *,
    json: Any = None,
    content: bytes | str | None = None,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Call[Any]:
    """Any request under `/v1/` (`path` relative to it); the answer's JSON as it is."""
    return Call(
        method.upper(),
        path.lstrip("/"),
        lambda body: body,
        params=params,
        json=json,
        content=content,
        headers=headers or {},
    )
