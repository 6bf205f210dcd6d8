"""Input checked against a model, and the `400` it earns: one message naming the field
(docs/reference/contract.md §8). The gateway checks what customers send with it; the
task-store checks what only it can complete (a task's parameters with its project's
defaults)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from .errors import InvalidRequest

ModelT = TypeVar("ModelT", bound=BaseModel)


def describe_validation_error(exc: ValidationError) -> str:
    """The first problem, naming its field: `categories: List should have at least 2 items`."""
    error = exc.errors(include_url=False)[0]
    message = error["msg"].removeprefix("Value error, ")
    location = ".".join(str(part) for part in error["loc"])
    if error["type"] == "missing":
        message = "is required"
    return f"{location}: {message}" if location else message


def validate(model: type[ModelT], fields: Mapping[str, Any] | Any) -> ModelT:
    """`fields` as a `model`, or `InvalidRequest` naming the first field in the way."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        raise InvalidRequest(describe_validation_error(exc)) from exc
