"""OpenAPI 3.1: the HTTP API of the gateway."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import BaseModel

from humantask_shared.models import (
    TASK_ID_PATTERN,
    CallbackAttempt,
    CreateTaskRequest,
    ErrorBody,
    Task,
    TaskListQuery,
)
from humantask_shared.worker_models import CompletedWork, SubmitWorkRequest, WorkItem

from .schemas import (
    API_VERSION,
    JSON_MEDIA_TYPE,
    SCHEMA_REF_TEMPLATE,
    Json,
    ModelUse,
    Schemas,
    collect_schemas,
    json_types,
    without_null,
)

CUSTOMER_AUTH = "customerApiKey"
WORKER_AUTH = "workerToken"
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"

SECURITY_SCHEMES: dict[str, Json] = {
    CUSTOMER_AUTH: {
        "type": "http",
        "scheme": "basic",
        "description": "The customer's API key as the username, an empty password "
        "(`curl -u KEY:`).",
    },
    WORKER_AUTH: {
        "type": "http",
        "scheme": "basic",
        "description": "The worker's token as the username, an empty password.",
    },
}

RESPONSE_HEADERS: dict[str, Json] = {
    "WWW-Authenticate": {
        "description": "The authentication scheme to use.",
        "schema": {"type": "string", "example": 'Basic realm="humantask"'},
    },
    "Retry-After": {
        "description": "Seconds after which the request may be retried.",
        "schema": {"type": "integer", "minimum": 0},
    },
    "Link": {
        "description": 'Present when more tasks follow: `<next page URL>; rel="next"`.',
        "schema": {
            "type": "string",
            "example": '<http://localhost:8080/v1/tasks?limit=100&offset=100>; rel="next"',
        },
    },
}


@dataclass(frozen=True)
class ErrorResponse:
    name: str
    description: str
    headers: tuple[str, ...] = ()


# API.md section 8: every error is an `ErrorBody`.
ERROR_RESPONSES: dict[int, ErrorResponse] = {
    400: ErrorResponse("BadRequest", "Bad parameters; the message names the field."),
    401: ErrorResponse(
        "Unauthorized", "Missing or unknown credentials.", headers=("WWW-Authenticate",)
    ),
    404: ErrorResponse("NotFound", "Unknown task (or another customer's task), or unknown path."),
    405: ErrorResponse("MethodNotAllowed", "The path exists but not with this method."),
    409: ErrorResponse("Conflict", "The request conflicts with the task's state."),
    413: ErrorResponse("PayloadTooLarge", "The body is over 1 MiB."),
    415: ErrorResponse("UnsupportedMediaType", "The body is neither JSON nor a form."),
    429: ErrorResponse(
        "TooManyRequests",
        "Over `RATE_LIMIT_PER_SECOND` requests a second with this credential, or too many "
        "failed authentications from this address.",
        headers=("Retry-After",),
    ),
    503: ErrorResponse(
        "ServiceUnavailable",
        "The broker or a service did not answer in time, or the gateway sheds load "
        "(`GATEWAY_MAX_IN_FLIGHT` requests in flight).",
        headers=("Retry-After",),
    ),
}

TAGS: dict[str, str] = {
    "tasks": "Customer endpoints (Scale v1 compatible).",
    "work": "Worker endpoints.",
    "operations": "Health and metrics, without authentication.",
}

# Path parameters, by the name used between braces in `Route.path`.
PATH_PARAMETERS: dict[str, Json] = {
    "task_id": {
        "name": "task_id",
        "in": "path",
        "required": True,
        "description": "The task's id: 24 lowercase hex characters.",
        "schema": {"type": "string", "pattern": TASK_ID_PATTERN.pattern},
    },
}


@dataclass(frozen=True)
class Success:
    """One success response of a route: a model, an array of it, or no content."""

    status: int
    description: str
    model: type[BaseModel] | None = None
    many: bool = False
    headers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Route:
    """One HTTP operation of the gateway. Append to `ROUTES` to publish a new endpoint.

    `errors` lists the statuses of `ERROR_RESPONSES` the operation can answer; `405` and
    an unknown path's `404` apply to every path and are described once, in `info`.
    """

    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    successes: tuple[Success, ...]
    errors: tuple[int, ...]
    security: str = CUSTOMER_AUTH
    body_model: type[BaseModel] | None = None
    form_body: bool = False  # the body may also be a form (`categories[]=a` or `categories=a`)
    query_model: type[BaseModel] | None = None
    description: str = ""


_CREATE_DESCRIPTION = (
    "Creates a categorization task. The task is durable once this returns. "
    "The same `unique_id` with the same parameters returns the original task; "
    "with different parameters it is a `409` whose message names the existing `task_id`. "
    "`metadata` can only be sent in a JSON body."
)


def _create_route(path: str, operation_id: str, summary: str) -> Route:
    return Route(
        method="post",
        path=path,
        operation_id=operation_id,
        summary=summary,
        tag="tasks",
        body_model=CreateTaskRequest,
        form_body=True,
        successes=(Success(200, "The new task, `pending`.", model=Task),),
        errors=(400, 401, 409, 413, 415, 429, 503),
        description=_CREATE_DESCRIPTION,
    )


ROUTES: list[Route] = [
    _create_route(
        "/v1/task/categorize", "createCategorizationTask", "Create a categorization task"
    ),
    _create_route(
        "/v1/task/categorization",
        "createCategorizationTaskAlias",
        "Create a categorization task (alias of /v1/task/categorize)",
    ),
    Route(
        method="get",
        path="/v1/task/{task_id}",
        operation_id="getTask",
        summary="Retrieve a task",
        tag="tasks",
        successes=(Success(200, "The task.", model=Task),),
        errors=(401, 404, 429, 503),
        description="A task of another customer is a `404`, never a `403`.",
    ),
    Route(
        method="get",
        path="/v1/tasks",
        operation_id="listTasks",
        summary="List the caller's tasks, newest first",
        tag="tasks",
        query_model=TaskListQuery,
        successes=(Success(200, "One page of tasks.", model=Task, many=True, headers=("Link",)),),
        errors=(400, 401, 429, 503),
        description="`start_time` <= `created_at` < `end_time`.",
    ),
    Route(
        method="post",
        path="/v1/task/{task_id}/cancel",
        operation_id="cancelTask",
        summary="Cancel a pending task",
        tag="tasks",
        successes=(Success(200, "The task, `canceled` (canceling twice is a no-op).", model=Task),),
        errors=(401, 404, 409, 429, 503),
        description="Canceling a completed task is a `409`. Cancel revokes a worker's claim.",
    ),
    Route(
        method="get",
        path="/v1/task/{task_id}/callbacks",
        operation_id="listTaskCallbacks",
        summary="The task's callback delivery log, oldest first",
        tag="tasks",
        successes=(
            Success(
                200,
                "The attempts so far; empty until the task completes.",
                model=CallbackAttempt,
                many=True,
            ),
        ),
        errors=(401, 404, 429, 503),
        description="At most two attempts: the first when the task completes and, unless "
        "it got a `200`, one retry after `CALLBACK_RETRY_DELAY_SECONDS`. "
        "A task of another customer is a `404`.",
    ),
    Route(
        method="post",
        path="/v1/work/claim",
        operation_id="claimWork",
        summary="Lease the oldest pending task",
        tag="work",
        security=WORKER_AUTH,
        successes=(
            Success(
                200, "The task, leased to the caller until `lease_expires_at`.", model=WorkItem
            ),
            Success(204, "Nothing to do: no pending task is free."),
        ),
        errors=(401, 429, 503),
        description="Leases the oldest pending task nobody holds for `WORK_LEASE_SECONDS`. A "
        "worker that holds a live lease gets that task again (a reload leaks no "
        "lease); two workers never hold the same task; an expired lease returns "
        "the task to the pool. The body, if any, is ignored.",
    ),
    Route(
        method="post",
        path="/v1/work/{task_id}/submit",
        operation_id="submitWork",
        summary="Complete a leased task with a category",
        tag="work",
        security=WORKER_AUTH,
        body_model=SubmitWorkRequest,
        form_body=True,
        successes=(
            Success(200, "The task, `completed`, in the worker's view.", model=CompletedWork),
        ),
        errors=(400, 401, 404, 409, 413, 415, 429, 503),
        description="The caller must hold the live lease on the task: otherwise `409` (never "
        "claimed, expired, released, canceled or already completed). A category "
        "the task does not offer is a `400`.",
    ),
    Route(
        method="post",
        path="/v1/work/{task_id}/release",
        operation_id="releaseWork",
        summary="Give a lease back",
        tag="work",
        security=WORKER_AUTH,
        successes=(Success(204, "Released: the task is back in the pool at once."),),
        errors=(401, 404, 409, 429, 503),
        description="The caller must hold the live lease on the task, otherwise `409`.",
    ),
]

_OPENAPI_INFO_DESCRIPTION = """\
The customer API of humantask, compatible with the Scale v1 API.

