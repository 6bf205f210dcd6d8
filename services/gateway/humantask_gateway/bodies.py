"""Reading what customers send: JSON or form bodies, query strings, and the 400s they earn."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from humantask_shared.core.errors import InvalidRequest, RequestTimeout, UnsupportedMediaType

from .limits import BODY_DEADLINE

ModelT = TypeVar("ModelT", bound=BaseModel)

JSON_TYPE = "application/json"
FORM_TYPE = "application/x-www-form-urlencoded"
# Form fields that are arrays; in a form they come as `name[]=a&name[]=b` or `name=a&name=b`.
FORM_ARRAY_FIELDS = frozenset({"categories"})
# Form fields that only make sense as JSON.
JSON_ONLY_FIELDS = frozenset({"metadata"})


def parse_form(body: bytes) -> dict[str, Any]:
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError as exc:
        raise InvalidRequest("body: form data must be UTF-8") from exc
    fields: dict[str, Any] = {}
    for raw_name, value in pairs:
        name = raw_name.removesuffix("[]")
        if name in JSON_ONLY_FIELDS:
            raise InvalidRequest(f"{name}: only accepted in a JSON body")
        if name in FORM_ARRAY_FIELDS:
            fields.setdefault(name, []).append(value)
        elif raw_name.endswith("[]"):
            raise InvalidRequest(f"{name}: must be a single value, not an array")
        else:
            fields[name] = value
    return fields


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:  # also invalid UTF-8 and absurd nesting
        raise InvalidRequest(f"body: malformed JSON ({exc.msg})") from exc
    if not isinstance(value, dict):
        raise InvalidRequest("body: must be a JSON object")
    return value


async def read_fields(request: web.Request) -> dict[str, Any]:
    """The body as a dict of fields, from JSON or a form; an empty body is no fields.

    A body still arriving at the request's deadline (`limits.BODY_DEADLINE`) is 408."""
    try:
        async with asyncio.timeout_at(request.get(BODY_DEADLINE)):
            body = await request.read()  # aiohttp answers 413 past the app's client_max_size
    except TimeoutError as exc:
        raise RequestTimeout("request body not received in time") from exc
    if not body:
        return {}
    if request.content_type == JSON_TYPE:
        return parse_json_object(body)
    if request.content_type == FORM_TYPE:
        return parse_form(body)
    raise UnsupportedMediaType(
        f"Content-Type must be {JSON_TYPE} or {FORM_TYPE}, not {request.content_type or 'missing'}"
    )


def describe_validation_error(exc: ValidationError) -> str:
    """The first problem, naming its field: `categories: List should have at least 2 items`."""
    error = exc.errors(include_url=False)[0]
    message = error["msg"].removeprefix("Value error, ")
    location = ".".join(str(part) for part in error["loc"])
    if error["type"] == "missing":
        message = "is required"
    return f"{location}: {message}" if location else message


def validate(model: type[ModelT], fields: Mapping[str, Any]) -> ModelT:
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        raise InvalidRequest(describe_validation_error(exc)) from exc
