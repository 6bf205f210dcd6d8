"""The task and its state machine: pending → completed | canceled, its workers' leases and
answers. No I/O here.

A task is answered by up to `max_workers` different workers (docs/reference/contract.md §10;
one by default). A worker answers it at most once. Several workers may hold leases on it
at once, as long as its counted answers plus its live leases stay within `max_workers`:
a lease ends when it expires (its slot comes back), when its worker releases it or
answers, or when the task completes or is canceled. Only a worker holding a live lease
may answer. After each answer the completion rule decides (`quality.decide`, on the
aggregate of the counted answers); a task completes once, and then every other lease
ends. A gold task (`gold_category`) is never completed: every worker may answer it once,
and each answer is scored (by the quality consumer, after the answer is written).

Answers are remembered, counted or not: an answer stops counting when its worker is
blocked for the customer (`discount_worker`) or when an audit sends the task back to the
workers (`reopen_for_audit`); either way its worker has answered and is not asked again.

Every change returns the new task and the events it raised; the repository writes both
in one document write (the outbox), so an event is never lost between write and publish.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

import orjson

from humantask_shared.core.errors import Conflict, InvalidRequest
from humantask_shared.core.messages.base import Event
from humantask_shared.core.messages.events import (
    TaskAnswered,
    TaskCanceled,
    TaskCompleted,
    TaskCreated,
    TaskEvent,
)
from humantask_shared.core.models import (
    DEFAULT_CONFIDENCE,
    QUALITY_FIELDS,
    CallbackFormat,
    CreateTaskRequest,
    Task,
    TaskParams,
    TaskResponse,
    TaskStatus,
)
from humantask_shared.core.scale_models import ReviewStatus, TaskAudit, TaskPlacement
from humantask_shared.core.worker_models import CompletedWork, WorkItem, no_live_lease

from . import quality
from .workers import Applied, QualityContext, Standing, WorkerRecord, WorkerStanding

# What the ports speak of besides the task (`ports.py` imports the domain only).
__all__ = [
    "Answer",
    "Applied",
    "Lease",
    "PoolCustomer",
    "PoolKind",
    "QualityContext",
    "Standing",
    "TaskRecord",
    "WorkerRecord",
    "WorkerStanding",
    "quality",
]

# Which pool a pending task waits in for workers: regular work, or gold. A task that is
# not pending is in none.
PoolKind = Literal["work", "gold"]

# A completed task keeps the posterior it completed with (what the quality consumer
# learns from) without its negligible categories.
POSTERIOR_FLOOR = 1e-3


DEFAULT_WEIGHT = 1.0


@dataclass(frozen=True)
class PoolCustomer:
    """A customer with regular tasks waiting in the pool, and its weight there."""

    customer_id: str
    weight: float = DEFAULT_WEIGHT
    # Counted up by every insert of the customer's tasks (the pool's check for idleness).
    touched: int = 0


@dataclass(frozen=True)
class Lease:
    """A worker's lease on a task, live until `expires_at`."""

    worker_id: str
    expires_at: datetime


@dataclass(frozen=True)
class Answer:
    """A worker's answer. `counted`: whether it counts towards the task's completion (not
    once its worker is blocked for the customer, or once an audit reopened the task)."""

    worker_id: str
    category: str
    at: datetime
    counted: bool = True


