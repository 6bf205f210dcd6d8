"""`humantask.authorize(key)` and `humantask.authorize_async(key)`: the API as Python calls.

`Client` and `AsyncClient` each send requests in one place (`_send`: the retries) and
read answers in one (`_http.result`: the errors); a resource such as `api.tasks` only
describes its requests (`_tasks.py`) and names its methods here.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import datetime
from typing import Any, TypeVar

import httpx

from . import _http, _tasks
from ._http import Call, RetryPolicy
from .models import CallbackAttempt, Task
from .pagination import AsyncPage, Page, walk, walk_async

T = TypeVar("T")

log = logging.getLogger("humantask")

DEFAULT_TIMEOUT = 30.0


def _log_retry(call: Call[Any], retry: int, delay: float, why: str) -> None:
    log.info(
        "retrying %s %s in %.2fs (retry %d): %s", call.method, call.path, delay, retry + 1, why
    )


class Client:
    """A blocking client. `with humantask.authorize(key) as api: ...` closes its connections.

    `api_key` defaults to `HUMANTASK_API_KEY`, `base_url` to `HUMANTASK_URL` (then
    http://localhost:8080). `timeout` is per attempt, in seconds; see `RetryPolicy` for
    `max_retries`, `backoff` and `max_backoff`.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = 2,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            **_http.client_options(api_key, base_url, timeout), transport=transport
        )
        self.retry = RetryPolicy(max_retries, backoff, max_backoff)
        self.tasks = Tasks(self)

    @property
    def base_url(self) -> str:
        return str(self._http.base_url)

    def _send(self, call: Call[Any]) -> httpx.Response:
        """The answer to `call`, trying again while `self.retry` says to."""
        retry = 0
        while True:
            try:
                response = self._http.request(call.method, call.path, **call.request_args())
            except httpx.TransportError as exc:
                error, retryable = _http.connection_error(exc)
                delay = self.retry.retry_delay(call, retry, None) if retryable else None
                if delay is None:
                    raise error from exc
                _log_retry(call, retry, delay, error.message)
            else:
                delay = self.retry.retry_delay(call, retry, response)
                if delay is None:
                    return response
                _log_retry(call, retry, delay, f"{response.status_code}")
                response.close()
            time.sleep(delay)
            retry += 1

    def _call(self, call: Call[T]) -> T:
        return _http.result(self._send(call), call)

    def _page(self, call: Call[builtins.list[T]]) -> Page[T]:
        response = self._send(call)
        items = _http.result(response, call)
        return Page(
            items,
            _http.next_page_params(response),
            lambda params: self._page(call.with_params(params)),
        )

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Any request under `/v1/` (`path` relative to it): the JSON answer, or an APIError.

        Keyword arguments: `json`, `content`, `params`, `headers`, and `idempotent` (retry
        it; by default only GET, HEAD, OPTIONS, PUT and DELETE are).
        """
        return self._call(_http.raw_call(method, path, **kwargs))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncClient:
    """The asyncio client: every call is awaited, `list` is iterated with `async for`."""

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = 2,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            **_http.client_options(api_key, base_url, timeout), transport=transport
        )
        self.retry = RetryPolicy(max_retries, backoff, max_backoff)
        self.tasks = AsyncTasks(self)

    @property
    def base_url(self) -> str:
        return str(self._http.base_url)

    async def _send(self, call: Call[Any]) -> httpx.Response:
        retry = 0
        while True:
            try:
                response = await self._http.request(call.method, call.path, **call.request_args())
            except httpx.TransportError as exc:
                error, retryable = _http.connection_error(exc)
                delay = self.retry.retry_delay(call, retry, None) if retryable else None
                if delay is None:
                    raise error from exc
                _log_retry(call, retry, delay, error.message)
            else:
                delay = self.retry.retry_delay(call, retry, response)
                if delay is None:
                    return response
                _log_retry(call, retry, delay, f"{response.status_code}")
                await response.aclose()
            await asyncio.sleep(delay)
            retry += 1

    async def _call(self, call: Call[T]) -> T:
        return _http.result(await self._send(call), call)

    async def _page(self, call: Call[builtins.list[T]]) -> AsyncPage[T]:
        response = await self._send(call)
        items = _http.result(response, call)

        async def fetch(params: Mapping[str, str]) -> AsyncPage[T]:
            return await self._page(call.with_params(params))

        return AsyncPage(items, _http.next_page_params(response), fetch)

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Any request under `/v1/` (`path` relative to it): the JSON answer, or an APIError."""
        return await self._call(_http.raw_call(method, path, **kwargs))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class Tasks:
    """`api.tasks`: create, get, list, cancel, and a task's callback log."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def create_categorization(
        self,
        *,
        callback_url: str | None = None,
        instruction: str,
        attachment_type: str,
        attachment: str,
        categories: builtins.list[str],
        metadata: dict[str, Any] | None = None,
        unique_id: str | None = None,
        callback_format: str | None = None,
        **extra: Any,
    ) -> Task:
        """`POST /v1/task/categorize`: the new task, `status` `pending`.

        Retried after a failure only with a `unique_id` (the server then makes the task
        once, however often it is asked). `extra`: parameters of a newer server that
        this client has no name for, sent as they are.
        """
        return self._client._call(
            _tasks.create(
                callback_url=callback_url,
                instruction=instruction,
                attachment_type=attachment_type,
                attachment=attachment,
                categories=categories,
                metadata=metadata,
                unique_id=unique_id,
                callback_format=callback_format,
                extra=extra,
            )
        )

    createCategorization = create_categorization  # noqa: N815 - the Scale SDK's spelling

    def get(self, task_id: str) -> Task:
        return self._client._call(_tasks.get(task_id))

    def list(
        self,
        *,
        status: str | None = None,
        type: str | None = None,  # noqa: A002 - the API's name
        unique_id: str | None = None,
        start_time: datetime | str | None = None,
        end_time: datetime | str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> Iterator[Task]:
        """The caller's tasks, newest first, across pages (`limit` is the page size).

        Lazy: no request until the first task is asked for, and the next page only when
        this one's tasks are used up.
        """
        call = _tasks.list_(
            status=status,
            type=type,
            unique_id=unique_id,
            start_time=start_time,
            end_time=end_time,
            limit=limit,
            offset=offset,
        )
        return walk(lambda: self._client._page(call))

    def list_page(
        self,
        *,
        status: str | None = None,
        type: str | None = None,  # noqa: A002 - the API's name
        unique_id: str | None = None,
        start_time: datetime | str | None = None,
        end_time: datetime | str | None = None,
        limit: int | None = None,
        offset: int | None = None,
        next_token: str | None = None,
    ) -> Page[Task]:
        """One page of the caller's tasks (one request); `.next_page()` for the next."""
        return self._client._page(
            _tasks.list_(
                status=status,
                type=type,
                unique_id=unique_id,
                start_time=start_time,
                end_time=end_time,
                limit=limit,
                offset=offset,
                next_token=next_token,
            )
        )

    def cancel(self, task_id: str) -> Task:
        return self._client._call(_tasks.cancel(task_id))

    def callbacks(self, task_id: str) -> builtins.list[CallbackAttempt]:
        """The task's callback deliveries, oldest first; empty until it is completed."""
        return self._client._call(_tasks.callbacks(task_id))


