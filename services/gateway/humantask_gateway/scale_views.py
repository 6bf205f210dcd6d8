"""`/scale/v1`: the part of Scale's current API that its official Python SDK (`scaleapi`
2.18) calls for categorization work (docs/reference/contract.md §11), with the shapes that
SDK reads, over the same tasks as `/v1`. HTTP in, a command to the task-store, HTTP out.

Each route is declared once, at the bottom (`SCALE_ENDPOINTS`): the router and the
OpenAPI document are both made from it. Authentication, limits and errors are `/v1`'s.
"""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict

from humantask_shared.core.errors import InvalidRequest, UnsupportedMediaType
from humantask_shared.core.messages.base import Command
from humantask_shared.core.messages.scale_commands import (
    AuditTask,
    CancelScaleTask,
    ChangeTaskTags,
    CreateBatch,
    CreateProject,
    CreateScaleTask,
    FinalizeBatch,
    GetBatch,
    GetBatchStatus,
    GetProject,
    GetScaleTask,
    ListBatches,
    ListProjects,
    ListScaleTasks,
    SetProjectParams,
    SetTaskMetadata,
    SetTaskUniqueId,
)
from humantask_shared.core.models import CreateTaskRequest
from humantask_shared.core.scale_models import (
    AuditRequest,
    Batch,
    BatchListQuery,
    BatchPage,
    BatchStatusView,
    CreateBatchRequest,
    CreateProjectRequest,
    GivenCreateFields,
    MetadataBody,
    Project,
    ScaleCreateTaskRequest,
    ScaleTask,
    ScaleTaskListQuery,
    ScaleTaskPage,
    SetProjectParamsRequest,
    TagList,
    TaskPlacement,
    UniqueIdRequest,
)
from humantask_shared.runtime.http_routes import CUSTOMER_AUTH, Endpoint, Operation, ResponseDoc

from .appkeys import boundary_key, settings_key
from .bodies import (
    FORM_ARRAY_FIELDS,
    FORM_TYPE,
    JSON_TYPE,
    parse_fields,
    read_body,
    validate,
)
from .customer_views import FORM_NAMES_ALLOWANCE, task_too_large
from .requests import customer_id, json_response, task_id_from_path

PREFIX = "/scale/v1"
TAG = "scale"

# In a form, Scale's tags are an array too (`tags[]=a&tags[]=b`).
SCALE_FORM_ARRAY_FIELDS = FORM_ARRAY_FIELDS | {"tags"}
PLACEMENT_FIELDS = tuple(TaskPlacement.model_fields)
# The create parameters a request may give (what the project's params may give, and
# `unique_id`); anything else in a body is ignored, as `/v1` ignores it.
CREATE_FIELDS = frozenset(GivenCreateFields.model_fields) | frozenset(
    CreateTaskRequest.model_fields
)
# Scale's `updated_after` and `updated_before` filter on what is not indexed here.
UNSUPPORTED_LIST_FILTERS = ("updated_after", "updated_before")
# Query parameters that may repeat (`?tags=a&tags=b`); the others are taken once.
REPEATABLE_QUERY = frozenset({"unique_id", "tags", "customer_review_status"})


class CancelQuery(BaseModel):
    """`POST /scale/v1/task/{task_id}/cancel` query parameters."""

    model_config = ConfigDict(frozen=True)

    clear_unique_id: bool = False


ResultT = TypeVar("ResultT", bound=BaseModel)


async def _send(request: web.Request, command: Command[ResultT]) -> ResultT:
    return await request.app[boundary_key].taskstore.send(command)


def _answer(model: ResultT) -> web.Response:
    return json_response(model.model_dump(mode="json", exclude_none=True))


async def _json_body(request: web.Request, empty: Any) -> Any:
    """A JSON body of any kind (Scale's tags are an array); `empty` when there is none
    (the SDK sends no body for an empty list or object)."""
    body = await read_body(request)
    if not body:
        return empty
    if request.content_type != JSON_TYPE:
        raise UnsupportedMediaType(f"Content-Type must be {JSON_TYPE}, not {request.content_type}")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"body: malformed JSON ({exc.msg})") from exc


async def _object_body(request: web.Request) -> dict[str, Any]:
    body = await read_body(request)
    return parse_fields(request, body) if body else {}