@dataclass(frozen=True)
class TaskRecord:
    """Everything the task-store knows about a task, including what customers never see."""

    task_id: str
    customer_id: str
    created_at: datetime
    callback_url: str | None
    callback_format: CallbackFormat
    instruction: str
    params: TaskParams
    status: TaskStatus = "pending"
    metadata: dict[str, Any] | None = None
    unique_id: str | None = None
    # What makes a repeated create with the same unique_id "the same" (`request_fingerprint`).
    fingerprint: str | None = None
    completed_at: datetime | None = None
    canceled_at: datetime | None = None
    response: TaskResponse | None = None
    # docs/reference/contract.md §10, as the customer gave them (None: not given).
    min_workers: int | None = None
    max_workers: int | None = None
    confidence: float | None = None
    gold_category: str | None = None
    # The leases workers hold (live or run out since the last write), and every answer.
    leases: tuple[Lease, ...] = ()
    answers: tuple[Answer, ...] = ()
    # When the task next has a free slot, while it has none (None: it has one, or it is
    # not pending). What a claim's filter reads; kept by every write (`next_free_at`).
    free_at: datetime | None = None
    # The posterior it completed with (categories of probability ≥ POSTERIOR_FLOOR).
    posterior: Mapping[str, float] | None = None
    # How many times an audit sent it back to the workers after it completed.
    reopened: int = 0
    # Bumped by every change of `answers` (an answer, a discount, a reopening): what an
    # answer's write is conditional on, so that a claim adding a lease meanwhile does
    # not make it start over (`Tasks.save_answer`).
    answers_version: int = 0
    # Optimistic concurrency: every write checks and bumps it.
    version: int = 0
    request_id: str | None = field(default=None, compare=False)
    # Scale's (docs/reference/contract.md §11): where the task belongs, its tags, its audits.
    project: str | None = None
    batch: str | None = None
    tags: tuple[str, ...] = ()
    customer_review_status: ReviewStatus | None = None
    audits: tuple[TaskAudit, ...] = ()
    # When the customer's view of the task last changed (None: never since created).
    updated_at: datetime | None = None
    # What it counts against its customer's stored-bytes quota, as read from the database
    # (None: not read from it, or stored before quotas, and so counting nothing); the
    # repository keeps it (`task_bytes`).
    size_bytes: int | None = field(default=None, compare=False)

    # --- what the task is ---------------------------------------------------------------

    @property
    def rule(self) -> quality.CompletionRule:
        """The completion rule, the defaults filled in."""
        low = self.min_workers or 1
        return quality.CompletionRule(
            min_workers=low,
            max_workers=self.max_workers or low,
            confidence=DEFAULT_CONFIDENCE if self.confidence is None else self.confidence,
        )

    @property
    def is_gold(self) -> bool:
        return self.gold_category is not None

    @property
    def pool(self) -> PoolKind | None:
        """The pool a pending task waits in for workers."""
        if self.status != "pending":
            return None
        return "gold" if self.is_gold else "work"

    @property
    def counted_answers(self) -> list[Answer]:
        return [answer for answer in self.answers if answer.counted]

    def live_leases(self, now: datetime) -> list[Lease]:
        if self.status != "pending":
            return []
        return [lease for lease in self.leases if lease.expires_at > now]

    def lease_of(self, worker_id: str, now: datetime) -> Lease | None:
        """The worker's live lease on this task, if it holds one."""
        return next(
            (lease for lease in self.live_leases(now) if lease.worker_id == worker_id), None
        )

    def answered_by(self, worker_id: str) -> bool:
        return any(answer.worker_id == worker_id for answer in self.answers)

    # --- what others see of it ----------------------------------------------------------

    def quality_settings(self) -> dict[str, Any]:
        return {
            name: value for name in QUALITY_FIELDS if (value := getattr(self, name)) is not None
        }

    def to_public(self) -> Task:
        return Task(
            task_id=self.task_id,
            created_at=self.created_at,
            completed_at=self.completed_at,
            callback_url=self.callback_url,
            status=self.status,
            instruction=self.instruction,
            params=self.params,
            response=self.response,
            metadata=self.metadata,
            unique_id=self.unique_id,
            canceled_at=self.canceled_at,
            **self.quality_settings(),
        )

    def to_work_item(self, worker_id: str) -> WorkItem:
        """The task leased to `worker_id` as that worker sees it: nothing about the
        customer, nor whether it is gold (docs/reference/contract.md §6)."""
        lease = next((x for x in self.leases if x.worker_id == worker_id), None)
        assert lease is not None, "only a task leased to the worker is its work item"
        return WorkItem(
            task_id=self.task_id,
            instruction=self.instruction,
            params=self.params,
            lease_expires_at=lease.expires_at,
        )

    def answered_work(self, category: str, at: datetime) -> CompletedWork:
        """What a worker sees once it answered: its own answer, done. The same for a
        single-worker task (which its answer completed), one that waits for more answers
        and a gold task, so a worker learns neither others' answers nor what the task is."""
        return CompletedWork(
            task_id=self.task_id,
            instruction=self.instruction,
            params=self.params,
            status="completed",
            response=TaskResponse(category=category),
            completed_at=at,
        )