Bodies may be `application/json` or `application/x-www-form-urlencoded`; in a form an
array is `categories[]=a&categories[]=b` or `categories=a&categories=b`.

Every error is an `ErrorBody`. Besides the errors each operation lists, any path
answers `404` when it does not exist and `405` when it does not take the method
(see `components.responses`). Malformed input is always a 4xx, never a 500.
"""


def build_openapi() -> Json:
    """The OpenAPI 3.1 document of the gateway's HTTP API."""
    schemas = collect_schemas(_openapi_model_uses(ROUTES))
    paths = _route_paths(ROUTES, schemas)
    paths.update(_operational_paths())
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "humantask API",
            "version": API_VERSION,
            "description": _OPENAPI_INFO_DESCRIPTION,
        },
        "servers": [{"url": "http://localhost:8080", "description": "A local gateway."}],
        "tags": _used_tags([*(route.tag for route in ROUTES), "operations"]),
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.components.items())),
            "parameters": {
                _parameter_component_name(name): copy.deepcopy(parameter)
                for name, parameter in PATH_PARAMETERS.items()
            },
            "headers": copy.deepcopy(RESPONSE_HEADERS),
            "responses": _error_response_components(schemas),
            "securitySchemes": copy.deepcopy(SECURITY_SCHEMES),
        },
    }


