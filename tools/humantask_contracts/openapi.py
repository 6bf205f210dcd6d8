"""OpenAPI 3.1: the HTTP API of the gateway, read from its live router.

The gateway's app is built by its production factory (nothing starts: no broker is
needed), and so is the app of its HEALTH_PORT; every route they serve carries its
declaration (`humantask_shared.runtime.http_routes.Endpoint`), and a route without one fails
the build. A route served only on HEALTH_PORT is documented with that server.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from dataclasses import dataclass

from aiohttp import web
from pydantic import BaseModel

from humantask_gateway.bootstrap import production_app
from humantask_gateway.settings import GatewaySettings
from humantask_shared.core.models import TASK_ID_PATTERN, ErrorBody
from humantask_shared.core.scale_models import MAX_NAME_LENGTH
from humantask_shared.runtime.health import health_app
from humantask_shared.runtime.http_routes import (
    CUSTOMER_AUTH,
    WORKER_AUTH,
    Operation,
    ResponseDoc,
    served_endpoints,
)

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


# docs/reference/contract.md §8: every error is an `ErrorBody`.
ERROR_RESPONSES: dict[int, ErrorResponse] = {
    400: ErrorResponse("BadRequest", "Bad parameters; the message names the field."),
    401: ErrorResponse(
        "Unauthorized", "Missing or unknown credentials.", headers=("WWW-Authenticate",)
    ),
    403: ErrorResponse(
        "Forbidden",
        "Past the customer's quota of stored bytes (the message starts with `quota:`), "
        "or a browser's cross-site request.",
    ),
    404: ErrorResponse(
        "NotFound",
        "Unknown task, project or batch (or another customer's), or unknown path.",
    ),
    405: ErrorResponse("MethodNotAllowed", "The path exists but not with this method."),
    409: ErrorResponse(
        "Conflict",
        "The request conflicts with the state of the task (or batch), or a name or "
        "`unique_id` is taken.",
    ),
    413: ErrorResponse("PayloadTooLarge", "The body is over 1 MiB."),
    415: ErrorResponse("UnsupportedMediaType", "The body is neither JSON nor a form."),
    429: ErrorResponse(
        "TooManyRequests",
        "Over `RATE_LIMIT_PER_SECOND` requests a second with this credential, too many "
        "requests in flight with it, too many failed authentications from this address, "
        "or (creating a task) past the customer's quota of pending tasks.",
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
    "scale": "Scale's current API for its official Python SDK (`/scale/v1`): tasks with "
    "Scale's fields, projects, batches, audits, tags.",
    "work": "Worker endpoints.",
    "quality": "What a customer knows of the workers who answer its tasks.",
    "operations": "Health and metrics, without authentication.",
    "reference": "This API's own description, without authentication.",
}

# Path parameters, by the name used between braces in `Endpoint.path`.
PATH_PARAMETERS: dict[str, Json] = {
    "task_id": {
        "name": "task_id",
        "in": "path",
        "required": True,
        "description": "The task's id: 24 lowercase hex characters.",
        "schema": {"type": "string", "pattern": TASK_ID_PATTERN.pattern},
    },
    "project_name": {
        "name": "project_name",
        "in": "path",
        "required": True,
        "description": "The project's name, percent-encoded.",
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_LENGTH},
    },
    "batch_name": {
        "name": "batch_name",
        "in": "path",
        "required": True,
        "description": "The batch's name, percent-encoded.",
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_LENGTH},
    },
}


_OPENAPI_INFO_DESCRIPTION = """\
The customer API of humantask, compatible with the Scale v1 API.

Bodies may be `application/json` or `application/x-www-form-urlencoded`; in a form an
array is `categories[]=a&categories[]=b` or `categories=a&categories=b`.

