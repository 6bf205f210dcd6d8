"""Handlers of the worker commands: claim, submit, release (docs/reference/api.md §6).

The rules (who may complete or release what) are in `domain`; a claim is one atomic
write in the repository, a submit or release goes through `change_task` like any other
change. A worker acting on a task it does not hold gets one answer, whatever the task's
state and whether it exists (`no_live_lease`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from humantask_shared.core.errors import NotFound
from humantask_shared.core.messages.commands import ClaimWork, ReleaseWork, SubmitWork
from humantask_shared.core.messages.envelope import StampedEvent
from humantask_shared.core.timeutil import utcnow
from humantask_shared.core.worker_models import (
    ClaimResult,
    CompletedWork,
    WorkReleased,
    no_live_lease,
)
from humantask_shared.runtime.logging import request_id_var

from . import domain
from .changes import Change, change_task
from .domain import TaskRecord
from .ports import Dependencies

log = logging.getLogger(__name__)


async def claim_work(command: ClaimWork, deps: Dependencies) -> ClaimResult:
    now = utcnow()
    leased = await deps.tasks.claim(
        command.worker_id, now, domain.lease_expiry(now, deps.work_lease_seconds)
    )
    if leased is None:
        return ClaimResult(item=None)
    log.info("task claimed", extra={"task_id": leased.task_id, "worker_id": command.worker_id})
    return ClaimResult(item=leased.to_work_item())


async def _change_held_task(
    deps: Dependencies, task_id: str, change: Change
) -> tuple[TaskRecord, Sequence[StampedEvent]]:
    try:
        return await change_task(deps.tasks, task_id, change)
    except NotFound:
        raise no_live_lease(task_id) from None


async def submit_work(command: SubmitWork, deps: Dependencies) -> CompletedWork:
    request_id = request_id_var.get()
    saved, events = await _change_held_task(
        deps,
        command.task_id,
        lambda record, now: domain.submit_work(
            record, command.worker_id, command.category, now, request_id
        ),
    )
    deps.outbox.publish_after_reply(saved.task_id, events)
    log.info("task completed", extra={"task_id": saved.task_id, "worker_id": command.worker_id})
    return saved.to_completed_work()


async def release_work(command: ReleaseWork, deps: Dependencies) -> WorkReleased:
    saved, _ = await _change_held_task(
        deps,
        command.task_id,
        lambda record, now: (domain.release_work(record, command.worker_id, now), []),
    )
    log.info("lease released", extra={"task_id": saved.task_id, "worker_id": command.worker_id})
    return WorkReleased(task_id=saved.task_id)
