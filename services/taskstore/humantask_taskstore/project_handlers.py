"""The handlers of `/scale/v1`'s project commands (docs/reference/contract.md §11): create,
list, get, and a new version of params. Rules in `projects`; storage behind
`ports.Projects`."""

from __future__ import annotations

from humantask_shared.core.errors import Conflict, NotFound, Unavailable
from humantask_shared.core.messages.scale_commands import (
    CreateProject,
    GetProject,
    ListProjects,
    SetProjectParams,
)
from humantask_shared.core.scale_models import Project, ProjectList
from humantask_shared.core.timeutil import utcnow

from . import projects
from .ports import Dependencies, ProjectExists

MAX_WRITE_ATTEMPTS = 5


async def create_project(command: CreateProject, deps: Dependencies) -> Project:
    project = projects.new_project(
        command.project_id, command.customer_id, command.request, utcnow()
    )
    try:
        await deps.projects.add(project)
    except ProjectExists as exists:
        if exists.existing.project_id == project.project_id:  # a redelivered command
            return exists.existing.to_public()
        raise Conflict(f"a project named {project.name!r} already exists") from None
    return project.to_public()


async def list_projects(command: ListProjects, deps: Dependencies) -> ProjectList:
    found = await deps.projects.list(command.customer_id)
    return ProjectList(projects=[project.to_public() for project in found])


async def _project(deps: Dependencies, customer_id: str, name: str) -> projects.ProjectRecord:
    project = await deps.projects.get(customer_id, name)
    if project is None:
        raise NotFound(f"no project named {name!r}")
    return project


async def get_project(command: GetProject, deps: Dependencies) -> Project:
    return (await _project(deps, command.customer_id, command.name)).to_public()


async def set_project_params(command: SetProjectParams, deps: Dependencies) -> Project:
    for _ in range(MAX_WRITE_ATTEMPTS):
        project = await _project(deps, command.customer_id, command.name)
        now = utcnow()
        version = projects.set_params(project, command.request, now)
        saved = await deps.projects.add_version(project, version, now)
        if saved is not None:
            return saved.to_public()
    raise Unavailable("the project is changing too often, try again")
