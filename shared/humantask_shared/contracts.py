"""The OpenAPI and AsyncAPI documents of humantask, derived from the pydantic models.

Why: the models in `models.py` and `messages/` are the single source of truth. The
documents in `contracts/` are generated from them (`make contracts`, which runs
`scripts/generate_contracts.py`) and a unit test fails when they drift apart.

Extension points, for whoever adds an endpoint or a message:

- a new HTTP endpoint: append a `Route` to `ROUTES` (worker endpoints, the callback log);
- a new command or event: register it in `COMMANDS` / `EVENTS`; it appears by itself;
- a new consumer of an event: add it to `EVENT_SUBSCRIBERS`.

Everything here is pure and deterministic: the same models give byte-identical YAML.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from .messages.commands import COMMANDS, Command, Reply
from .messages.events import EVENTS, Event
from .messaging import (
    COMMANDS_EXCHANGE,
    DEAD_LETTER_ARGUMENTS,
    DEAD_LETTER_EXCHANGE,
    DEADLINE_HEADER,
    EVENTS_EXCHANGE,
    NOTIFIER_COMMANDS_EXCHANGE,
    NOTIFIER_COMMANDS_QUEUE,
    REQUEST_ID_HEADER,
    TASKSTORE_COMMANDS_QUEUE,
)
from .models import (
    TASK_ID_PATTERN,
    CallbackAttempt,
    CreateTaskRequest,
    ErrorBody,
    Task,
    TaskListQuery,
)
from .work import CompletedWork, SubmitWorkRequest, WorkItem

Json = dict[str, Any]

API_VERSION = "1.0.0"  # the contract's version; deliberately not the package version
SCHEMA_REF_TEMPLATE = "#/components/schemas/{model}"
GENERATED_HEADER = (
    "# Generated from the pydantic models by scripts/generate_contracts.py.\n"
    "# Do not edit by hand: change the models, then run `make contracts`.\n"
)

# ---------------------------------------------------------------------------------------
# JSON Schema, shared by both documents
# ---------------------------------------------------------------------------------------

ModelUse = tuple[type[BaseModel], JsonSchemaMode]


@dataclass(frozen=True)
class Schemas:
    """The JSON Schemas of some models, ready for `components.schemas`.

    `ref()` must be used rather than guessing names: pydantic names a model that is
    used both as input and as output `Name-Input` / `Name-Output`.
    """

    refs: dict[ModelUse, Json]
    components: dict[str, Json]

    def ref(self, model: type[BaseModel], mode: JsonSchemaMode = "serialization") -> Json:
        return dict(self.refs[(model, mode)])

    def name(self, model: type[BaseModel], mode: JsonSchemaMode = "serialization") -> str:
        ref: str = self.refs[(model, mode)]["$ref"]
        return ref.rsplit("/", 1)[1]

    def add(self, name: str, schema: Json) -> Json:
        """A hand-made schema next to the generated ones; returns its `$ref`."""
        if name in self.components:
            raise ValueError(f"schema name {name!r} is taken by a model")
        self.components[name] = schema
        return {"$ref": SCHEMA_REF_TEMPLATE.format(model=name)}


def collect_schemas(uses: Iterable[ModelUse]) -> Schemas:
    """One pydantic pass over all models, so shared sub-models are defined once."""
    unique_uses = list(dict.fromkeys(uses))
    refs, top = models_json_schema(unique_uses, ref_template=SCHEMA_REF_TEMPLATE)
    components = dict(sorted(top.get("$defs", {}).items()))
    return Schemas(refs={use: refs[use] for use in unique_uses}, components=components)


def without_null(schema: Json) -> Json:
    """A field's schema minus its `null` branch: query strings and forms omit, not null."""
    branches = schema.get("anyOf")
    if branches is None:
        return copy.deepcopy(schema)
    rest = [branch for branch in branches if branch != {"type": "null"}]
    outer = {key: value for key, value in schema.items() if key != "anyOf"}
    if "default" in outer and outer["default"] is None:
        del outer["default"]
    if len(rest) == 1:
        return copy.deepcopy({**rest[0], **outer})
    return copy.deepcopy({**outer, "anyOf": rest})


