"""Handlers of the worker commands: claim, submit, release (API.md section 6).

The rules (who may claim, complete or release what) are in `domain`; here a claim walks
the oldest claimable tasks until it wins one, and a submit or release goes through
`change_task` like any other change.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from humantask_shared.errors import Unavailable
from humantask_shared.logging import request_id_var
from humantask_shared.messages.commands import ClaimWork, ReleaseWork, SubmitWork
from humantask_shared.timeutil import utcnow
from humantask_shared.work import ClaimResult, CompletedWork, WorkReleased

from . import domain
from .changes import change_task

if TYPE_CHECKING:
    from .handlers import Dependencies

log = logging.getLogger(__name__)

# A claim looks at this many of the oldest claimable tasks at a time; when other
# workers win all of them, it looks again, this many times, before answering 503.
CLAIM_CANDIDATES = 20
CLAIM_ROUNDS = 5
EXIT_CODE_TEST_HOOK = 70


async def claim_work(command: ClaimWork, _command_id: str, deps: Dependencies) -> ClaimResult:
    now = utcnow()
    held = await deps.tasks.live_lease_of(command.worker_id, now)
    if held is not None:  # a page reload gets the same task: no lease leaks
        return ClaimResult(item=held.to_work_item())
    for _ in range(CLAIM_ROUNDS):
        candidates = await deps.tasks.claimable(now, CLAIM_CANDIDATES)
        if not candidates:
            # An earlier claim of this worker (a retry after a timeout) may have leased it
            # a task since we looked: hand that one out rather than "nothing to do".
            held = await deps.tasks.live_lease_of(command.worker_id, utcnow())
            return ClaimResult(item=None if held is None else held.to_work_item())
        for candidate in candidates:
            leased = domain.claim_task(candidate, command.worker_id, now, deps.work_lease_seconds)
            # Only one claimer can write a task's next version; the others move on.
            saved = await deps.tasks.save(leased, [], now)
            if saved is not None:
                log.info("task claimed", extra={"task_id": saved.task_id,
                                                "worker_id": command.worker_id})
                return ClaimResult(item=saved.to_work_item())
        now = utcnow()
    raise Unavailable("too many workers are claiming at once, try again")


async def submit_work(command: SubmitWork, _command_id: str, deps: Dependencies) -> CompletedWork:
    request_id = request_id_var.get()
    saved, events = await change_task(
        deps.tasks,
        command.task_id,
        lambda record, now: domain.submit_work(
            record, command.worker_id, command.category, now, request_id
        ),
    )
    if deps.exit_after_completion_write:
        log.warning("test hook: exiting after the completion write, before publishing")
        os._exit(EXIT_CODE_TEST_HOOK)
    await deps.outbox.publish(saved.task_id, events)
    log.info("task completed", extra={"task_id": saved.task_id, "worker_id": command.worker_id})
    return saved.to_completed_work()


async def release_work(command: ReleaseWork, _command_id: str, deps: Dependencies) -> WorkReleased:
    saved, _ = await change_task(
        deps.tasks,
        command.task_id,
        lambda record, now: (domain.release_work(record, command.worker_id, now), []),
    )
    log.info("lease released", extra={"task_id": saved.task_id, "worker_id": command.worker_id})
    return WorkReleased(task_id=saved.task_id)


WORK_HANDLERS = {
    ClaimWork: claim_work,
    SubmitWork: submit_work,
    ReleaseWork: release_work,
}