def _used_tags(tags: Iterable[str]) -> list[Json]:
    return [{"name": tag, "description": TAGS[tag]} for tag in dict.fromkeys(tags)]


def _openapi_model_uses(routes: Iterable[Route]) -> list[ModelUse]:
    uses: list[ModelUse] = [(ErrorBody, "serialization")]
    for route in routes:
        if route.body_model is not None:
            uses.append((route.body_model, "validation"))
        if route.query_model is not None:
            uses.append((route.query_model, "validation"))
        uses.extend((s.model, "serialization") for s in route.successes if s.model is not None)
    return uses


def _route_paths(routes: Iterable[Route], schemas: Schemas) -> Json:
    paths: Json = {}
    for route in routes:
        operations = paths.setdefault(route.path, {})
        if route.method in operations:
            raise ValueError(f"two routes for {route.method.upper()} {route.path}")
        operations[route.method] = _operation(route, schemas)
    return paths


def _operation(route: Route, schemas: Schemas) -> Json:
    operation: Json = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": [route.tag],
    }
    if route.description:
        operation["description"] = route.description
    operation["security"] = [{route.security: []}]
    parameters = _path_parameters(route.path) + _query_parameters(route.query_model, schemas)
    if parameters:
        operation["parameters"] = parameters
    if route.body_model is not None:
        operation["requestBody"] = _request_body(route, schemas)
    operation["responses"] = {
        **{str(s.status): _success_response(s, schemas) for s in route.successes},
        **{str(status): _error_response_ref(status) for status in sorted(route.errors)},
    }
    return operation


def _parameter_component_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))  # task_id -> TaskId


def _path_parameters(path: str) -> list[Json]:
    names = re.findall(r"\{(\w+)\}", path)
    unknown = [name for name in names if name not in PATH_PARAMETERS]
    if unknown:
        raise ValueError(f"{path}: describe {unknown} in PATH_PARAMETERS")
    return [{"$ref": f"#/components/parameters/{_parameter_component_name(n)}"} for n in names]


def _query_parameters(model: type[BaseModel] | None, schemas: Schemas) -> list[Json]:
    """One query parameter per field of the query model, in the model's field order."""
    if model is None:
        return []
    model_schema = schemas.components[schemas.name(model, "validation")]
    required = set(model_schema.get("required", []))
    parameters = []
    for name, field_schema in model_schema["properties"].items():
        schema = without_null(field_schema)
        schema.pop("title", None)
        parameter: Json = {"name": name, "in": "query", "required": name in required}
        if "description" in schema:
            parameter["description"] = schema.pop("description")
        parameter["schema"] = schema
        parameters.append(parameter)
    return parameters


def _request_body(route: Route, schemas: Schemas) -> Json:
    assert route.body_model is not None
    content: Json = {JSON_MEDIA_TYPE: {"schema": schemas.ref(route.body_model, "validation")}}
    if route.form_body:
        content[FORM_MEDIA_TYPE] = _form_media_type(route.body_model, schemas)
    return {"required": True, "content": content}