# -- tasks ---------------------------------------------------------------------------------


async def create_task(request: web.Request) -> web.Response:
    """Without a project or batch, the parameters are checked here as `/v1` checks them;
    with one, each given parameter is checked here, and the whole once the task-store
    has filled in the project's params."""
    owner = await customer_id(request)
    limit = request.app[settings_key].max_task_bytes
    body = await read_body(request)
    if request.content_type == FORM_TYPE and len(body) > 3 * limit + FORM_NAMES_ALLOWANCE:
        raise task_too_large(limit)
    fields = parse_fields(request, body, SCALE_FORM_ARRAY_FIELDS) if body else {}
    placement = validate(
        TaskPlacement, {name: fields.pop(name) for name in PLACEMENT_FIELDS if name in fields}
    )
    given = {name: value for name, value in fields.items() if name in CREATE_FIELDS}
    if placement.is_placed:
        checked: BaseModel = validate(GivenCreateFields, given)
        sent = checked.model_dump(mode="json", exclude_unset=True)
    else:
        sent = validate(CreateTaskRequest, given).model_dump(mode="json", exclude_none=True)
    size = len(orjson.dumps(sent))
    if size > limit:
        raise task_too_large(limit, size)
    task = await _send(
        request, CreateScaleTask(customer_id=owner, fields=sent, placement=placement)
    )
    return _answer(task)


async def get_task(request: web.Request) -> web.Response:
    owner = await customer_id(request)
    task_id = task_id_from_path(request)
    return _answer(await _send(request, GetScaleTask(customer_id=owner, task_id=task_id)))


async def cancel_task(request: web.Request) -> web.Response:
    owner = await customer_id(request)
    task_id = task_id_from_path(request)
    query = validate(CancelQuery, dict(request.query))
    command = CancelScaleTask(
        customer_id=owner, task_id=task_id, clear_unique_id=query.clear_unique_id
    )
    return _answer(await _send(request, command))


async def set_metadata(request: web.Request) -> web.Response:
    """The body is the new metadata object itself, as the SDK sends it (none: `{}`)."""
    owner = await customer_id(request)
    task_id = task_id_from_path(request)
    metadata = validate(MetadataBody, await _json_body(request, {}))
    command = SetTaskMetadata(customer_id=owner, task_id=task_id, metadata=metadata.root)
    return _answer(await _send(request, command))


async def change_tags(request: web.Request) -> web.Response:
    """`POST` sets the tags, `PUT` adds to them, `DELETE` deletes from them; the body is
    a JSON array of tags."""
    owner = await customer_id(request)
    task_id = task_id_from_path(request)
    tags = validate(TagList, await _json_body(request, []))
    operation = {"POST": "set", "PUT": "add", "DELETE": "delete"}[request.method]
    command = ChangeTaskTags(
        customer_id=owner,
        task_id=task_id,
        operation=operation,  # type: ignore[arg-type]  # one of the three, by method
        tags=tags.root,
    )
    return _answer(await _send(request, command))


async def set_unique_id(request: web.Request) -> web.Response:
    owner = await customer_id(request)
    task_id = task_id_from_path(request)
    body = validate(UniqueIdRequest, await _object_body(request))
    command = SetTaskUniqueId(customer_id=owner, task_id=task_id, unique_id=body.unique_id)
    return _answer(await _send(request, command))


async def clear_unique_id(request: web.Request) -> web.Response:
    owner = await customer_id(request)
    task_id = task_id_from_path(request)
    return _answer(await _send(request, SetTaskUniqueId(customer_id=owner, task_id=task_id)))


async def audit_task(request: web.Request) -> web.Response:
    owner = await customer_id(request)
    task_id = task_id_from_path(request)
    audit = validate(AuditRequest, await _object_body(request))
    command = AuditTask(customer_id=owner, task_id=task_id, audit=audit)
    return _answer(await _send(request, command))


def _query_fields(request: web.Request) -> dict[str, Any]:
    """The query string as fields: the repeatable ones as lists."""
    fields: dict[str, Any] = {}
    for name in request.query:
        if name in REPEATABLE_QUERY:
            fields[name] = request.query.getall(name)
        else:
            fields.setdefault(name, request.query[name])
    return fields


