"""`humantask.authorize(key)` and `humantask.authorize_async(key)`: the API as Python calls.

`Client` and `AsyncClient` each send requests in one place (`_send`: the retries) and
read answers in one (`_http.result`: the errors); a resource such as `api.tasks` only
describes its requests (`_tasks.py`; `api.projects`, `_projects.py`; `api.batches`,
`_batches.py`) and names its methods here.
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

from . import _batches, _http, _projects, _tasks
from ._http import Call, RetryPolicy
from .models import Batch, BatchStatus, CallbackAttempt, Project, Task
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
        self.projects = Projects(self)
        self.batches = Batches(self)

    @property
    def base_url(self) -> str:
        return str(self._http.base_url)

    def _send(self, call: Call[Any]) -> httpx.Response:
        """The answer to `call`, trying again while `self.retry` says to."""
        retry = 0
        while True:
            try:
                response = self._http.request(
                    call.method, call.url(self._http.base_url), **call.request_args()
                )
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
        self.projects = AsyncProjects(self)
        self.batches = AsyncBatches(self)

    @property
    def base_url(self) -> str:
        return str(self._http.base_url)

    async def _send(self, call: Call[Any]) -> httpx.Response:
        retry = 0
        while True:
            try:
                response = await self._http.request(
                    call.method, call.url(self._http.base_url), **call.request_args()
                )
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
        instruction: str | None = None,
        attachment_type: str | None = None,
        attachment: str | None = None,
        categories: builtins.list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        unique_id: str | None = None,
        callback_format: str | None = None,
        project: str | None = None,
        batch: str | None = None,
        tags: builtins.list[str] | None = None,
        **extra: Any,
    ) -> Task:
        """`POST /v1/task/categorize`: the new task, `status` `pending`.

        Retried after a failure only with a `unique_id` (the server then makes the task
        once, however often it is asked). In a `project` (whose params fill in what is
        left out) or a `batch`, or with `tags`: Scale's create under `/scale/v1`. `extra`:
        parameters of a newer server that this client has no name for, sent as they are.
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
                project=project,
                batch=batch,
                tags=tags,
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

    def cancel(self, task_id: str, *, clear_unique_id: bool = False) -> Task:
        """Cancel a pending task; `clear_unique_id` frees its unique_id for another."""
        return self._client._call(_tasks.cancel(task_id, clear_unique_id))

    def callbacks(self, task_id: str) -> builtins.list[CallbackAttempt]:
        """The task's callback deliveries, oldest first; empty until it is completed."""
        return self._client._call(_tasks.callbacks(task_id))

    def audit(self, task_id: str, accepted: bool, comments: str | None = None) -> Task:
        """Accept a completed task's answer, or reject it: it goes back to workers who
        have not answered it, and is called back again once completed again."""
        return self._client._call(_tasks.audit(task_id, accepted, comments))

    def set_tags(self, task_id: str, tags: builtins.list[str]) -> Task:
        return self._client._call(_tasks.tags(task_id, "POST", tags))

    def add_tags(self, task_id: str, tags: builtins.list[str]) -> Task:
        return self._client._call(_tasks.tags(task_id, "PUT", tags))

    def delete_tags(self, task_id: str, tags: builtins.list[str]) -> Task:
        return self._client._call(_tasks.tags(task_id, "DELETE", tags))

    def set_metadata(self, task_id: str, metadata: dict[str, Any]) -> Task:
        return self._client._call(_tasks.set_metadata(task_id, metadata))

    def set_unique_id(self, task_id: str, unique_id: str | None) -> Task:
        """Give the task a unique_id (`Conflict` if another task has it); None clears it."""
        return self._client._call(_tasks.set_unique_id(task_id, unique_id))


