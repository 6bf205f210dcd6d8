"""The customer endpoints (API.md §5): HTTP in, a command to the task-store, HTTP out."""

from __future__ import annotations

from aiohttp import web
from yarl import URL

from humantask_shared.messages.commands import (
    CancelTask,
    CreateTask,
    GetTask,
    ListTasks,
)
from humantask_shared.models import (
    CreateTaskRequest,
    ListCursor,
    Task,
    TaskListQuery,
    TaskPage,
)

from .appkeys import taskstore_key
from .bodies import read_fields, validate
from .requests import customer_id, json_response, task_id_from_path


def _task_response(task: Task) -> web.Response:
    return json_response(task.to_json_dict())


async def create_task(request: web.Request) -> web.Response:
    owner = await customer_id(request)
    task_request = validate(CreateTaskRequest, await read_fields(request))
    task = await request.app[taskstore_key].send(
        CreateTask(customer_id=owner, request=task_request), Task
    )
    return _task_response(task)


async def get_task(request: web.Request) -> web.Response:
    owner = await customer_id(request)
    command = GetTask(customer_id=owner, task_id=task_id_from_path(request))
    return _task_response(await request.app[taskstore_key].send(command, Task))


async def cancel_task(request: web.Request) -> web.Response:
    owner = await customer_id(request)
    command = CancelTask(customer_id=owner, task_id=task_id_from_path(request))
    return _task_response(await request.app[taskstore_key].send(command, Task))


def _next_page_url(request: web.Request, next_token: ListCursor) -> URL:
    """The same query, from where this page ended (an offset applied to this page only)."""
    params = {name: value for name, value in request.query.items() if name != "offset"}
    params["next_token"] = next_token.encode()
    return request.url.with_query(params)


async def list_tasks(request: web.Request) -> web.Response:
    owner = await customer_id(request)
    query = validate(TaskListQuery, dict(request.query))
    page = await request.app[taskstore_key].send(
        ListTasks(customer_id=owner, query=query), TaskPage
    )
    response = json_response([task.to_json_dict() for task in page.tasks])
    if page.next_token is not None:
        response.headers["Link"] = f'<{_next_page_url(request, page.next_token)}>; rel="next"'
    return response


def add_customer_routes(app: web.Application) -> None:
    app.router.add_post("/v1/task/categorize", create_task)
    app.router.add_post("/v1/task/categorization", create_task)
    app.router.add_get("/v1/task/{task_id}", get_task)
    app.router.add_post("/v1/task/{task_id}/cancel", cancel_task)
    app.router.add_get("/v1/tasks", list_tasks)