async def list_tasks(request: web.Request) -> web.Response:
    owner = await customer_id(request)
    for name in UNSUPPORTED_LIST_FILTERS:
        if name in request.query:
            raise InvalidRequest(f"{name}: not supported; filter on start_time and end_time")
    query = validate(ScaleTaskListQuery, _query_fields(request))
    page = await _send(request, ListScaleTasks(customer_id=owner, query=query))
    answer = page.model_dump(mode="json", exclude_none=True)
    answer["next_token"] = answer.get("next_token")  # null on the last page, as Scale's
    return json_response(answer)


# -- projects ------------------------------------------------------------------------------


async def create_project(request: web.Request) -> web.Response:
    owner = await customer_id(request)
    body = validate(CreateProjectRequest, await _object_body(request))
    return _answer(await _send(request, CreateProject(customer_id=owner, request=body)))


async def list_projects(request: web.Request) -> web.Response:
    """A JSON array of the customer's projects (the SDK's `projects()` reads one)."""
    owner = await customer_id(request)
    found = await _send(request, ListProjects(customer_id=owner))
    return json_response([project.model_dump(mode="json") for project in found.projects])


async def get_project(request: web.Request) -> web.Response:
    owner = await customer_id(request)
    name = request.match_info["project_name"]
    return _answer(await _send(request, GetProject(customer_id=owner, name=name)))


async def set_project_params(request: web.Request) -> web.Response:
    owner = await customer_id(request)
    name = request.match_info["project_name"]
    body = validate(SetProjectParamsRequest, await _object_body(request))
    return _answer(
        await _send(request, SetProjectParams(customer_id=owner, name=name, request=body))
    )


# -- batches -------------------------------------------------------------------------------


async def create_batch(request: web.Request) -> web.Response:
    owner = await customer_id(request)
    body = validate(CreateBatchRequest, await _object_body(request))
    return _answer(await _send(request, CreateBatch(customer_id=owner, request=body)))


async def finalize_batch(request: web.Request) -> web.Response:
    owner = await customer_id(request)
    name = request.match_info["batch_name"]
    return _answer(await _send(request, FinalizeBatch(customer_id=owner, name=name)))


async def get_batch(request: web.Request) -> web.Response:
    owner = await customer_id(request)
    name = request.match_info["batch_name"]
    return _answer(await _send(request, GetBatch(customer_id=owner, name=name)))


async def get_batch_status(request: web.Request) -> web.Response:
    owner = await customer_id(request)
    name = request.match_info["batch_name"]
    return _answer(await _send(request, GetBatchStatus(customer_id=owner, name=name)))


async def list_batches(request: web.Request) -> web.Response:
    owner = await customer_id(request)
    query = validate(BatchListQuery, dict(request.query))
    return _answer(await _send(request, ListBatches(customer_id=owner, query=query)))


# -- the routes ----------------------------------------------------------------------------

_TASK_ERRORS = (401, 404, 429, 503)


def _operation(
    operation_id: str,
    summary: str,
    response: ResponseDoc,
    errors: tuple[int, ...] = _TASK_ERRORS,
    description: str = "",
    **extra: Any,
) -> Operation:
    return Operation(
        operation_id,
        summary,
        TAG,
        (response,),
        errors=tuple(sorted(set(errors))),
        security=CUSTOMER_AUTH,
        description=description,
        **extra,
    )


def _task(description: str = "The task.") -> ResponseDoc:
    return ResponseDoc(200, description, model=ScaleTask)


_BODY_ERRORS = (*_TASK_ERRORS, 400, 413, 415)