def json_types(schema: Json) -> set[str]:
    """The JSON types a schema admits (a `$ref` is a nested model: an object)."""
    if "$ref" in schema:
        return {"object"}
    kinds = {schema["type"]} if isinstance(schema.get("type"), str) else set()
    for branch in schema.get("anyOf", []) + schema.get("oneOf", []):
        kinds |= json_types(branch)
    return kinds


# ---------------------------------------------------------------------------------------
# OpenAPI 3.1: the customer (and later worker) HTTP API of the gateway
# ---------------------------------------------------------------------------------------

CUSTOMER_AUTH = "customerApiKey"
WORKER_AUTH = "workerToken"
JSON_MEDIA_TYPE = "application/json"
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
    503: ErrorResponse(
        "ServiceUnavailable",
        "The broker or a service did not answer in time.",
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
        errors=(400, 401, 409, 413, 415, 503),
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
        errors=(401, 404, 503),
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
        errors=(400, 401, 503),
        description="`start_time` <= `created_at` < `end_time`.",
    ),
    Route(
        method="post",
        path="/v1/task/{task_id}/cancel",
        operation_id="cancelTask",
        summary="Cancel a pending task",
        tag="tasks",
        successes=(Success(200, "The task, `canceled` (canceling twice is a no-op).", model=Task),),
        errors=(401, 404, 409, 503),
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
        errors=(401, 404, 503),
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
        errors=(401, 503),
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
        errors=(400, 401, 404, 409, 413, 415, 503),
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
        errors=(401, 404, 409, 503),
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


# ---------------------------------------------------------------------------------------
# AsyncAPI 3.0: what the services say to each other over RabbitMQ
# ---------------------------------------------------------------------------------------

AMQP_BINDING_VERSION = "0.3.0"


@dataclass(frozen=True)
class CommandRoute:
    """Who sends a command, who answers it, the exchange it is published on and the
    queue it waits in meanwhile."""

    sender: str
    handler: str
    queue: str
    exchange: str = COMMANDS_EXCHANGE


COMMAND_SENDER = "gateway"
COMMAND_HANDLER = "taskstore"
# Where a command goes unless COMMAND_HANDLERS says otherwise; its sender is the one of
# `Command.senders` (which the receiver enforces).
DEFAULT_COMMAND_ROUTE = (COMMAND_HANDLER, TASKSTORE_COMMANDS_QUEUE, COMMANDS_EXCHANGE)
COMMAND_HANDLERS: dict[str, tuple[str, str, str]] = {
    "callback.list": ("notifier", NOTIFIER_COMMANDS_QUEUE, NOTIFIER_COMMANDS_EXCHANGE),
}
EVENT_PUBLISHER = "taskstore"
# Who consumes which events (routing keys). Add a service here when it starts consuming.
EVENT_SUBSCRIBERS: dict[str, tuple[str, ...]] = {
    "gateway": ("credential.changed",),
    "notifier": ("credential.changed", "task.completed"),
}
REPLY_QUEUE_ADDRESS = "{owner}.replies.{id}"  # see RpcClient.start in messaging.py

COMMAND_HEADERS_SCHEMA = "CommandHeaders"
TRACED_HEADERS_SCHEMA = "TracedHeaders"
REPLIES_CHANNEL = "replies"

_ASYNCAPI_INFO_DESCRIPTION = f"""\
Messages between the humantask services on RabbitMQ.

Commands go from the {COMMAND_SENDER} to the {COMMAND_HANDLER} (unless their operations
say otherwise) on the direct exchange `{COMMANDS_EXCHANGE}` (the notifier's on
`{NOTIFIER_COMMANDS_EXCHANGE}`), routed by command name into the durable queue of the
service that answers them (`{TASKSTORE_COMMANDS_QUEUE}`, `{NOTIFIER_COMMANDS_QUEUE}`).
Each is answered with a `Reply` on the caller's own reply queue (the command's
`reply_to`, matched by `correlation_id`). A command expires when its caller stops
waiting (`{DEADLINE_HEADER}`, and the AMQP expiration). Every command carries the AMQP
`user_id` of its sender's broker user (the broker refuses any other), and its receiver
refuses it, answering `unauthorized`, unless that user is one allowed to send it.

Events go from the {EVENT_PUBLISHER} to the topic exchange `{EVENTS_EXCHANGE}`,
persistent, routed by event name. Consumers deduplicate on `event_id`. Every gateway and
notifier hears `credential.changed` on an exclusive, auto-delete queue of its own
(`<service>.credentials.<id>`): a fanout per process, not competing consumers.

A message a service cannot handle is dead-lettered through `{DEAD_LETTER_EXCHANGE}`
into `<queue>.dead-letter`, a bounded queue (the oldest messages are dropped past its
length, and each expires after a week); a command whose handler failed is answered with
an `unavailable` error first, so its caller never waits for its timeout.
"""


def command_id(command: type[Command]) -> str:
    return command.__name__


def reply_id(command: type[Command]) -> str:
    return f"{command.__name__}Reply"


def event_id(event: type[Event]) -> str:
    return event.__name__


def build_asyncapi() -> Json:
    """The AsyncAPI 3.0 document of the commands, replies and events on RabbitMQ."""
    commands = [COMMANDS[name] for name in sorted(COMMANDS)]
    events = [EVENTS[key] for key in sorted(EVENTS)]
    schemas = collect_schemas(_asyncapi_model_uses(commands, events))
    _add_header_schemas(schemas)
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "humantask messaging",
            "version": API_VERSION,
            "description": _ASYNCAPI_INFO_DESCRIPTION,
        },
        "defaultContentType": JSON_MEDIA_TYPE,
        "servers": {
            "rabbitmq": {
                "host": "localhost:5672",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "description": "The broker named by `AMQP_URL`.",
            },
        },
        "channels": {
            **{f"command.{c.name}": _command_channel(c) for c in commands},
            **_command_queue_channels(commands),
            REPLIES_CHANNEL: _replies_channel(commands),
            **{f"event.{e.routing_key}": _event_channel(e) for e in events},
        },
        "operations": {
            **{
                f"{command_route(c).sender}.send.{c.name}": _send_command_operation(c)
                for c in commands
            },
            **{
                f"{command_route(c).handler}.receive.{c.name}": _receive_command_operation(c)
                for c in commands
            },
            **{
                f"{EVENT_PUBLISHER}.send.{e.routing_key}": _publish_event_operation(e)
                for e in events
            },
            **_subscriber_operations(),
        },
        "components": {
            "schemas": dict(sorted(schemas.components.items())),
            "messages": {
                **{command_id(c): _command_message(c, schemas) for c in commands},
                "Reply": _reply_message("Reply", "The answer to any command.", schemas.ref(Reply)),
                **{reply_id(c): _typed_reply_message(c, schemas) for c in commands},
                **{event_id(e): _event_message(e, schemas) for e in events},
            },
            "correlationIds": {
                "command": {
                    "description": "The AMQP `correlation_id` property: a reply carries its "
                    "command's.",
                    "location": "$message.header#/correlation_id",
                },
            },
        },
    }


