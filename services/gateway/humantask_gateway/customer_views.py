"""The customer endpoints (docs/reference/contract.md §5): HTTP in, a command to the
task-store, HTTP out.

Each route is declared once, at the bottom (`CUSTOMER_ENDPOINTS`): the router and the
OpenAPI document are both made from it.
"""

from __future__ import annotations

import orjson
from aiohttp import web
from yarl import URL

from humantask_shared.core.errors import InvalidRequest
from humantask_shared.core.messages.commands import (
    CancelTask,
    CreateTask,
    GetTask,
    ListCallbacks,
    ListTasks,
)
from humantask_shared.core.models import (
    CallbackAttempt,
    CreateTaskRequest,
    Task,
    TaskListQuery,
)
from humantask_shared.runtime.http_routes import CUSTOMER_AUTH, Endpoint, Operation, ResponseDoc

from .appkeys import boundary_key, settings_key
from .bodies import FORM_TYPE, MAX_FORM_FIELDS, parse_fields, read_body, validate
from .requests import customer_id, json_response, task_id_from_path


def _task_response(task: Task) -> web.Response:
    return json_response(task.to_json_dict())


# What a form may spend on names, `=` and `&` beyond three bytes per byte of the task
# (percent-encoding): MAX_FORM_FIELDS fields with names of up to 32 characters.
FORM_NAMES_ALLOWANCE = MAX_FORM_FIELDS * 32


def task_too_large(limit: int, size: int | None = None) -> InvalidRequest:
    took = f"; this one takes {size}" if size is not None else ""
    return InvalidRequest(f"body: a task may take at most {limit} bytes as UTF-8 JSON{took}")


async def create_task(request: web.Request) -> web.Response:
    owner = await customer_id(request)
    limit = request.app[settings_key].max_task_bytes
    body = await read_body(request)
    # A form decodes to at least a third of its size: one this large cannot hold a task
    # within the limit, and is refused before it costs any parsing.
    if request.content_type == FORM_TYPE and len(body) > 3 * limit + FORM_NAMES_ALLOWANCE:
        raise task_too_large(limit)
    task_request = validate(CreateTaskRequest, parse_fields(request, body))
    # Field limits count characters; this bounds what a task costs to store and to list.
    size = len(orjson.dumps(task_request.model_dump(mode="json", exclude_none=True)))
    if size > limit:
        raise task_too_large(limit, size)
    task = await request.app[boundary_key].taskstore.send(
        CreateTask(customer_id=owner, request=task_request)
    )
    return _task_response(task)


async def get_task(request: web.Request) -> web.Response:
    owner = await customer_id(request)
    command = GetTask(customer_id=owner, task_id=task_id_from_path(request))
    return _task_response(await request.app[boundary_key].taskstore.send(command))


async def cancel_task(request: web.Request) -> web.Response:
    owner = await customer_id(request)
    command = CancelTask(customer_id=owner, task_id=task_id_from_path(request))
    return _task_response(await request.app[boundary_key].taskstore.send(command))


def _next_page_url(request: web.Request, next_token: str) -> URL:
    """The same query, from where this page ended (an offset applied to this page only),
    at `PUBLIC_BASE_URL` when it is set: behind a TLS proxy the request's own URL has
    the proxy's inside scheme and host."""
    params = {name: value for name, value in request.query.items() if name != "offset"}
    params["next_token"] = next_token  # signed by the task-store, handed on as it is
    base = request.app[settings_key].public_base_url
    if base is None:
        return request.url.with_query(params)
    public = URL(base)
    return public.with_path(public.path.rstrip("/") + request.path).with_query(params)


async def list_tasks(request: web.Request) -> web.Response:
    owner = await customer_id(request)
    query = validate(TaskListQuery, dict(request.query))
    page = await request.app[boundary_key].taskstore.send(ListTasks(customer_id=owner, query=query))
    response = json_response([task.to_json_dict() for task in page.tasks])
    if page.next_token is not None:
        response.headers["Link"] = f'<{_next_page_url(request, page.next_token)}>; rel="next"'
    return response


