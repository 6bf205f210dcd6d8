"""Projects (docs/reference/contract.md §11): a customer's named set of defaults for its
tasks' create parameters, kept as versions (`param_history`). No I/O here.

A task created in a project takes from the project's current params every parameter
it leaves out; what it gives wins. Project names are unique per customer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from humantask_shared.core.errors import InvalidRequest
from humantask_shared.core.models import TaskType
from humantask_shared.core.scale_models import (
    MAX_PROJECT_VERSIONS,
    CreateProjectRequest,
    Project,
    ProjectParams,
    ProjectVersion,
    SetProjectParamsRequest,
)
from humantask_shared.core.validation import validate


@dataclass(frozen=True)
class ParamsVersion:
    """One version of a project's params, as set."""

    version: int
    params: dict[str, Any]
    created_at: datetime

    def to_public(self) -> ProjectVersion:
        return ProjectVersion.model_validate(
            {**self.params, "version": self.version, "created_at": self.created_at}
        )


@dataclass(frozen=True)
class ProjectRecord:
    project_id: str
    customer_id: str
    name: str
    created_at: datetime
    # Its params' versions, oldest first (the last MAX_PROJECT_VERSIONS), never empty.
    history: tuple[ParamsVersion, ...]
    type: TaskType = "categorization"

    @property
    def current(self) -> ParamsVersion:
        return self.history[-1]

    def to_public(self) -> Project:
        return Project(
            type=self.type,
            name=self.name,
            param_history=[version.to_public() for version in self.history],
            created_at=self.created_at,
        )


def new_project(
    project_id: str, customer_id: str, request: CreateProjectRequest, now: datetime
) -> ProjectRecord:
    params = request.params.defaults() if request.params is not None else {}
    return ProjectRecord(
        project_id=project_id,
        customer_id=customer_id,
        name=request.name,
        created_at=now,
        history=(ParamsVersion(version=0, params=params, created_at=now),),
        type=request.type,
    )


def set_params(
    project: ProjectRecord, request: SetProjectParamsRequest, now: datetime
) -> ParamsVersion:
    """The project's next version of params: these, and with `patch` the current ones
    they leave out (checked together: `max_workers` below the kept `min_workers` is a
    `400`)."""
    params = request.defaults()
    if request.patch:
        params = validate(ProjectParams, project.current.params | params).defaults()
    return ParamsVersion(version=project.current.version + 1, params=params, created_at=now)


def with_version(project: ProjectRecord, version: ParamsVersion) -> ProjectRecord:
    history = (*project.history, version)[-MAX_PROJECT_VERSIONS:]
    return ProjectRecord(
        project_id=project.project_id,
        customer_id=project.customer_id,
        name=project.name,
        created_at=project.created_at,
        history=history,
        type=project.type,
    )


def task_fields(project: ProjectRecord, fields: dict[str, Any]) -> dict[str, Any]:
    """A task's create parameters: `fields` as sent, and the project's params for what
    they leave out (a `null` leaves it out too)."""
    given = {name: value for name, value in fields.items() if value is not None}
    return project.current.params | given


def no_such_project(name: str, field: str = "project") -> InvalidRequest:
    return InvalidRequest(f"{field}: no project named {name!r}")