def _form_media_type(model: type[BaseModel], schemas: Schemas) -> Json:
    """The body model as a form; a form schema is registered once per model."""
    json_name = schemas.name(model, "validation")
    form_name = f"{json_name}Form"
    if form_name in schemas.components:
        form_ref = {"$ref": SCHEMA_REF_TEMPLATE.format(model=form_name)}
    else:
        form_ref = schemas.add(form_name, form_schema(schemas.components[json_name]))
    form = schemas.components[form_name]
    array_fields = [
        name for name, prop in form["properties"].items() if "array" in json_types(prop)
    ]
    media_type: Json = {"schema": form_ref}
    if array_fields:
        media_type["encoding"] = {name: {"style": "form", "explode": True} for name in array_fields}
    return media_type


def form_schema(json_body: Json) -> Json:
    """A JSON body's schema as `application/x-www-form-urlencoded`.

    Object fields cannot be sent in a form and are left out; an array field may also be
    sent as `name[]` (the seed's curl), so a required array needs either spelling.
    """
    properties: Json = {}
    required: list[str] = []
    either_spelling: list[Json] = []
    for name, field_schema in json_body["properties"].items():
        schema = without_null(field_schema)
        kinds = json_types(schema)
        if "object" in kinds:
            continue
        properties[name] = schema
        is_required = name in json_body.get("required", [])
        if "array" in kinds:
            properties[f"{name}[]"] = copy.deepcopy(schema)
            if is_required:
                either_spelling.append(
                    {"anyOf": [{"required": [name]}, {"required": [f"{name}[]"]}]}
                )
        elif is_required:
            required.append(name)
    form: Json = {
        "title": f"{json_body['title']}Form",
        "description": f"{json_body['title']} sent as a form; object fields are JSON-only.",
        "type": "object",
        "properties": properties,
        "required": required,
    }
    if either_spelling:
        form["allOf"] = either_spelling
    return form


def _success_response(success: Success, schemas: Schemas) -> Json:
    response: Json = {"description": success.description}
    if success.headers:
        response["headers"] = {
            name: {"$ref": f"#/components/headers/{name}"} for name in success.headers
        }
    if success.model is not None:
        schema = schemas.ref(success.model)
        if success.many:
            schema = {"type": "array", "items": schema}
        response["content"] = {JSON_MEDIA_TYPE: {"schema": schema}}
    return response


def _error_response_ref(status: int) -> Json:
    return {"$ref": f"#/components/responses/{ERROR_RESPONSES[status].name}"}


def _error_response_components(schemas: Schemas) -> Json:
    error_body = schemas.ref(ErrorBody)
    components: Json = {}
    for error in ERROR_RESPONSES.values():
        response: Json = {"description": error.description}
        if error.headers:
            response["headers"] = {
                name: {"$ref": f"#/components/headers/{name}"} for name in error.headers
            }
        response["content"] = {JSON_MEDIA_TYPE: {"schema": dict(error_body)}}
        components[error.name] = response
    return components


def _operational_paths() -> Json:
    """`/healthz`, `/readyz`, `/metrics` (API.md section 9): no auth; `/metrics` only on
    HEALTH_PORT, the other two on the gateway's public port as well."""
    status_schema = {
        "type": "object",
        "properties": {"status": {"type": "string"}},
        "required": ["status"],
    }
    readiness_schema = {
        "type": "object",
        "properties": {
            "status": {"type": "string", "enum": ["ready", "not ready"]},
            "checks": {"type": "object", "additionalProperties": {"type": "boolean"}},
        },
        "required": ["status", "checks"],
    }

    def operation(operation_id: str, summary: str, responses: Json) -> Json:
        return {
            "get": {
                "operationId": operation_id,
                "summary": summary,
                "tags": ["operations"],
                "security": [],
                "responses": responses,
            }
        }

    def json_response(description: str, schema: Json) -> Json:
        return {
            "description": description,
            "content": {JSON_MEDIA_TYPE: {"schema": copy.deepcopy(schema)}},
        }

    return {
        "/healthz": operation(
            "healthz",
            "Liveness",
            {
                "200": json_response("The process is alive.", status_schema),
            },
        ),
        "/readyz": operation(
            "readyz",
            "Readiness: broker and database reachable",
            {
                "200": json_response("Ready.", readiness_schema),
                "503": json_response(
                    "Not ready; `checks` says which dependency failed.", readiness_schema
                ),
            },
        ),
        "/metrics": {
            **operation(
                "metrics",
                "Prometheus metrics, on HEALTH_PORT only",
                {
                    "200": {
                        "description": "Prometheus text exposition format.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                },
            ),
            # Never on the public port: every service serves it on its HEALTH_PORT.
            "servers": [
                {
                    "url": "http://localhost:8081",
                    "description": "A service's HEALTH_PORT (not published)",
                }
            ],
        },
    }