def _asyncapi_model_uses(
    commands: list[type[Command]], events: list[type[Event]]
) -> list[ModelUse]:
    uses: list[ModelUse] = [(command, "validation") for command in commands]
    uses.append((Reply, "serialization"))
    uses.extend((c.result_model, "serialization") for c in commands if c.result_model is not None)
    uses.extend((event, "serialization") for event in events)
    return uses


def _add_header_schemas(schemas: Schemas) -> None:
    request_id = {
        "type": "string",
        "description": "Follows a task from the HTTP request to the callback; may be empty.",
    }
    schemas.add(
        TRACED_HEADERS_SCHEMA,
        {
            "type": "object",
            "properties": {REQUEST_ID_HEADER: request_id},
        },
    )
    schemas.add(
        COMMAND_HEADERS_SCHEMA,
        {
            "type": "object",
            "properties": {
                REQUEST_ID_HEADER: dict(request_id),
                DEADLINE_HEADER: {
                    "type": "integer",
                    "description": "Unix milliseconds after which nobody waits for the "
                    "reply; a later command is dropped unanswered.",
                },
            },
            "required": [REQUEST_ID_HEADER, DEADLINE_HEADER],
        },
    )


def _ref(*parts: str) -> Json:
    """A `$ref` to `#/parts/...`, escaping `/` and `~` in each part (JSON Pointer)."""
    escaped = (part.replace("~", "~0").replace("/", "~1") for part in parts)
    return {"$ref": "#/" + "/".join(escaped)}


