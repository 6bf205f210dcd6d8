"""`scale.authorize(key)` and `scale.authorize_async(key)`: the API as Python calls."""

from __future__ import annotations

import asyncio
import builtins
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any, TypeVar

import httpx

from . import _core
from ._core import Call, RetryPolicy
from .errors import APIConnectionError, APITimeoutError
from .models import CallbackAttempt, Task

T = TypeVar("T")

DEFAULT_TIMEOUT = 30.0


def _should_retry(response: httpx.Response | None, retry: int, policy: RetryPolicy) -> bool:
    """A 503, or no connection at all (response None), with retries left."""
    return retry < policy.max_retries and (response is None or response.status_code == 503)


def _connection_error(exc: httpx.TransportError) -> APIConnectionError:
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"no answer in time: {exc!r}")
    return APIConnectionError(f"could not reach the server: {exc!r}")


class Client:
    """A blocking client. `with scale.authorize(key) as api: ...` closes its connections."""

    def __init__(
        self,
        api_key: str,
        base_url: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = 2,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            **_core.client_options(api_key, base_url, timeout), transport=transport
        )
        self.retry = RetryPolicy(max_retries, backoff, max_backoff)
        self.tasks = Tasks(self)

    @property
    def base_url(self) -> str:
        return str(self._http.base_url)

    def _send(self, call: Call[Any]) -> httpx.Response:
        retry = 0
        while True:
            response = None
            try:
                response = self._http.request(call.method, call.path, **_core.request_args(call))
            except httpx.ConnectError as exc:
                if not _should_retry(None, retry, self.retry):
                    raise _connection_error(exc) from exc
            except httpx.TransportError as exc:
                raise _connection_error(exc) from exc
            if response is not None and not _should_retry(response, retry, self.retry):
                return response
            time.sleep(self.retry.delay(retry, response))
            retry += 1

    def _call(self, call: Call[T]) -> T:
        return _core.result(self._send(call), call)

    def _pages(self, call: Call[builtins.list[T]]) -> Iterator[T]:
        while True:
            response = self._send(call)
            yield from _core.result(response, call)
            params = _core.next_page_params(response)
            if params is None:
                return
            call = _core.with_params(call, params)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Any request under `/v1/` (`path` relative to it): the JSON answer, or a ScaleError.

        Keyword arguments: `json`, `content`, `params`, `headers`.
        """
        return self._call(_core.raw_call(method, path, **kwargs))

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
        api_key: str,
        base_url: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = 2,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            **_core.client_options(api_key, base_url, timeout), transport=transport
        )
        self.retry = RetryPolicy(max_retries, backoff, max_backoff)
        self.tasks = AsyncTasks(self)

    @property
    def base_url(self) -> str:
        return str(self._http.base_url)

    async def _send(self, call: Call[Any]) -> httpx.Response:
        retry = 0
        while True:
            response = None
            try:
                response = await self._http.request(
                    call.method, call.path, **_core.request_args(call)
                )
            except httpx.ConnectError as exc:
                if not _should_retry(None, retry, self.retry):
                    raise _connection_error(exc) from exc
            except httpx.TransportError as exc:
                raise _connection_error(exc) from exc
            if response is not None and not _should_retry(response, retry, self.retry):
                return response
            await asyncio.sleep(self.retry.delay(retry, response))
            retry += 1

    async def _call(self, call: Call[T]) -> T:
        return _core.result(await self._send(call), call)

    async def _pages(self, call: Call[builtins.list[T]]) -> AsyncIterator[T]:
        while True:
            response = await self._send(call)
            for item in _core.result(response, call):
                yield item
            params = _core.next_page_params(response)
            if params is None:
                return
            call = _core.with_params(call, params)

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Any request under `/v1/` (`path` relative to it): the JSON answer, or a ScaleError."""
        return await self._call(_core.raw_call(method, path, **kwargs))

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
        callback_url: str,
        instruction: str,
        attachment_type: str,
        attachment: str,
        categories: builtins.list[str],
        metadata: dict[str, Any] | None = None,
        unique_id: str | None = None,
        callback_format: str | None = None,
    ) -> Task:
        """`POST /v1/task/categorize`: the new task, `status` `pending`."""
        return self._client._call(
            _core.create_call(
                callback_url=callback_url,
                instruction=instruction,
                attachment_type=attachment_type,
                attachment=attachment,
                categories=categories,
                metadata=metadata,
                unique_id=unique_id,
                callback_format=callback_format,
            )
        )

    createCategorization = create_categorization  # noqa: N815 - the seed's spelling

    def get(self, task_id: str) -> Task:
        return self._client._call(_core.get_call(task_id))

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
        """The caller's tasks, newest first, page after page (`limit` is the page size)."""
        return self._client._pages(
            _core.list_call(
                status=status,
                type=type,
                unique_id=unique_id,
                start_time=start_time,
                end_time=end_time,
                limit=limit,
                offset=offset,
            )
        )

    def cancel(self, task_id: str) -> Task:
        return self._client._call(_core.cancel_call(task_id))

    def callbacks(self, task_id: str) -> builtins.list[CallbackAttempt]:
        """The task's callback deliveries, oldest first; empty until it is completed."""
        return self._client._call(_core.callbacks_call(task_id))


class AsyncTasks:
    """`api.tasks` of the asyncio client: the same calls, awaited."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def create_categorization(
        self,
        *,
        callback_url: str,
        instruction: str,
        attachment_type: str,
        attachment: str,
        categories: builtins.list[str],
        metadata: dict[str, Any] | None = None,
        unique_id: str | None = None,
        callback_format: str | None = None,
    ) -> Task:
        return await self._client._call(
            _core.create_call(
                callback_url=callback_url,
                instruction=instruction,
                attachment_type=attachment_type,
                attachment=attachment,
                categories=categories,
                metadata=metadata,
                unique_id=unique_id,
                callback_format=callback_format,
            )
        )

    createCategorization = create_categorization  # noqa: N815 - the seed's spelling

    async def get(self, task_id: str) -> Task:
        return await self._client._call(_core.get_call(task_id))

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
        """`async for task in api.tasks.list(...)`: newest first, across pages."""
        return self._client._pages(
            _core.list_call(
                status=status,
                type=type,
                unique_id=unique_id,
                start_time=start_time,
                end_time=end_time,
                limit=limit,
                offset=offset,
            )
        )

    async def cancel(self, task_id: str) -> Task:
        return await self._client._call(_core.cancel_call(task_id))

    async def callbacks(self, task_id: str) -> builtins.list[CallbackAttempt]:
        return await self._client._call(_core.callbacks_call(task_id))


def authorize(api_key: str, base_url: str | None = None, **options: Any) -> Client:
    """The seed's `scale.authorize('YOUR_API_KEY')`; `base_url` defaults to `SCALE_API_URL`.

    Options: `timeout` (seconds, 30), `max_retries` (2), `backoff` (0.5), `max_backoff` (8).
    """
    return Client(api_key, base_url, **options)


def authorize_async(api_key: str, base_url: str | None = None, **options: Any) -> AsyncClient:
    """`authorize` for asyncio: `async with scale.authorize_async(key) as api: ...`."""
    return AsyncClient(api_key, base_url, **options)