class AsyncTasks:
    """`api.tasks` of the asyncio client: the same calls, awaited."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def create_categorization(
        self,
        *,
        callback_url: str | None = None,
        instruction: str | None = None,
        attachment_type: str | None = None,
        attachment: str | None = None,
        categories: builtins.list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        unique_id: str | None = None,
        callback_format: str | None = None,
        project: str | None = None,
        batch: str | None = None,
        tags: builtins.list[str] | None = None,
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
                project=project,
                batch=batch,
                tags=tags,
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

    async def cancel(self, task_id: str, *, clear_unique_id: bool = False) -> Task:
        return await self._client._call(_tasks.cancel(task_id, clear_unique_id))

    async def callbacks(self, task_id: str) -> builtins.list[CallbackAttempt]:
        return await self._client._call(_tasks.callbacks(task_id))

    async def audit(self, task_id: str, accepted: bool, comments: str | None = None) -> Task:
        return await self._client._call(_tasks.audit(task_id, accepted, comments))

    async def set_tags(self, task_id: str, tags: builtins.list[str]) -> Task:
        return await self._client._call(_tasks.tags(task_id, "POST", tags))

    async def add_tags(self, task_id: str, tags: builtins.list[str]) -> Task:
        return await self._client._call(_tasks.tags(task_id, "PUT", tags))

    async def delete_tags(self, task_id: str, tags: builtins.list[str]) -> Task:
        return await self._client._call(_tasks.tags(task_id, "DELETE", tags))

    async def set_metadata(self, task_id: str, metadata: dict[str, Any]) -> Task:
        return await self._client._call(_tasks.set_metadata(task_id, metadata))

    async def set_unique_id(self, task_id: str, unique_id: str | None) -> Task:
        return await self._client._call(_tasks.set_unique_id(task_id, unique_id))


class Projects:
    """`api.projects`: named defaults for tasks' create parameters, kept as versions."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def create(self, name: str, params: dict[str, Any] | None = None) -> Project:
        """A categorization project; `params` are its tasks' defaults (`Conflict` when
        the name is taken)."""
        return self._client._call(_projects.create(name, params))

    def get(self, name: str) -> Project:
        return self._client._call(_projects.get(name))

    def list(self) -> builtins.list[Project]:
        """Every project, oldest first."""
        return self._client._call(_projects.list_())

    def set_params(self, name: str, *, patch: bool = False, **params: Any) -> Project:
        """A new version of the project's params; `patch=True` keeps those not given."""
        return self._client._call(_projects.set_params(name, params, patch))


class AsyncProjects:
    """`api.projects` of the asyncio client."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def create(self, name: str, params: dict[str, Any] | None = None) -> Project:
        return await self._client._call(_projects.create(name, params))

    async def get(self, name: str) -> Project:
        return await self._client._call(_projects.get(name))

    async def list(self) -> builtins.list[Project]:
        return await self._client._call(_projects.list_())

    async def set_params(self, name: str, *, patch: bool = False, **params: Any) -> Project:
        return await self._client._call(_projects.set_params(name, params, patch))


class Batches:
    """`api.batches`: a project's tasks in named groups, called back once all are done."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def create(
        self,
        project: str,
        name: str,
        *,
        callback: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Batch:
        """A `staging` batch; `callback` receives the batch and its counts once every
        task of it is completed or canceled (after `finalize`)."""
        return self._client._call(_batches.create(project, name, callback, metadata))

    def finalize(self, name: str) -> Batch:
        """No more tasks join it: `in_progress`, and `completed` once they are done."""
        return self._client._call(_batches.finalize(name))

    def get(self, name: str) -> Batch:
        return self._client._call(_batches.get(name))

    def status(self, name: str) -> BatchStatus:
        """The batch's status and its tasks' counts (`pending`, `completed`, `canceled`)."""
        return self._client._call(_batches.status(name))

    def list(self, *, project: str | None = None, status: str | None = None) -> Iterator[Batch]:
        """The batches, newest first, a page at a time as they are used."""
        offset, more = 0, True
        while more:
            found, more = self._client._call(_batches.page(project, status, offset))
            yield from found
            offset += len(found)
            more = more and bool(found)


class AsyncBatches:
    """`api.batches` of the asyncio client."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def create(
        self,
        project: str,
        name: str,
        *,
        callback: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Batch:
        return await self._client._call(_batches.create(project, name, callback, metadata))

    async def finalize(self, name: str) -> Batch:
        return await self._client._call(_batches.finalize(name))

    async def get(self, name: str) -> Batch:
        return await self._client._call(_batches.get(name))

    async def status(self, name: str) -> BatchStatus:
        return await self._client._call(_batches.status(name))

    async def list(
        self, *, project: str | None = None, status: str | None = None
    ) -> AsyncIterator[Batch]:
        """`async for batch in api.batches.list(...)`: newest first."""
        offset, more = 0, True
        while more:
            found, more = await self._client._call(_batches.page(project, status, offset))
            for batch in found:
                yield batch
            offset += len(found)
            more = more and bool(found)


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