def _amqp_exchange(name: str, kind: str) -> Json:
    return {"name": name, "type": kind, "durable": True, "autoDelete": False, "vhost": "/"}


def _amqp_queue(
    name: str, durable: bool = True, exclusive: bool = False, auto_delete: bool = False
) -> Json:
    return {
        "name": name,
        "durable": durable,
        "exclusive": exclusive,
        "autoDelete": auto_delete,
        "vhost": "/",
    }


def _amqp_bindings(binding: Json) -> Json:
    return {"amqp": {**binding, "bindingVersion": AMQP_BINDING_VERSION}}


def _routing_key_bindings(exchange: str, kind: str) -> Json:
    """A channel that is a routing key on an exchange (AMQP binding `is: routingKey`)."""
    return _amqp_bindings({"is": "routingKey", "exchange": _amqp_exchange(exchange, kind)})


def _queue_bindings(queue: Json, arguments: Json | None = None) -> Json:
    """A channel that is a queue; `arguments` are its `x-` queue arguments."""
    return _amqp_bindings({"is": "queue", "queue": queue, **(arguments or {})})


def command_route(command: type[Command]) -> CommandRoute:
    handler, queue, exchange = COMMAND_HANDLERS.get(command.name, DEFAULT_COMMAND_ROUTE)
    (sender,) = command.senders  # one sender each
    return CommandRoute(sender, handler, queue, exchange)


def _queue_channel_id(queue: str) -> str:
    return f"queue.{queue}"


def _command_channel(command: type[Command]) -> Json:
    return {
        "address": command.name,
        "title": f"Command {command.name}",
        "description": f"Routed by `{command_route(command).exchange}` into "
        f"`{command_route(command).queue}`.",
        "messages": {command_id(command): _ref("components", "messages", command_id(command))},
        "bindings": _routing_key_bindings(command_route(command).exchange, "direct"),
    }


def _command_queue_channels(commands: list[type[Command]]) -> Json:
    """Each command queue and its dead-letter queue, with the commands routed there."""
    channels: Json = {}
    queues: dict[str, list[type[Command]]] = {}
    for command in commands:
        queues.setdefault(command_route(command).queue, []).append(command)
    for queue, routed in queues.items():
        handler = command_route(routed[0]).handler
        channels[_queue_channel_id(queue)] = _commands_queue_channel(
            queue, handler, routed, command_route(routed[0]).exchange
        )
        channels[_queue_channel_id(f"{queue}.dead-letter")] = _dead_letter_channel(
            queue, handler, routed
        )
    return channels


def _commands_queue_channel(
    queue: str, handler: str, commands: list[type[Command]], exchange: str
) -> Json:
    return {
        "address": queue,
        "title": f"The {handler}'s command queue",
        "description": f"Bound to `{exchange}` with the name of each command the "
        f"{handler} answers; competing consumers. Dead-letters into "
        f"`{queue}.dead-letter`.",
        "messages": {
            command_id(c): _ref("components", "messages", command_id(c)) for c in commands
        },
        "bindings": _queue_bindings(
            _amqp_queue(queue),
            arguments={
                "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
                "x-dead-letter-routing-key": queue,
            },
        ),
    }