async def list_callbacks(request: web.Request) -> web.Response:
    """The task-store says whether the task is the caller's (else `404`, as for any task of
    another customer); the notifier, which owns the delivery records, gives the attempts."""
    owner = await customer_id(request)
    task_id = task_id_from_path(request)
    boundary = request.app[boundary_key]
    await boundary.taskstore.send(GetTask(customer_id=owner, task_id=task_id))  # or 404
    callback_log = await boundary.notifier.send(ListCallbacks(customer_id=owner, task_id=task_id))
    return json_response([attempt.model_dump(mode="json") for attempt in callback_log.attempts])


def _create_operation(operation_id: str, summary: str) -> Operation:
    return Operation(
        operation_id,
        summary,
        "tasks",
        (ResponseDoc(200, "The new task, `pending`.", model=Task),),
        errors=(400, 401, 403, 409, 413, 415, 429, 503),
        security=CUSTOMER_AUTH,
        body_model=CreateTaskRequest,
        form_body=True,
        description="Creates a categorization task. The task is durable once this returns. "
        "The same `unique_id` with the same parameters returns the original task; "
        "with different parameters it is a `409` whose message names the existing `task_id`. "
        "`metadata` can only be sent in a JSON body. Past the customer's quota of pending "
        "tasks it is a `429` with `Retry-After`; past its quota of stored bytes, a `403` "
        "(both messages start with `quota:`).",
    )


CUSTOMER_ENDPOINTS = (
    Endpoint(
        "POST",
        "/v1/task/categorize",
        create_task,
        _create_operation("createCategorizationTask", "Create a categorization task"),
    ),
    Endpoint(
        "POST",
        "/v1/task/categorization",
        create_task,
        _create_operation(
            "createCategorizationTaskAlias",
            "Create a categorization task (alias of /v1/task/categorize)",
        ),
    ),
    Endpoint(
        "GET",
        "/v1/task/{task_id}",
        get_task,
        Operation(
            "getTask",
            "Retrieve a task",
            "tasks",
            (ResponseDoc(200, "The task.", model=Task),),
            errors=(401, 404, 429, 503),
            security=CUSTOMER_AUTH,
            description="A task of another customer is a `404`, never a `403`.",
        ),
    ),
    Endpoint(
        "GET",
        "/v1/tasks",
        list_tasks,
        Operation(
            "listTasks",
            "List the caller's tasks, newest first",
            "tasks",
            (ResponseDoc(200, "One page of tasks.", model=Task, many=True, headers=("Link",)),),
            errors=(400, 401, 429, 503),
            security=CUSTOMER_AUTH,
            query_model=TaskListQuery,
            description="`start_time` <= `created_at` < `end_time`. A page ends early, "
            "with a `Link` to the next, rather than pass the task-store's "
            "`LIST_PAGE_MAX_BYTES`; a `next_token` the API did not give out for this "
            "query is a `400`; a list that takes longer than `LIST_MAX_TIME_MS` in the "
            "database is a `503`.",
        ),
    ),
    Endpoint(
        "POST",
        "/v1/task/{task_id}/cancel",
        cancel_task,
        Operation(
            "cancelTask",
            "Cancel a pending task",
            "tasks",
            (ResponseDoc(200, "The task, `canceled` (canceling twice is a no-op).", model=Task),),
            errors=(401, 404, 409, 429, 503),
            security=CUSTOMER_AUTH,
            description="Canceling a completed task is a `409`. Cancel revokes a worker's claim.",
        ),
    ),
    Endpoint(
        "GET",
        "/v1/task/{task_id}/callbacks",
        list_callbacks,
        Operation(
            "listTaskCallbacks",
            "The task's callback delivery log, oldest first",
            "tasks",
            (
                ResponseDoc(
                    200,
                    "The attempts so far; empty until the task completes.",
                    model=CallbackAttempt,
                    many=True,
                ),
            ),
            errors=(401, 404, 429, 503),
            security=CUSTOMER_AUTH,
            description="At most two attempts per delivery: the first when the task completes "
            "and, unless it got a `200`, one retry after `CALLBACK_RETRY_DELAY_SECONDS`. A "
            "later delivery (a later completion's, after an audit rejected the task, or a "
            "redelivery) follows with its own attempts, each entry saying its `delivery`. "
            "A task of another customer is a `404`.",
        ),
    ),
)
