"""Callback delivery and its state machine (docs/reference/api.md §7). No I/O here.

One delivery per completion of a task, keyed by the task's id for its first completion
and `<task id>.<n>` for its n-th (a task its customer rejects in an audit completes
again, and is called back again: docs/reference/api.md §11), and one per completed batch
(`batch-<batch id>`). At most two attempts each:

    new ──claim 1──▶ attempting(1) ──200──▶ delivered
                          │ anything else
                          ▼
                   awaiting_retry ──(CALLBACK_RETRY_DELAY_SECONDS)──▶ attempting(2)
                                                               ──▶ delivered | failed

An attempt is *claimed* before it is sent, and a claim is the insertion of a record
whose id is `<delivery key>:<attempt number>`: the database lets exactly one process
insert it, however often the event or the retry message is delivered and however many
notifiers run. Only attempts 1 and 2 are ever claimed, so at most two are sent. The
attempt records are also the customer's callback log (`GET /v1/task/{id}/callbacks`).

An attempt whose claimer died before recording its outcome (`claim_ttl` after the claim,
long past any send) is logged as interrupted: it may or may not have reached the
receiver. An interrupted first attempt still gets its retry.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from humantask_shared.core.messages.events import BatchCompleted, TaskCompleted
from humantask_shared.core.models import CallbackAttempt, CallbackFormat
from humantask_shared.core.scale_models import BatchCallback

SUCCESS_STATUS = 200
MAX_ATTEMPTS = 2
AttemptNumber = Literal[1, 2]  # up to MAX_ATTEMPTS, as CallbackAttempt.attempt says
# How long past the send timeout an unrecorded attempt may take before its claim is
# considered dead: covers recording the outcome, a slow database and clock skew.
CLAIM_GRACE_SECONDS = 10.0

INTERRUPTED = "interrupted: the notifier stopped during this attempt; its outcome is unknown"

DeliveryState = Literal["new", "attempting", "awaiting_retry", "delivered", "failed"]
# What made the notifier look at a delivery: the completion event, or its retry coming due.
Trigger = Literal["completed", "retry_due"]
# What a delivery calls back: a task's completion, or a batch's.
Subject = Literal["task", "batch"]
BATCH_KEY_PREFIX = "batch-"


def delivery_key(task_id: str, completion: int = 1) -> str:
    """A task's delivery of its `completion`-th completion: the task id for the first
    (as every delivery was keyed before tasks could complete twice), `<task id>.<n>`
    after. Also its callback's `webhook-id`."""
    return task_id if completion <= 1 else f"{task_id}.{completion}"


def batch_delivery_key(batch_id: str) -> str:
    return f"{BATCH_KEY_PREFIX}{batch_id}"


class NotDeliverable(ValueError):
    """An event that cannot produce a callback (not a completed task)."""


@dataclass(frozen=True)
class Attempt:
    """One claimed attempt; `finished` once its outcome is known."""

    number: AttemptNumber
    at: datetime  # when it was claimed, just before it was sent
    finished: bool = False
    status_code: int | None = None
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.finished and self.status_code == SUCCESS_STATUS and self.error is None

    def to_public(self) -> CallbackAttempt:
        return CallbackAttempt(
            attempt=self.number,
            at=self.at,
            status_code=self.status_code,
            error=self.error,
            delivered=self.delivered,
        )