Every error is an `ErrorBody`. Besides the errors each operation lists, any path
answers `404` when it does not exist and `405` when it does not take the method
(see `components.responses`). Malformed input is always a 4xx, never a 500.
"""


HEALTH_PORT_SERVER: Json = {
    "url": "http://localhost:8081",
    "description": "A service's HEALTH_PORT (not published)",
}


@dataclass(frozen=True)
class Documented:
    """A route of the document: its method, path and operation, and whether it is served
    on HEALTH_PORT only."""

    method: str  # lowercase, as in the document
    path: str
    operation: Operation
    health_port_only: bool


def documented_routes(public: web.Application, health: web.Application) -> list[Documented]:
    """The documented routes `public` serves, then those only `health` serves."""
    public_endpoints = served_endpoints(public)
    health_only = [e for e in served_endpoints(health) if e not in public_endpoints]
    return [
        Documented(endpoint.method.lower(), endpoint.path, endpoint.openapi, health_port_only)
        for endpoints, health_port_only in ((public_endpoints, False), (health_only, True))
        for endpoint in endpoints
        if endpoint.openapi is not None
    ]


def build_openapi() -> Json:
    """The OpenAPI 3.1 document of the gateway's HTTP API."""
    gateway = production_app(GatewaySettings())
    return openapi_document(documented_routes(gateway, health_app(gateway)))


def openapi_document(routes: list[Documented]) -> Json:
    operations = [route.operation for route in routes]
    schemas = collect_schemas(_openapi_model_uses(operations))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "humantask API",
            "version": API_VERSION,
            "description": _OPENAPI_INFO_DESCRIPTION,
        },
        "servers": [{"url": "http://localhost:8080", "description": "A local gateway."}],
        "tags": _used_tags(operation.tag for operation in operations),
        "paths": _route_paths(routes, schemas),
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


def _openapi_model_uses(operations: Iterable[Operation]) -> list[ModelUse]:
    uses: list[ModelUse] = [(ErrorBody, "serialization")]
    for operation in operations:
        if operation.body_model is not None:
            uses.append((operation.body_model, "validation"))
        if operation.query_model is not None:
            uses.append((operation.query_model, "validation"))
        uses.extend((r.model, "serialization") for r in operation.responses if r.model is not None)
    return uses


def _route_paths(routes: Iterable[Documented], schemas: Schemas) -> Json:
    paths: Json = {}
    for route in routes:
        item = paths.setdefault(route.path, {})
        if route.method in item:
            raise ValueError(f"two routes for {route.method.upper()} {route.path}")
        item[route.method] = _operation(route.path, route.operation, schemas)
        if route.health_port_only:  # never on the public port
            item["servers"] = [copy.deepcopy(HEALTH_PORT_SERVER)]
    return paths


def _operation(path: str, operation: Operation, schemas: Schemas) -> Json:
    document: Json = {
        "operationId": operation.operation_id,
        "summary": operation.summary,
        "tags": [operation.tag],
    }
    if operation.description:
        document["description"] = operation.description
    document["security"] = [{operation.security: []}] if operation.security else []
    parameters = _path_parameters(path) + _query_parameters(operation.query_model, schemas)
    if parameters:
        document["parameters"] = parameters
    if operation.body_model is not None:
        document["requestBody"] = _request_body(operation.body_model, operation.form_body, schemas)
    document["responses"] = {
        **{str(r.status): _response(r, schemas) for r in operation.responses},
        **{str(status): _error_response_ref(status) for status in sorted(operation.errors)},
    }
    return document


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


def _request_body(model: type[BaseModel], form_body: bool, schemas: Schemas) -> Json:
    content: Json = {JSON_MEDIA_TYPE: {"schema": schemas.ref(model, "validation")}}
    if form_body:
        content[FORM_MEDIA_TYPE] = _form_media_type(model, schemas)
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
    sent as `name[]` (the v1 examples' curl), so a required array needs either spelling.
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


def _response(response: ResponseDoc, schemas: Schemas) -> Json:
    document: Json = {"description": response.description}
    if response.headers:
        document["headers"] = {
            name: {"$ref": f"#/components/headers/{name}"} for name in response.headers
        }
    if response.model is not None:
        schema = schemas.ref(response.model)
        if response.many:
            schema = {"type": "array", "items": schema}
        document["content"] = {response.media_type: {"schema": schema}}
    elif response.schema is not None:
        document["content"] = {response.media_type: {"schema": copy.deepcopy(response.schema)}}
    return document


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