def _dead_letter_channel(queue: str, handler: str, commands: list[type[Command]]) -> Json:
    dead_letter = f"{queue}.dead-letter"
    return {
        "address": dead_letter,
        "title": f"Commands the {handler} could not handle",
        "description": f"Bound to `{DEAD_LETTER_EXCHANGE}` with routing key "
        f"`{queue}`; kept for inspection, never consumed, bounded (the "
        "oldest dropped first, each kept a week at most).",
        "messages": {
            command_id(c): _ref("components", "messages", command_id(c)) for c in commands
        },
        "bindings": _queue_bindings(
            _amqp_queue(dead_letter), arguments=dict(DEAD_LETTER_ARGUMENTS)
        ),
    }


def _replies_channel(commands: list[type[Command]]) -> Json:
    return {
        "address": REPLY_QUEUE_ADDRESS,
        "title": "A caller's reply queue",
        "description": "Exclusive to one caller; replies reach it through the default exchange.",
        "parameters": {
            "owner": {"description": "The service waiting for replies.", "examples": ["gateway"]},
            "id": {"description": "A random hex id, unique per connection."},
        },
        "messages": {
            "Reply": _ref("components", "messages", "Reply"),
            **{reply_id(c): _ref("components", "messages", reply_id(c)) for c in commands},
        },
        "bindings": _queue_bindings(
            _amqp_queue(REPLY_QUEUE_ADDRESS, durable=False, exclusive=True, auto_delete=True)
        ),
    }


def _event_channel(event: type[Event]) -> Json:
    return {
        "address": event.routing_key,
        "title": f"Event {event.routing_key}",
        "messages": {event_id(event): _ref("components", "messages", event_id(event))},
        "bindings": _routing_key_bindings(EVENTS_EXCHANGE, "topic"),
    }


def _command_reply(command: type[Command]) -> Json:
    return {
        "address": {
            "description": "The command's AMQP `reply_to` property.",
            "location": "$message.header#/reply_to",
        },
        "channel": _ref("channels", REPLIES_CHANNEL),
        "messages": [_ref("channels", REPLIES_CHANNEL, "messages", reply_id(command))],
    }


def _send_command_operation(command: type[Command]) -> Json:
    channel = f"command.{command.name}"
    return {
        "action": "send",
        "channel": _ref("channels", channel),
        "title": f"{command_route(command).sender} sends {command.name}",
        "messages": [_ref("channels", channel, "messages", command_id(command))],
        "reply": _command_reply(command),
        "bindings": _amqp_bindings({"deliveryMode": 2, "mandatory": True}),
    }


def _receive_command_operation(command: type[Command]) -> Json:
    route = command_route(command)
    queue_channel = _queue_channel_id(route.queue)
    return {
        "action": "receive",
        "channel": _ref("channels", queue_channel),
        "title": f"{route.handler} handles {command.name}",
        "messages": [_ref("channels", queue_channel, "messages", command_id(command))],
        "reply": _command_reply(command),
        "bindings": _amqp_bindings({"ack": True}),
    }


def _publish_event_operation(event: type[Event]) -> Json:
    channel = f"event.{event.routing_key}"
    return {
        "action": "send",
        "channel": _ref("channels", channel),
        "title": f"{EVENT_PUBLISHER} publishes {event.routing_key}",
        "messages": [_ref("channels", channel, "messages", event_id(event))],
        "bindings": _amqp_bindings({"deliveryMode": 2, "mandatory": False}),
    }


def _subscriber_operations() -> Json:
    operations: Json = {}
    for service, routing_keys in sorted(EVENT_SUBSCRIBERS.items()):
        for routing_key in routing_keys:
            if routing_key not in EVENTS:
                raise ValueError(f"{service} subscribes to {routing_key!r}, not in EVENTS")
            channel = f"event.{routing_key}"
            operations[f"{service}.receive.{routing_key}"] = {
                "action": "receive",
                "channel": _ref("channels", channel),
                "title": f"{service} consumes {routing_key}",
                "messages": [_ref("channels", channel, "messages", event_id(EVENTS[routing_key]))],
                "bindings": _amqp_bindings({"ack": True}),
            }
    return operations