def request_fingerprint(request: CreateTaskRequest, placement: TaskPlacement | None = None) -> str:
    """What makes two creations "the same" for `unique_id` idempotency. The §10
    parameters count only when given, so a task created before they existed keeps its
    fingerprint; a task's project, batch and tags (`/scale/v1`), when it has any, count."""
    unset = {name for name in QUALITY_FIELDS if getattr(request, name) is None}
    canonical = request.model_dump(mode="json", exclude={"unique_id", *unset})
    if placement is not None and placement != TaskPlacement():
        canonical["placement"] = placement.model_dump(mode="json")
    return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _event(event_type: type[TaskEvent], record: TaskRecord) -> TaskEvent:
    return event_type(
        customer_id=record.customer_id,
        callback_format=record.callback_format,
        task=record.to_public(),
        request_id=record.request_id,
    )


def completed_event(record: TaskRecord) -> TaskCompleted:
    """`task.completed`, numbered: the notifier calls back each completion once. A task an
    audit reopened `reopened` times completes for the `reopened + 1`-th time."""
    return TaskCompleted(
        customer_id=record.customer_id,
        callback_format=record.callback_format,
        task=record.to_public(),
        request_id=record.request_id,
        completion=record.reopened + 1,
    )


def touched(before: TaskRecord, after: TaskRecord, now: datetime) -> TaskRecord:
    """`after`, its `updated_at` moved to `now` if what its customer sees changed (a
    lease, a version or a request id is not what a customer sees)."""
    if _customer_view(after) == _customer_view(before):
        return after
    return replace(after, updated_at=now)


def _customer_view(record: TaskRecord) -> tuple[Any, ...]:
    return (
        record.to_public(),
        record.project,
        record.batch,
        record.tags,
        record.customer_review_status,
        record.audits,
    )


def create_task(
    task_id: str,
    customer_id: str,
    request: CreateTaskRequest,
    now: datetime,
    request_id: str | None = None,
    placement: TaskPlacement | None = None,
) -> tuple[TaskRecord, list[TaskEvent]]:
    """A new pending task; `placement` puts it in a project and a batch, with tags
    (`/scale/v1`, whose handler checks them first)."""
    placed = placement or TaskPlacement()
    record = TaskRecord(
        task_id=task_id,
        customer_id=customer_id,
        created_at=now,
        callback_url=request.callback_url,
        callback_format=request.callback_format,
        instruction=request.instruction,
        params=TaskParams(
            attachment_type=request.attachment_type,
            attachment=request.attachment,
            categories=list(request.categories),
        ),
        metadata=request.metadata,
        unique_id=request.unique_id,
        fingerprint=None if request.unique_id is None else request_fingerprint(request, placement),
        min_workers=request.min_workers,
        max_workers=request.max_workers,
        confidence=request.confidence,
        gold_category=request.gold_category,
        request_id=request_id,
        project=placed.project,
        batch=placed.batch,
        tags=tuple(placed.tags),
        updated_at=now,
    )
    return record, [_event(TaskCreated, record)]


def cancel_task(
    record: TaskRecord, now: datetime, request_id: str | None = None
) -> tuple[TaskRecord, list[TaskEvent]]:
    """Cancel a pending task; a canceled one stays as it is; a completed one cannot be.
    Every lease on it ends."""
    if record.status == "canceled":
        return record, []
    if record.status == "completed":
        raise Conflict(f"task {record.task_id} is already completed and cannot be canceled")
    canceled = replace(
        record,
        status="canceled",
        canceled_at=now,
        leases=(),
        free_at=None,
        request_id=request_id,
    )
    return canceled, [_event(TaskCanceled, canceled)]