@dataclass(frozen=True)
class Delivery:
    """Everything the notifier keeps about one callback: a task's (one per completion)
    or a batch's."""

    # The task called back (a batch's delivery: its key, `batch-<batch id>`).
    task_id: str
    customer_id: str
    callback_format: CallbackFormat
    # What the callback carries, as JSON: the customer's view of the completed task, or
    # (a batch's) the batch and its counts.
    task: dict[str, Any]
    attempts: tuple[Attempt, ...] = ()  # claimed ones, by number
    # The retry is known to wait in RabbitMQ (publisher-confirmed).
    retry_scheduled: bool = False
    request_id: str | None = field(default=None, compare=False)
    created_at: datetime | None = None
    # Which completion of the task this calls back (1 for a batch's).
    completion: int = 1
    subject: Subject = "task"

    @property
    def key(self) -> str:
        """The delivery's key: its record's id, its attempts' prefix, its `webhook-id`."""
        return delivery_key(self.task_id, self.completion)

    @property
    def callback_url(self) -> str:
        if self.subject == "batch":
            return str(self.task["batch"]["callback"])
        return str(self.task["callback_url"])

    @property
    def last(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def state(self) -> DeliveryState:
        last = self.last
        if last is None:
            return "new"
        if not last.finished:
            return "attempting"
        if last.delivered:
            return "delivered"
        return "awaiting_retry" if last.number < MAX_ATTEMPTS else "failed"


def new_delivery(event: TaskCompleted | BatchCompleted, now: datetime) -> Delivery:
    if isinstance(event, BatchCompleted):
        return new_batch_delivery(event, now)
    task = event.task
    if task.status != "completed" or task.response is None:
        raise NotDeliverable(f"task {task.task_id} is {task.status}, without a response")
    return Delivery(
        task_id=task.task_id,
        customer_id=event.customer_id,
        callback_format=event.callback_format,
        task=task.to_json_dict(),
        request_id=event.request_id,
        created_at=now,
        completion=event.completion,
    )


def new_batch_delivery(event: BatchCompleted, now: datetime) -> Delivery:
    """A completed batch's callback: JSON, the batch and its counts."""
    if event.batch.status != "completed" or not event.batch.callback:
        raise NotDeliverable(f"batch {event.batch_id} is {event.batch.status}, without a callback")
    body = BatchCallback(batch=event.batch, counts=event.counts)
    return Delivery(
        task_id=batch_delivery_key(event.batch_id),
        customer_id=event.customer_id,
        callback_format="json",
        task=body.model_dump(mode="json"),
        request_id=event.request_id,
        created_at=now,
        subject="batch",
    )


def next_attempt(delivery: Delivery, now: datetime) -> Attempt:
    """The attempt to claim now: the first, or the retry after a failed first."""
    if delivery.state not in ("new", "awaiting_retry"):
        raise ValueError(f"the callback of {delivery.task_id} is {delivery.state}")
    # "new" has no attempt yet; "awaiting_retry" has its first, failed.
    return Attempt(number=2 if delivery.attempts else 1, at=now)


def finish(attempt: Attempt, status_code: int | None, error: str | None) -> Attempt:
    """The outcome of a send: exactly status 200 is success; any other answer is an error."""
    if error is None and status_code != SUCCESS_STATUS:
        error = f"the receiver answered {status_code}, not {SUCCESS_STATUS}"
    return replace(attempt, finished=True, status_code=status_code, error=error)


def interrupted(attempt: Attempt) -> Attempt:
    return replace(attempt, finished=True, status_code=None, error=INTERRUPTED)


class Step(enum.Enum):
    """What the notifier does next for a delivery, given what woke it up."""

    START = "start"  # claim attempt 1 and send it
    SEND_RETRY = "send_retry"  # claim attempt 2 and send it
    SCHEDULE_RETRY = "schedule_retry"  # make sure the retry waits in RabbitMQ
    WAIT = "wait"  # another process is sending this attempt: look again later
    ABANDON = "abandon"  # whoever claimed this attempt died: log it as interrupted
    DONE = "done"  # nothing (more) to do for this trigger


def next_step(
    delivery: Delivery | None, trigger: Trigger, now: datetime, claim_ttl: timedelta
) -> Step:
    """The one rule that decides, for every message the notifier gets, what happens."""
    state = "new" if delivery is None else delivery.state
    if state == "new":
        return Step.START if trigger == "completed" else Step.DONE
    assert delivery is not None and delivery.last is not None
    if state == "attempting":
        # The completion event looks after attempt 1, the retry message after attempt 2;
        # until its message is acked, a crashed claimer's message comes back to us.
        owner: Trigger = "completed" if delivery.last.number == 1 else "retry_due"
        if trigger != owner:
            return Step.DONE
        return Step.ABANDON if now - delivery.last.at >= claim_ttl else Step.WAIT
    if state == "awaiting_retry":
        if trigger == "retry_due":
            return Step.SEND_RETRY
        return Step.DONE if delivery.retry_scheduled else Step.SCHEDULE_RETRY
    return Step.DONE


def claim_ttl(timeout_seconds: float) -> timedelta:
    """How long a claimed attempt may go unrecorded before its claimer counts as dead."""
    return timedelta(seconds=timeout_seconds + CLAIM_GRACE_SECONDS)