def _docstring_summary(model: type[BaseModel]) -> str | None:
    doc = model.__doc__
    return doc.strip().split("\n\n", 1)[0].replace("\n", " ") if doc else None


def _with_summary(message: Json, model: type[BaseModel]) -> Json:
    summary = _docstring_summary(model)
    if summary:
        message["summary"] = summary
    return message


def _command_message(command: type[Command], schemas: Schemas) -> Json:
    message: Json = {"name": command.name, "title": command.__name__}
    _with_summary(message, command)
    message.update(
        {
            "contentType": JSON_MEDIA_TYPE,
            "headers": {"$ref": SCHEMA_REF_TEMPLATE.format(model=COMMAND_HEADERS_SCHEMA)},
            "payload": schemas.ref(command, "validation"),
            "correlationId": _ref("components", "correlationIds", "command"),
            "bindings": _amqp_bindings({"messageType": command.name}),
        }
    )
    return message


def _reply_message(name: str, summary: str, payload: Json) -> Json:
    return {
        "name": name,
        "title": name,
        "summary": summary,
        "contentType": JSON_MEDIA_TYPE,
        "headers": {"$ref": SCHEMA_REF_TEMPLATE.format(model=TRACED_HEADERS_SCHEMA)},
        "payload": payload,
        "correlationId": _ref("components", "correlationIds", "command"),
    }


def _typed_reply_message(command: type[Command], schemas: Schemas) -> Json:
    """The `Reply` to one command, its `result` narrowed to the command's result model."""
    result: Json = {"type": "null"}
    if command.result_model is not None:
        result = {"anyOf": [schemas.ref(command.result_model), {"type": "null"}]}
    payload = {"allOf": [schemas.ref(Reply), {"type": "object", "properties": {"result": result}}]}
    return _reply_message(reply_id(command), f"The reply to {command.name}.", payload)


def _event_message(event: type[Event], schemas: Schemas) -> Json:
    message: Json = {"name": event.routing_key, "title": event.__name__}
    _with_summary(message, event)
    message.update(
        {
            "contentType": JSON_MEDIA_TYPE,
            "headers": {"$ref": SCHEMA_REF_TEMPLATE.format(model=TRACED_HEADERS_SCHEMA)},
            "payload": schemas.ref(event),
            "bindings": _amqp_bindings({"messageType": event.routing_key}),
        }
    )
    return message


# ---------------------------------------------------------------------------------------
# YAML
# ---------------------------------------------------------------------------------------


def render_yaml(document: Json) -> str:
    """Stable YAML: keys in insertion order, no anchors, multi-line strings as blocks.

    PyYAML is a dev/test dependency only: this is imported by the generator and tests,
    never by a running service.
    """
    import yaml

    class ContractDumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:  # repeated dicts are written out
            return True

    def represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.Node:
        style = "|" if "\n" in text else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)

    ContractDumper.add_representer(str, represent_str)
    body = yaml.dump(
        document,
        Dumper=ContractDumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )
    return GENERATED_HEADER + body


CONTRACT_FILES: dict[str, Callable[[], Json]] = {
    "openapi.yaml": build_openapi,
    "asyncapi.yaml": build_asyncapi,
}


def rendered_contracts() -> dict[str, str]:
    """File name (in `contracts/`) -> its expected content."""
    return {name: render_yaml(build()) for name, build in CONTRACT_FILES.items()}


__all__ = [
    "API_VERSION",
    "CONTRACT_FILES",
    "EVENT_SUBSCRIBERS",
    "ROUTES",
    "Route",
    "Success",
    "build_asyncapi",
    "build_openapi",
    "render_yaml",
    "rendered_contracts",
]
