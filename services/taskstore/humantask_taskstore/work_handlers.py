"""Handlers of the worker commands: claim, submit, release (docs/reference/contract.md §6, §10).

A claim gives back the worker's live lease if it holds one; otherwise it takes the
waiting customers in the fair pool's order (`fair_pool`), skips those that blocked the
worker, and leases the oldest task of the first that has one for it (gold first when
`fair_pool.pools_to_try` says so), in one atomic write (the repository). A submit reads
the task, then what the answer's decision needs of the customer's workers (the same read
for every task: regular or gold, one worker or several), and writes the answer and what it
decided in one write conditional on the task's answers being as read (claims of other
workers meanwhile do not make it start over); the quality consumer learns from it
afterwards. A release drops the lease in one write.
A worker acting on a task it does not hold gets one answer, whatever the task's state and
whether it exists (`no_live_lease`).
"""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import Histogram

from humantask_shared.core.errors import Unavailable
from humantask_shared.core.messages.commands import ClaimWork, ReleaseWork, SubmitWork
from humantask_shared.core.models import MAX_WORKERS_LIMIT
from humantask_shared.core.timeutil import utcnow
from humantask_shared.core.worker_models import (
    ClaimResult,
    CompletedWork,
    WorkReleased,
    no_live_lease,
)
from humantask_shared.runtime.logging import request_id_var
from humantask_shared.runtime.publishing import stamp_all

from . import batches, domain
from .changes import MAX_WRITE_ATTEMPTS
from .domain import PoolCustomer, Standing, TaskRecord
from .fair_pool import pools_to_try
from .ports import Dependencies, WorkerHoldsLease

log = logging.getLogger(__name__)

# Claims of one worker that race each other: one wins, the others find its lease.
CLAIM_ATTEMPTS = 3

ANSWERS_PER_COMPLETED_TASK = Histogram(
    "humantask_answers_per_completed_task",
    "Answers a task had when it completed (counted or not), by whether it had several "
    "workers (max_workers > 1)",
    ["several_workers"],
    buckets=(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20),
)


async def claim_work(command: ClaimWork, deps: Dependencies) -> ClaimResult:
    worker_id = command.worker_id
    for _ in range(CLAIM_ATTEMPTS):
        now = utcnow()
        held, waiting, standings = await asyncio.gather(
            deps.tasks.held_lease(worker_id, now),
            deps.pool.waiting(),
            deps.quality.standings(worker_id),
        )
        if held is not None:
            return ClaimResult(item=held.to_work_item(worker_id))
        try:
            leased = await _lease_fairly(deps, worker_id, waiting, standings)
        except WorkerHoldsLease:
            continue  # a claim of this worker's won a task at this moment: that one is its
        if leased is None:
            return ClaimResult(item=None)
        log.info("task claimed", extra={"task_id": leased.task_id, "worker_id": worker_id})
        return ClaimResult(item=leased.to_work_item(worker_id))
    raise Unavailable("too many claims of this worker at once, try again")


async def _lease_fairly(
    deps: Dependencies,
    worker_id: str,
    waiting: list[PoolCustomer],
    standings: dict[str, Standing],
) -> TaskRecord | None:
    """The oldest task of the customer whose turn it is (`fair_pool`) that has one for
    the worker, leased to it; a customer that has none for it gives its turn back, and
    the pool forgets one found with none left at all."""
    now = utcnow()
    expires_at = domain.lease_expiry(now, deps.work_lease_seconds)
    serving = [c for c in waiting if not standings.get(c.customer_id, Standing()).blocked]
    while (customer := deps.pool.take_turn(serving)) is not None:
        standing = standings.get(customer.customer_id, Standing())
        try:
            for pool in pools_to_try(standing, deps.draw(), deps.quality_settings.gold_rate):
                leased = await deps.tasks.lease_oldest(
                    worker_id, customer.customer_id, pool, now, expires_at
                )
                if leased is not None:
                    if not standing.started:
                        await deps.quality.mark_started(customer.customer_id, worker_id)
                    return leased
        except BaseException:
            deps.pool.give_back_turn(customer)
            raise
        deps.pool.give_back_turn(customer)
        serving.remove(customer)
        if not await deps.tasks.has_pool_work(customer.customer_id):
            await deps.pool.set_idle(customer)
    return None


async def submit_work(command: SubmitWork, deps: Dependencies) -> CompletedWork:
    """Answer a task the worker holds (docs/reference/contract.md §10): written with what it
    decided, in one conditional write; read again and decided again when another write
    landed first."""
    worker_id, request_id = command.worker_id, request_id_var.get()
    # Each lost race is another worker's answer landing: at most max_workers of them.
    for _ in range(MAX_WRITE_ATTEMPTS + MAX_WORKERS_LIMIT):
        record = await deps.tasks.get(command.task_id)
        if record is None:
            raise no_live_lease(command.task_id)
        domain.check_answer(record, worker_id, command.category, utcnow())
        context = await deps.quality.context(
            record.customer_id, domain.answer_workers(record, worker_id)
        )
        now = utcnow()
        answered, raised = domain.submit_work(
            record, worker_id, command.category, now, request_id, context=context
        )
        # As any change (`changes.change_task`): its customer's view moved, and a task of
        # a batch that it completed tells the batch.
        answered = domain.touched(record, answered, now)
        events = stamp_all([*raised, *batches.settled(record, answered)], now)
        saved = await deps.tasks.save_answer(record, answered, worker_id, events, now)
        if saved is not None:
            break
    else:
        raise Unavailable("the task is changing too often, try again")
    deps.outbox.publish_after_reply(saved.task_id, events)
    if saved.status == "completed":
        several = "true" if saved.rule.several_workers else "false"
        ANSWERS_PER_COMPLETED_TASK.labels(several).observe(len(saved.answers))
        log.info("task completed", extra={"task_id": saved.task_id, "worker_id": worker_id})
    else:
        log.info("task answered", extra={"task_id": saved.task_id, "worker_id": worker_id})
    return saved.answered_work(command.category, now)


async def release_work(command: ReleaseWork, deps: Dependencies) -> WorkReleased:
    """Give the lease back: its slot is free at once (one write, whatever other workers
    claim of the task meanwhile)."""
    released = await deps.tasks.release(command.worker_id, command.task_id, utcnow())
    if released is None:
        raise no_live_lease(command.task_id)
    log.info("lease released", extra={"task_id": command.task_id, "worker_id": command.worker_id})
    return WorkReleased(task_id=released.task_id)