SCALE_ENDPOINTS = (
    Endpoint(
        "POST",
        f"{PREFIX}/task/categorization",
        create_task,
        _operation(
            "scaleCreateCategorizationTask",
            "Create a categorization task, in a project and a batch",
            _task("The new task, `pending`."),
            (*_BODY_ERRORS, 403, 409),
            description="The parameters of `POST /v1/task/categorize`, and `project`, `batch` "
            "and `tags`. A project's params fill in the parameters the request leaves out; a "
            "batch's task is in the batch's project, and joins it only while it is `staging` "
            "(`409` after). An unknown project or batch is a `400` naming the field. The "
            "customer's quotas apply as on `/v1`: past its pending tasks, a `429` with "
            "`Retry-After`; past its stored bytes, a `403` (both messages start with `quota:`).",
            body_model=ScaleCreateTaskRequest,
            form_body=True,
        ),
    ),
    Endpoint(
        "GET",
        f"{PREFIX}/task/{{task_id}}",
        get_task,
        _operation(
            "scaleGetTask",
            "Retrieve a task, with Scale's fields",
            _task(),
            description="A task of another customer is a `404`, never a `403`.",
        ),
    ),
    Endpoint(
        "POST",
        f"{PREFIX}/task/{{task_id}}/cancel",
        cancel_task,
        _operation(
            "scaleCancelTask",
            "Cancel a pending task",
            _task("The task, `canceled` (canceling twice is a no-op)."),
            (*_TASK_ERRORS, 400, 409),
            description="Canceling a completed task is a `409`. `clear_unique_id=true` frees "
            "the task's `unique_id` for another task.",
            query_model=CancelQuery,
        ),
    ),
    Endpoint(
        "POST",
        f"{PREFIX}/task/{{task_id}}/setMetadata",
        set_metadata,
        _operation(
            "scaleSetTaskMetadata",
            "Replace a task's metadata",
            _task(),
            _BODY_ERRORS,
            description="The body is the new metadata object (at most 16 KiB as JSON).",
            body_model=MetadataBody,
        ),
    ),
    *(
        Endpoint(
            method,
            f"{PREFIX}/task/{{task_id}}/tags",
            change_tags,
            _operation(
                operation_id,
                summary,
                _task(),
                _BODY_ERRORS,
                description="The body is a JSON array of tags.",
                body_model=TagList,
            ),
        )
        for method, operation_id, summary in (
            ("POST", "scaleSetTaskTags", "Set a task's tags"),
            ("PUT", "scaleAddTaskTags", "Add tags to a task (those it has stay)"),
            ("DELETE", "scaleDeleteTaskTags", "Delete tags from a task (others are ignored)"),
        )
    ),
    Endpoint(
        "POST",
        f"{PREFIX}/task/{{task_id}}/unique_id",
        set_unique_id,
        _operation(
            "scaleSetTaskUniqueId",
            "Give a task a unique_id",
            _task(),
            (*_BODY_ERRORS, 409),
            description="A `unique_id` another of the customer's tasks has is a `409`.",
            body_model=UniqueIdRequest,
            form_body=True,
        ),
    ),
    Endpoint(
        "DELETE",
        f"{PREFIX}/task/{{task_id}}/unique_id",
        clear_unique_id,
        _operation("scaleClearTaskUniqueId", "Clear a task's unique_id", _task()),
    ),
    Endpoint(
        "POST",
        f"{PREFIX}/task/{{task_id}}/audit",
        audit_task,
        _operation(
            "scaleAuditTask",
            "Accept or reject a completed task",
            _task(),
            (*_BODY_ERRORS, 409),
            description='`accepted: true` sets `customer_review_status: "accepted"`. '
            '`accepted: false` sets it to `"rejected"` and puts the task back to `pending` '
            "for a worker who has not answered it; its old answer stops counting, and when it "
            "completes again its callback is sent again. Only a completed task can be "
            "audited (`409`).",
            body_model=AuditRequest,
            form_body=True,
        ),
    ),
    Endpoint(
        "GET",
        f"{PREFIX}/tasks",
        list_tasks,
        _operation(
            "scaleListTasks",
            "List the caller's tasks, newest first, with Scale's filters",
            ResponseDoc(200, "One page of tasks.", model=ScaleTaskPage),
            (*_TASK_ERRORS, 400),
            description="`start_time` <= `created_at` < `end_time`; `completed_after` <= "
            "`completed_at` < `completed_before`. `unique_id` and `tags` may repeat (a task "
            "has one of the unique ids and all the tags); `customer_review_status` may list "
            "several, comma-separated. `total` counts what the filters match, up to "
            "10,000, as of the first page; `next_token` gives the next page. As on `/v1`, a "
            "page ends early (with a `next_token`) rather than pass the task-store's "
            "`LIST_PAGE_MAX_BYTES`; a `next_token` the API did not give out for this query is "
            "a `400`; a list (its count included) that takes longer than `LIST_MAX_TIME_MS` "
            "in the database is a `503`.",
            query_model=ScaleTaskListQuery,
        ),
    ),
    Endpoint(
        "POST",
        f"{PREFIX}/projects",
        create_project,
        _operation(
            "scaleCreateProject",
            "Create a project",
            ResponseDoc(200, "The new project.", model=Project),
            (*_BODY_ERRORS, 409),
            description="A project's `params` are defaults for its tasks' create parameters "
            "(the quality settings `min_workers`, `max_workers` and `confidence` included). "
            "A name the customer already uses is a `409`.",
            body_model=CreateProjectRequest,
        ),
    ),
    Endpoint(
        "GET",
        f"{PREFIX}/projects",
        list_projects,
        _operation(
            "scaleListProjects",
            "List the caller's projects, oldest first",
            ResponseDoc(200, "The projects.", model=Project, many=True),
            description="Each project with its current params only (`param_history` of one: "
            "`GET /scale/v1/projects/{project_name}` has them all); the oldest 1,000 at most, "
            "and those that fit in the task-store's `LIST_PAGE_MAX_BYTES`. Longer than "
            "`LIST_MAX_TIME_MS` in the database is a `503`.",
        ),
    ),
    Endpoint(
        "GET",
        f"{PREFIX}/projects/{{project_name}}",
        get_project,
        _operation(
            "scaleGetProject",
            "Retrieve a project",
            ResponseDoc(200, "The project.", model=Project),
        ),
    ),
    Endpoint(
        "POST",
        f"{PREFIX}/projects/{{project_name}}/setParams",
        set_project_params,
        _operation(
            "scaleSetProjectParams",
            "Set a project's params (a new version)",
            ResponseDoc(200, "The project, its new params last in `param_history`.", model=Project),
            _BODY_ERRORS,
            description="The body is the new params; with `patch: true` the params it leaves "
            "out keep their values, otherwise they are dropped.",
            body_model=SetProjectParamsRequest,
        ),
    ),
    Endpoint(
        "POST",
        f"{PREFIX}/batches",
        create_batch,
        _operation(
            "scaleCreateBatch",
            "Create a batch in a project",
            ResponseDoc(200, "The new batch, `staging`.", model=Batch),
            (*_BODY_ERRORS, 409),
            description="An unknown project is a `404`; a batch name the customer already uses "
            "is a `409`. `callback`, if given, is the URL that receives the batch and its "
            "counts once it completes.",
            body_model=CreateBatchRequest,
        ),
    ),
    Endpoint(
        "POST",
        f"{PREFIX}/batches/{{batch_name}}/finalize",
        finalize_batch,
        _operation(
            "scaleFinalizeBatch",
            "Finalize a batch: no more tasks join it",
            ResponseDoc(200, "The batch, `in_progress` (or `completed`).", model=Batch),
            description="Finalizing a finalized batch is a no-op. The batch completes once every "
            "task of it is completed or canceled.",
        ),
    ),
    Endpoint(
        "GET",
        f"{PREFIX}/batches/{{batch_name}}",
        get_batch,
        _operation(
            "scaleGetBatch", "Retrieve a batch", ResponseDoc(200, "The batch.", model=Batch)
        ),
    ),
    Endpoint(
        "GET",
        f"{PREFIX}/batches/{{batch_name}}/status",
        get_batch_status,
        _operation(
            "scaleGetBatchStatus",
            "A batch's status and its tasks' counts",
            ResponseDoc(200, "The status and the counts.", model=BatchStatusView),
        ),
    ),
    Endpoint(
        "GET",
        f"{PREFIX}/batches",
        list_batches,
        _operation(
            "scaleListBatches",
            "List the caller's batches, newest first",
            ResponseDoc(200, "One page of batches.", model=BatchPage),
            (*_TASK_ERRORS, 400),
            description="A page ends early rather than pass the task-store's "
            "`LIST_PAGE_MAX_BYTES` (`has_more` is true: ask again at `offset` plus the page's "
            "length); longer than `LIST_MAX_TIME_MS` in the database is a `503`.",
            query_model=BatchListQuery,
        ),
    ),
)
