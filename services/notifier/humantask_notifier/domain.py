"""Callback delivery and its state machine (docs/reference/contract.md §7). No I/O here.

A delivery is one message to one callback URL, with at most two attempts. The
deliveries of a task are numbered in one sequence, 1, 2, 3..., whatever started them:

- **each completion** of the task (its first, and each after its customer rejected it in
  an audit: docs/reference/contract.md §11) starts one delivery of that completion's
  message. The first completion's is delivery 1, keyed by the task id alone (as every
  delivery was before tasks could complete twice). A later completion's takes the next
  number, once: its record names the completion (`completion`, `origin: completion`),
  and the completion event, however often it comes back, finds that record before it
  would take a number (`Deliveries.of_completion`); two notifiers racing for it both try
  the one next number, and the database lets one insert it;
- **each redelivery** asked for later (`POST /v1/task/{id}/callbacks/redeliver`,
  `humantask-admin callbacks redeliver`) sends the latest delivery's message again (the
  task's latest completion), numbered after it.

A delivery `n > 1` is keyed `<task id>.<n>`. A message keeps one `webhook-id` however
often it is sent: the key of the delivery that first sent it (the task id for the first
completion's, `<task id>.<n>` for a later completion's); `X-Callback-Delivery` is the
delivery's number. A completed batch has one delivery, keyed `batch-<batch id>`. Every
delivery follows the same machine:

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

Nothing here is particular to tasks but what a delivery carries (`task`) and who it is
about (`task_id`, its subject): another kind of callback (a batch's) is a `Delivery` of
its own subject and body, and gets the signing, the address rules, the one retry and
redeliveries from the same code.

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
# What made the notifier look at a delivery: the message that starts it (the completion
# event, or a redelivery's `RedeliveryDue`), or its retry coming due.
Trigger = Literal["completed", "retry_due"]
# What a delivery calls back: a task's completion, or a batch's.
Subject = Literal["task", "batch"]
# What started a delivery: a completion of its task (or its batch's), or a redelivery.
Origin = Literal["completion", "redelivery"]
BATCH_KEY_PREFIX = "batch-"
FINISHED_STATES: tuple[DeliveryState, ...] = ("delivered", "failed")


def delivery_id(task_id: str, number: int = 1) -> str:
    """The key of a task's delivery `number`: the first is the task id alone (as every
    record made before there were others), any later one `<task id>.<number>`."""
    return task_id if number == 1 else f"{task_id}.{number}"


def batch_delivery_key(batch_id: str) -> str:
    return f"{BATCH_KEY_PREFIX}{batch_id}"


@dataclass(frozen=True)
class SigningSecrets:
    """A customer's callback secret and, during a rotation's overlap window, the one it
    replaced, which signs too until `previous_until` (docs/operations/accounts.md)."""

    current: str
    previous: str | None = None
    previous_until: datetime | None = None

    def at(self, now: datetime) -> tuple[str, ...]:
        """The secrets a callback sent at `now` is signed with, the current one first."""
        if self.previous and self.previous_until is not None and now < self.previous_until:
            return (self.current, self.previous)
        return (self.current,)


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
    delivery: int = 1  # the number of the delivery it belongs to

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
            delivery=self.delivery if self.delivery > 1 else None,
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
    number: int = 1  # its place among its task's deliveries: 1, 2, 3...
    # Which completion of the task it carries (1 for a batch's).
    completion: int = 1
    origin: Origin = "completion"
    subject: Subject = "task"
    # Its `webhook-id`, when not its own key (a redelivery keeps its message's).
    message_id: str | None = None

    @property
    def delivery_id(self) -> str:
        """Its key: its record's id, its attempts' prefix."""
        return delivery_id(self.task_id, self.number)

    @property
    def webhook_id(self) -> str:
        """The id of the message it sends: the key of the delivery that first sent it."""
        return self.message_id or self.delivery_id

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


def new_delivery(event: TaskCompleted | BatchCompleted, now: datetime, number: int = 1) -> Delivery:
    """The delivery a completion starts, as delivery `number` of its task (a batch's is
    its only one)."""
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
        number=number,
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


class NotRedeliverable(ValueError):
    """A redelivery cannot start now: the latest delivery is still under way."""


def redelivery(latest: Delivery, now: datetime, request_id: str | None) -> Delivery:
    """The next delivery of `latest`'s task: the same message (its `webhook-id` too) to
    the same URL, numbered after it, with two attempts of its own. Only once `latest` is
    finished (delivered, or both attempts failed): one redelivery at a time, and none
    while a completion's delivery is under way."""
    if latest.state not in FINISHED_STATES:
        raise NotRedeliverable(
            f"the callback of task {latest.task_id} is still being delivered "
            f"(delivery {latest.number} is {latest.state.replace('_', ' ')}): "
            "ask again once it has finished"
        )
    return replace(
        latest,
        number=latest.number + 1,
        origin="redelivery",
        message_id=latest.webhook_id,
        attempts=(),
        retry_scheduled=False,
        request_id=request_id,
        created_at=now,
    )


def next_attempt(delivery: Delivery, now: datetime) -> Attempt:
    """The attempt to claim now: the first, or the retry after a failed first."""
    if delivery.state not in ("new", "awaiting_retry"):
        raise ValueError(f"the callback of {delivery.delivery_id} is {delivery.state}")
    # "new" has no attempt yet; "awaiting_retry" has its first, failed.
    return Attempt(number=2 if delivery.attempts else 1, at=now, delivery=delivery.number)


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
