"""The customer endpoints (API.md §5): HTTP in, a command to the task-store, HTTP out."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from yarl import URL

from humantask_shared.errors import NotFound
from humantask_shared.messages.commands import CancelTask, CreateTask, GetTask, ListTasks
from humantask_shared.models import (
    TASK_ID_PATTERN,
    CreateTaskRequest,
    Task,
    TaskListQuery,
    TaskPage,
)

from .appkeys import authenticator_key, taskstore_key
from .bodies import read_fields, validate


def _task_response(task: Task) -> web.Response:
    return web.json_response(task.to_json_dict(), dumps=_dumps)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


async def _customer_id(request: web.Request) -> str:
    principal = await request.app[authenticator_key].authenticate(request, "customer")
    return principal.principal_id


def _task_id(request: web.Request) -> str:
    task_id = request.match_info["task_id"]
    if not TASK_ID_PATTERN.match(task_id):
        raise NotFound(f"no task with task_id {task_id}")
    return task_id


async def create_task(request: web.Request) -> web.Response:
    customer_id = await _customer_id(request)
    task_request = validate(CreateTaskRequest, await read_fields(request))
    task = await request.app[taskstore_key].send(
        CreateTask(customer_id=customer_id, request=task_request), Task
    )
    return _task_response(task)


async def get_task(request: web.Request) -> web.Response:
    customer_id = await _customer_id(request)
    command = GetTask(customer_id=customer_id, task_id=_task_id(request))
    return _task_response(await request.app[taskstore_key].send(command, Task))


async def cancel_task(request: web.Request) -> web.Response:
    customer_id = await _customer_id(request)
    command = CancelTask(customer_id=customer_id, task_id=_task_id(request))
    return _task_response(await request.app[taskstore_key].send(command, Task))


def _next_page_url(request: web.Request, query: TaskListQuery) -> URL:
    params = dict(request.query)
    params.update(offset=str(query.offset + query.limit), limit=str(query.limit))
    return request.url.with_query(params)


async def list_tasks(request: web.Request) -> web.Response:
    customer_id = await _customer_id(request)
    query = validate(TaskListQuery, dict(request.query))
    page = await request.app[taskstore_key].send(
        ListTasks(customer_id=customer_id, query=query), TaskPage
    )
    response = web.json_response([task.to_json_dict() for task in page.tasks], dumps=_dumps)
    if page.has_more:
        response.headers["Link"] = f'<{_next_page_url(request, query)}>; rel="next"'
    return response


def add_customer_routes(app: web.Application) -> None:
    app.router.add_post("/v1/task/categorize", create_task)
    app.router.add_post("/v1/task/categorization", create_task)
    app.router.add_get("/v1/task/{task_id}", get_task)
    app.router.add_post("/v1/task/{task_id}/cancel", cancel_task)
    app.router.add_get("/v1/tasks", list_tasks)
