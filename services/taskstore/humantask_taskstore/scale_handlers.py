"""The handlers of `/scale/v1`'s task commands (docs/reference/contract.md §11): create in a
project and a batch, get, list with Scale's filters, cancel (freeing the unique_id),
metadata, tags, unique_id and audit. The rules are in `domain`, `audit`, `task_edits`,
`projects` and `batches`; every change of a task goes through `change_task`."""

from __future__ import annotations

from typing import Any

from humantask_shared.core.errors import Conflict, InvalidRequest, NotFound
from humantask_shared.core.messages.scale_commands import (
    AuditTask,
    CancelScaleTask,
    ChangeTaskTags,
    CreateScaleTask,
    GetScaleTask,
    ListScaleTasks,
    SetTaskMetadata,
    SetTaskUniqueId,
)
from humantask_shared.core.models import CreateTaskRequest
from humantask_shared.core.scale_models import (
    ScaleListToken,
    ScaleTask,
    ScaleTaskPage,
    TaskPlacement,
)
from humantask_shared.core.timeutil import utcnow
from humantask_shared.core.validation import validate
from humantask_shared.runtime.logging import request_id_var

from . import audit, batches, domain, projects, task_edits
from .changes import Change, change_task
from .customer_handlers import store_new_task
from .ports import Dependencies, TaskExists
from .scale_tasks import scale_view


async def _placed_fields(
    deps: Dependencies, customer_id: str, fields: dict[str, Any], placement: TaskPlacement
) -> tuple[dict[str, Any], TaskPlacement]:
    """The create parameters with the project's defaults, and where the task goes: a
    batch's task is in the batch's project, and joins it only while it is staging."""
    project_name = placement.project
    if placement.batch is not None:
        batch = await deps.batches.get(customer_id, placement.batch)
        if batch is None:
            raise InvalidRequest(f"batch: no batch named {placement.batch!r}")
        if project_name is not None and project_name != batch.project:
            raise InvalidRequest(
                f"batch: batch {batch.name!r} belongs to project {batch.project!r}, "
                f"not {project_name!r}"
            )
        batches.admit_task(batch)
        project_name = batch.project
    if project_name is None:
        return fields, placement
    project = await deps.projects.get(customer_id, project_name)
    if project is None:
        raise projects.no_such_project(project_name)
    placed = placement.model_copy(update={"project": project_name})
    return projects.task_fields(project, fields), placed


async def create_scale_task(command: CreateScaleTask, deps: Dependencies) -> ScaleTask:
    fields, placement = await _placed_fields(
        deps, command.customer_id, command.fields, command.placement
    )
    request = validate(CreateTaskRequest, fields)
    now = utcnow()
    record, raised = domain.create_task(
        command.task_id, command.customer_id, request, now, request_id_var.get(), placement
    )
    return scale_view(await store_new_task(deps, record, raised, now))


async def get_scale_task(command: GetScaleTask, deps: Dependencies) -> ScaleTask:
    record = await deps.tasks.get(command.task_id, command.customer_id)
    if record is None:
        raise NotFound(f"no task with task_id {command.task_id}")
    return scale_view(record)


async def list_scale_tasks(command: ListScaleTasks, deps: Dependencies) -> ScaleTaskPage:
    """A page; the first page counts what the filters match (bounded), and its
    `next_token` carries that count and the next page's offset, so later pages count
    nothing. The token is signed as `/v1`'s (`cursors`): only one the task-store gave out
    for this customer and these filters is taken back."""
    owner, query, tokens = command.customer_id, command.query, deps.list_tokens
    token = (
        None if query.next_token is None else tokens.verify_scale(query.next_token, owner, query)
    )
    records, cursor, counted = await deps.search.page(
        owner, query, utcnow(), None if token is None else token.cursor, count=token is None
    )
    total = token.total if token is not None else (counted or 0)
    offset = token.offset if token is not None else 0
    next_token = None
    if cursor is not None:
        following = ScaleListToken(cursor=cursor, total=total, offset=offset + len(records))
        next_token = tokens.sign_scale(following, owner, query)
    return ScaleTaskPage(
        docs=[scale_view(record) for record in records],
        total=max(total, offset + len(records)),
        limit=query.limit,
        offset=offset,
        has_more=next_token is not None,
        next_token=next_token,
    )


async def _change(deps: Dependencies, customer_id: str, task_id: str, change: Change) -> ScaleTask:
    try:
        saved, events = await change_task(deps.tasks, task_id, change, customer_id=customer_id)
    except TaskExists as taken:
        raise Conflict(
            f"unique_id {taken.existing.unique_id!r} already belongs to task "
            f"{taken.existing.task_id}"
        ) from None
    if events:
        deps.outbox.publish_after_reply(saved.task_id, events)
    return scale_view(saved)


async def cancel_scale_task(command: CancelScaleTask, deps: Dependencies) -> ScaleTask:
    request_id = request_id_var.get()

    def cancel(record: domain.TaskRecord, now: Any) -> tuple[domain.TaskRecord, list[Any]]:
        canceled, events = domain.cancel_task(record, now, request_id)
        if command.clear_unique_id:
            canceled = task_edits.set_unique_id(canceled, None)
        return canceled, events

    return await _change(deps, command.customer_id, command.task_id, cancel)


async def set_task_metadata(command: SetTaskMetadata, deps: Dependencies) -> ScaleTask:
    return await _change(
        deps,
        command.customer_id,
        command.task_id,
        lambda record, _now: (task_edits.set_metadata(record, command.metadata), []),
    )


async def change_task_tags(command: ChangeTaskTags, deps: Dependencies) -> ScaleTask:
    return await _change(
        deps,
        command.customer_id,
        command.task_id,
        lambda record, _now: (
            task_edits.change_tags(record, command.operation, command.tags),
            [],
        ),
    )


async def set_task_unique_id(command: SetTaskUniqueId, deps: Dependencies) -> ScaleTask:
    return await _change(
        deps,
        command.customer_id,
        command.task_id,
        lambda record, _now: (task_edits.set_unique_id(record, command.unique_id), []),
    )


async def audit_task(command: AuditTask, deps: Dependencies) -> ScaleTask:
    request_id = request_id_var.get()
    return await _change(
        deps,
        command.customer_id,
        command.task_id,
        lambda record, now: audit.audit_task(record, command.audit, now, request_id),
    )
