"""What the task-store learns about workers (docs/reference/contract.md §10), and what it
shows customers of them.

The quality queue (`topology.TASKSTORE_QUALITY_QUEUE`) brings the task-store its own
events, after the writes that raised them (each answer and completion is in its task's
outbox, so none is lost), to competing consumers:

- `task.answered`: the answer counts for its worker (`answers`); a gold answer is scored
  (`quality.gold_answer_increments`), teaches the calibration what the posterior of the
  gold task's answers so far says (`quality.gold_task_observation`; refitted every
  `CALIBRATION_REFIT_EVERY` gold answers), and may block the worker (`quality.is_blocked`
  with WORKER_MIN_ACCURACY): then `worker.scored` and, once blocked, `worker.blocked`
  are published;
- `task.completed`: what the task's counted answers teach about their workers
  (`quality.completion_increments`, online Dawid–Skene);
- `task.completed`, `task.canceled`: the customer leaves the fair pool when that was its
  last regular task there (so that no claim serves its gold tasks in place of work it
  does not have);
- `worker.blocked`: the worker's answers on the customer's open tasks stop counting
  (`domain.discount_worker`, one conditional write per task): those tasks wait for more
  answers. An answer being decided at that moment reads the worker's standing first: it
  either reads it blocked, or its write lands before this one reaches its task and is
  discounted here.

Each handler is idempotent: a worker's increments are written once per key (the task
and the event), the customer's only when its worker's were written then; a block that is
published again finds nothing more to discount.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import replace

from prometheus_client import Counter

from humantask_shared.core.messages.commands import (
    ListWorkerQuality,
    WorkerQuality,
    WorkerQualityList,
)
from humantask_shared.core.messages.events import (
    TaskAnswered,
    TaskCanceled,
    TaskCompleted,
    WorkerBlocked,
    WorkerScored,
)
from humantask_shared.core.timeutil import utcnow

from . import domain, quality
from .changes import change_task
from .ports import Dependencies
from .quality.calibration import CALIBRATION_REFIT_EVERY
from .quality.gold import CALIBRATION_MAX_ANSWERS
from .workers import WorkerRecord

log = logging.getLogger(__name__)

GOLD_ANSWERS_SCORED = Counter(
    "humantask_gold_answers_scored_total",
    "Gold answers scored, by whether they were right",
    ["correct"],
)
WORKERS_BLOCKED = Counter(
    "humantask_workers_blocked_total", "Workers blocked for a customer by their gold answers"
)
# A pseudonym's length in hex digits (64 bits: no two of a customer's workers share one).
PSEUDONYM_HEX = 16


async def on_task_answered(event: TaskAnswered, deps: Dependencies) -> None:
    """Count the answer for its worker; score it if the task is gold."""
    record = await deps.tasks.get(event.task_id) if event.gold else None
    gold_category = None if record is None else record.gold_category
    increments = quality.Increments(workers={event.worker_id: quality.WorkerIncrement(answers=1)})
    if gold_category is not None:
        scored = quality.gold_answer_increments(event.worker_id, gold_category, event.category)
        worker_increment = replace(scored.workers[event.worker_id], answers=1)
        increments = replace(scored, workers={event.worker_id: worker_increment})
    applied = await deps.quality.apply_worker(
        event.customer_id, event.worker_id, f"answer:{event.task_id}", increments
    )
    if record is None or gold_category is None:
        return
    correct = event.category == gold_category
    if applied.written:
        GOLD_ANSWERS_SCORED.labels("true" if correct else "false").inc()
        gold_answers = await deps.quality.apply_customer(event.customer_id, increments)
        await _observe_gold_task(deps, record, event.worker_id)
        if gold_answers and gold_answers % CALIBRATION_REFIT_EVERY == 0:
            state = await deps.quality.customer_state(event.customer_id)
            fitted = quality.fit_calibration(state.calibration_bins)
            await deps.quality.save_calibration(event.customer_id, fitted)
    worker = applied.worker
    blocked = worker.blocked or quality.is_blocked(
        worker.gold_answers, worker.gold_correct, deps.quality_settings.blocking
    )
    if applied.written:
        await deps.publish(
            WorkerScored(
                customer_id=event.customer_id,
                worker_id=event.worker_id,
                task_id=event.task_id,
                correct=correct,
                gold_answers=worker.gold_answers,
                gold_correct=worker.gold_correct,
                accuracy=_accuracy(worker, deps),
                blocked=blocked,
                request_id=event.request_id,
            )
        )
    if blocked:
        await _block(deps, worker, event.request_id)


async def _observe_gold_task(deps: Dependencies, record: domain.TaskRecord, worker_id: str) -> None:
    """What the gold task's answers up to the worker's teach the calibration."""
    assert record.gold_category is not None
    index = next(n for n, answer in enumerate(record.answers) if answer.worker_id == worker_id)
    answers = record.answers[: index + 1]
    if not answers or len(answers) > CALIBRATION_MAX_ANSWERS:
        return
    context = await deps.quality.context(record.customer_id, [a.worker_id for a in answers])
    observed = quality.gold_task_observation(
        record.params.categories,
        record.gold_category,
        [quality.CountedAnswer(a.category, context.standing(a.worker_id).state) for a in answers],
        context.customer,
    )
    await deps.quality.apply_customer(record.customer_id, quality.Increments(customer=observed))


def _accuracy(worker: WorkerRecord, deps: Dependencies) -> float:
    return quality.accuracy_estimate(
        worker.gold_answers, worker.gold_correct, deps.quality_settings.blocking
    )


async def _block(deps: Dependencies, worker: WorkerRecord, request_id: str | None) -> None:
    """Block the worker for the customer, and say so (again, when this answer was heard
    before: the event may have been lost with a crash; hearing it twice is harmless)."""
    if await deps.quality.block(worker.customer_id, worker.worker_id, utcnow()):
        WORKERS_BLOCKED.inc()
        log.info(
            "worker blocked",
            extra={"customer_id": worker.customer_id, "worker_id": worker.worker_id},
        )
    await deps.publish(
        WorkerBlocked(
            customer_id=worker.customer_id,
            worker_id=worker.worker_id,
            gold_answers=worker.gold_answers,
            gold_correct=worker.gold_correct,
            accuracy=_accuracy(worker, deps),
            request_id=request_id,
        )
    )


async def on_task_completed(event: TaskCompleted, deps: Dependencies) -> None:
    """What the completed task's counted answers teach about their workers; and its
    customer leaves the fair pool if that was its last regular task there."""
    await _leave_pool_if_empty(deps, event.customer_id)
    record = await deps.tasks.get(event.task.task_id)
    if record is None or record.status != "completed" or record.posterior is None:
        return  # reopened since, or completed before the task-store learnt from completions
    counted = {answer.worker_id: answer.category for answer in record.counted_answers}
    categories = record.params.categories
    probabilities = {category: record.posterior.get(category, 0.0) for category in categories}
    learnt = quality.completion_increments(categories, probabilities, counted)
    # Its answers were counted for their workers as they came (`on_task_answered`).
    increments = replace(
        learnt, workers={w: replace(inc, answers=0) for w, inc in learnt.workers.items()}
    )
    key = f"completed:{record.task_id}:{record.reopened}"
    written = False
    for worker_id in counted:
        applied = await deps.quality.apply_worker(record.customer_id, worker_id, key, increments)
        written = written or applied.written
    if written:
        await deps.quality.apply_customer(record.customer_id, increments)


async def on_task_canceled(event: TaskCanceled, deps: Dependencies) -> None:
    """The customer leaves the fair pool if that was its last regular task there."""
    await _leave_pool_if_empty(deps, event.customer_id)


async def _leave_pool_if_empty(deps: Dependencies, customer_id: str) -> None:
    """A customer waits in the pool only while it has regular tasks there: a claim serves
    its gold only in place of those (docs/reference/contract.md §10). The pool's own check
    (`Pool.set_idle`) keeps a customer touched since it was read."""
    waiting = await deps.pool.customer(customer_id)
    if waiting is not None and not await deps.tasks.has_pool_work(customer_id):
        await deps.pool.set_idle(waiting)


async def on_worker_blocked(event: WorkerBlocked, deps: Dependencies) -> None:
    """The worker's answers on the customer's open tasks stop counting."""
    for task_id in await deps.tasks.open_answered_by(event.customer_id, event.worker_id):
        await change_task(
            deps.tasks,
            task_id,
            lambda record, now: (domain.discount_worker(record, event.worker_id, now), []),
        )


def pseudonym(key: bytes, worker_id: str) -> str:
    """A worker's name for one customer: stable for it, unrelated across customers (each
    has its own key), and telling nothing of the worker's id."""
    return hmac.new(key, worker_id.encode(), hashlib.sha256).hexdigest()[:PSEUDONYM_HEX]


async def list_worker_quality(command: ListWorkerQuality, deps: Dependencies) -> WorkerQualityList:
    """`GET /v1/quality/workers`: the customer's workers, by pseudonym."""
    key = await deps.quality.pseudonym_key(command.customer_id)
    workers = [
        WorkerQuality(
            worker=pseudonym(key, worker.worker_id),
            answers=worker.answers,
            gold_answers=worker.gold_answers,
            gold_correct=worker.gold_correct,
            accuracy=round(_accuracy(worker, deps), 4),
            blocked=worker.blocked,
        )
        for worker in await deps.quality.workers_of(command.customer_id)
    ]
    return WorkerQualityList(workers=sorted(workers, key=lambda w: w.worker))
