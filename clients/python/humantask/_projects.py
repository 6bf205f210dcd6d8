"""The requests of `api.projects`, as `Call`s (no I/O: the sync and async clients send
them). Projects live in Scale's current API, under `/scale/v1/`."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from pydantic import TypeAdapter

from ._http import Call, drop_none
from .models import Project

_PROJECTS = TypeAdapter(list[Project])


def project_path(name: str, suffix: str = "") -> str:
    if not isinstance(name, str) or not name:
        raise ValueError("a project's name must be a non-empty string")
    return f"projects/{quote(name, safe='')}{suffix}"


def create(name: str, params: dict[str, Any] | None) -> Call[Project]:
    body = drop_none({"type": "categorization", "name": name, "params": params})
    return Call("POST", "projects", Project.model_validate, json=body, scale=True)


def get(name: str) -> Call[Project]:
    return Call("GET", project_path(name), Project.model_validate, retryable=True, scale=True)


def list_() -> Call[list[Project]]:
    return Call("GET", "projects", _PROJECTS.validate_python, retryable=True, scale=True)


def set_params(name: str, params: dict[str, Any], patch: bool) -> Call[Project]:
    """A new version of the project's params; with `patch` the others are kept."""
    body = {**params, "patch": True} if patch else dict(params)
    return Call(
        "POST", project_path(name, "/setParams"), Project.model_validate, json=body, scale=True
    )