class AsyncTasks:
    """`api.tasks` of the asyncio client: the same calls, awaited."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def create_categorization(
        self,
        *,
        callback_url: str | None = None,
        instruction: str,
        attachment_type: str,
        attachment: str,
        categories: builtins.list[str],
        metadata: dict[str, Any] | None = None,
        unique_id: str | None = None,
        callback_format: str | None = None,
        **extra: Any,
    ) -> Task:
        return await self._client._call(
            _tasks.create(
                callback_url=callback_url,
                instruction=instruction,
                attachment_type=attachment_type,
                attachment=attachment,
                categories=categories,
                metadata=metadata,
                unique_id=unique_id,
                callback_format=callback_format,
                extra=extra,
            )
        )

    createCategorization = create_categorization  # noqa: N815 - the Scale SDK's spelling

    async def get(self, task_id: str) -> Task:
        return await self._client._call(_tasks.get(task_id))

    def list(
        self,
        *,
        status: str | None = None,
        type: str | None = None,  # noqa: A002 - the API's name
        unique_id: str | None = None,
        start_time: datetime | str | None = None,
        end_time: datetime | str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> AsyncIterator[Task]:
        """`async for task in api.tasks.list(...)`: newest first, a page at a time."""
        call = _tasks.list_(
            status=status,
            type=type,
            unique_id=unique_id,
            start_time=start_time,
            end_time=end_time,
            limit=limit,
            offset=offset,
        )
        return walk_async(lambda: self._client._page(call))

    async def list_page(
        self,
        *,
        status: str | None = None,
        type: str | None = None,  # noqa: A002 - the API's name
        unique_id: str | None = None,
        start_time: datetime | str | None = None,
        end_time: datetime | str | None = None,
        limit: int | None = None,
        offset: int | None = None,
        next_token: str | None = None,
    ) -> AsyncPage[Task]:
        return await self._client._page(
            _tasks.list_(
                status=status,
                type=type,
                unique_id=unique_id,
                start_time=start_time,
                end_time=end_time,
                limit=limit,
                offset=offset,
                next_token=next_token,
            )
        )

    async def cancel(self, task_id: str) -> Task:
        return await self._client._call(_tasks.cancel(task_id))

    async def callbacks(self, task_id: str) -> builtins.list[CallbackAttempt]:
        return await self._client._call(_tasks.callbacks(task_id))


def authorize(api_key: str | None = None, base_url: str | None = None, **options: Any) -> Client:
    """The Scale SDK's `authorize('YOUR_API_KEY')`: a `Client`.

    `api_key` defaults to `HUMANTASK_API_KEY`, `base_url` to `HUMANTASK_URL`. Options:
    `timeout` (seconds per attempt, 30), `max_retries` (2), `backoff` (0.5 s),
    `max_backoff` (8 s).
    """
    return Client(api_key, base_url, **options)


def authorize_async(
    api_key: str | None = None, base_url: str | None = None, **options: Any
) -> AsyncClient:
    """`authorize` for asyncio: `async with humantask.authorize_async(key) as api: ...`."""
    return AsyncClient(api_key, base_url, **options)