# --- slots and leases --------------------------------------------------------------------


def holds_live_lease(record: TaskRecord, worker_id: str, now: datetime) -> bool:
    return record.lease_of(worker_id, now) is not None


def lease_expiry(now: datetime, lease_seconds: float) -> datetime:
    """When a lease taken now ends."""
    return now + timedelta(seconds=lease_seconds)


def next_free_at(record: TaskRecord, now: datetime) -> datetime | None:
    """When the task next has a free slot, if none is free now: the first of its live
    leases to end, once its counted answers and live leases fill `max_workers`. None while
    a slot is free, and for a task no worker may claim (not pending) or whose slots are
    unlimited (gold: every worker answers it once). The repository's claim computes the
    same in the database (`repository.indexes.lease_update`)."""
    if record.pool != "work":
        return None
    live = record.live_leases(now)
    if len(record.counted_answers) + len(live) < record.rule.max_workers or not live:
        return None
    return min(lease.expires_at for lease in live)


def claimable_by(record: TaskRecord, worker_id: str, now: datetime) -> bool:
    """Whether the worker may lease the task now: it is pending, has a free slot (a gold
    task always has one), and the worker neither answered it nor holds a lease on it."""
    if record.pool is None or record.answered_by(worker_id):
        return False
    if record.lease_of(worker_id, now) is not None:
        return False
    return record.free_at is None or record.free_at <= now


def lease_to(record: TaskRecord, worker_id: str, now: datetime, expires_at: datetime) -> TaskRecord:
    """The task leased to the worker: leases that ran out are dropped and the slot count
    updated (the repository's claim does the same in one atomic write)."""
    assert claimable_by(record, worker_id, now), "only a claimable task is leased"
    live = tuple(lease for lease in record.leases if lease.expires_at > now)
    leased = replace(record, leases=(*live, Lease(worker_id, expires_at)))
    return replace(leased, free_at=next_free_at(leased, now))


def _with_leases(record: TaskRecord, leases: Sequence[Lease], now: datetime) -> TaskRecord:
    kept = replace(record, leases=tuple(lease for lease in leases if lease.expires_at > now))
    return replace(kept, free_at=next_free_at(kept, now))


def release_work(record: TaskRecord, worker_id: str, now: datetime) -> TaskRecord:
    """Give the lease back: its slot is free again at once."""
    _require_live_lease(record, worker_id, now)
    return _with_leases(record, [x for x in record.leases if x.worker_id != worker_id], now)


def _require_live_lease(record: TaskRecord, worker_id: str, now: datetime) -> None:
    if not holds_live_lease(record, worker_id, now):
        raise no_live_lease(record.task_id)


# --- answers -----------------------------------------------------------------------------


def check_answer(record: TaskRecord, worker_id: str, category: str, now: datetime) -> None:
    """What an answer needs before anything else is read: the worker's live lease (first:
    a worker without it learns nothing about the task), then a category of the task's."""
    _require_live_lease(record, worker_id, now)
    if category not in record.params.categories:
        raise InvalidRequest(
            f"category: {category!r} is not one of the task's categories "
            f"({', '.join(repr(c) for c in record.params.categories)})"
        )


def answer_workers(record: TaskRecord, worker_id: str) -> list[str]:
    """The workers an answer's decision needs the standing of: the answering one, and
    those whose answers count so far."""
    counted = [answer.worker_id for answer in record.counted_answers]
    return list(dict.fromkeys([worker_id, *counted]))


def _aggregate(
    record: TaskRecord, counted: Sequence[Answer], context: QualityContext
) -> quality.Aggregate:
    return quality.aggregate(
        record.params.categories,
        [
            quality.CountedAnswer(answer.category, context.standing(answer.worker_id).state)
            for answer in counted
        ],
        context.customer,
        context.calibration,
    )


def submit_work(
    record: TaskRecord,
    worker_id: str,
    category: str,
    now: datetime,
    request_id: str | None = None,
    *,
    context: QualityContext | None = None,
) -> tuple[TaskRecord, list[Event]]:
    """The worker's answer, with what it decides (docs/reference/contract.md §10).

    The answer is remembered; it counts unless its worker is blocked for the customer,
    and answers of workers blocked since stop counting too. A regular task then completes
    if the completion rule says so on its counted answers (`quality.decide`: a
    single-worker task on its first counted answer, with that answer), and every other
    lease on it ends; otherwise its slot count is updated. A gold task keeps waiting.
    Raises `task.answered` for every answer, and `task.completed` once."""
    check_answer(record, worker_id, category, now)
    context = context or QualityContext()
    answer = Answer(worker_id, category, now, counted=not context.standing(worker_id).blocked)
    answers = tuple(
        replace(a, counted=False) if a.counted and context.standing(a.worker_id).blocked else a
        for a in (*record.answers, answer)
    )
    leases = [lease for lease in record.leases if lease.worker_id != worker_id]
    answered = _with_leases(
        replace(
            record,
            answers=answers,
            answers_version=record.answers_version + 1,
            request_id=request_id,
        ),
        leases,
        now,
    )
    events: list[Event] = []
    if not record.is_gold:
        answered = _decide(answered, context, now)
    events.append(
        TaskAnswered(
            customer_id=record.customer_id,
            task_id=record.task_id,
            worker_id=worker_id,
            category=category,
            counted=answer.counted,
            gold=record.is_gold,
            status=answered.status,
            request_id=request_id,
        )
    )
    if answered.status == "completed":
        events.append(completed_event(answered))
    return answered, events


def _decide(record: TaskRecord, context: QualityContext, now: datetime) -> TaskRecord:
    """Complete the task if its counted answers say so."""
    counted = record.counted_answers
    aggregate = _aggregate(record, counted, context) if counted else None
    outcome = quality.decide(record.rule, [a.category for a in counted], aggregate)
    if not outcome.complete or aggregate is None or outcome.category is None:
        return record
    return replace(
        record,
        status="completed",
        completed_at=now,
        response=TaskResponse(
            category=outcome.category, confidence=outcome.confidence, votes=outcome.votes
        ),
        leases=(),
        free_at=None,
        posterior={
            category: probability
            for category, probability in aggregate.probabilities.items()
            if probability >= POSTERIOR_FLOOR
        },
    )


def discount_worker(record: TaskRecord, worker_id: str, now: datetime) -> TaskRecord:
    """The worker was blocked for the task's customer: on a pending task its answers stop
    counting (the task waits for more answers; its slots are free again). A completed task
    keeps the answers it completed with."""
    if record.status != "pending" or not any(
        a.counted and a.worker_id == worker_id for a in record.answers
    ):
        return record
    answers = tuple(
        replace(a, counted=False) if a.worker_id == worker_id else a for a in record.answers
    )
    discounted = replace(record, answers=answers, answers_version=record.answers_version + 1)
    return _with_leases(discounted, record.leases, now)


def reopen_for_audit(record: TaskRecord, now: datetime) -> TaskRecord:
    """An audit rejected the completed task's answer: it goes back to `pending`, its old
    answers stop counting but are remembered (so it is served only to workers who have not
    answered it), and it completes again by the same rule on new answers (raising
    `task.completed` again: a new callback). The customer-facing fields of its completion
    are cleared."""
    if record.status != "completed":
        raise Conflict(f"task {record.task_id} is not completed: only a completed task is reopened")
    reopened = replace(
        record,
        status="pending",
        completed_at=None,
        response=None,
        posterior=None,
        answers=tuple(replace(answer, counted=False) for answer in record.answers),
        answers_version=record.answers_version + 1,
        leases=(),
        reopened=record.reopened + 1,
    )
    return replace(reopened, free_at=next_free_at(reopened, now))
