"""Callback delivery and its state machine (API.md section 7). No I/O here.

One delivery per completed task, keyed by its task id, at most two attempts:

    attempting(1) ──200──▶ delivered
        │ anything else
        ▼
    awaiting_retry ──(after CALLBACK_RETRY_DELAY_SECONDS)──▶ attempting(2) ──▶ delivered | failed

An attempt is *claimed* (the record says `attempting`, with the attempt number) before
it is sent, and only one process can claim a given attempt number: the first claim
inserts the record (unique `_id`), the second moves it out of `awaiting_retry`, which is
only ever entered once. So at most two attempts happen, however often events or retry
messages are delivered and however many notifiers run.

An attempt whose claimer died before recording the outcome (`claim_ttl` after it was
claimed, long past any send) is logged as interrupted: it may or may not have reached
the receiver. An interrupted first attempt still gets its retry.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from humantask_shared.messages.events import TaskCompleted
from humantask_shared.models import CallbackAttempt, CallbackFormat

SUCCESS_STATUS = 200
MAX_ATTEMPTS = 2
# How long past the send timeout an unrecorded attempt may take before its claim is
# considered dead: covers recording the outcome, a slow database and clock skew.
CLAIM_GRACE_SECONDS = 10.0

INTERRUPTED = "interrupted: the notifier stopped during this attempt; its outcome is unknown"

DeliveryState = Literal["attempting", "awaiting_retry", "delivered", "failed"]
# What made the notifier look at a delivery: the completion event, or its retry coming due.
Trigger = Literal["completed", "retry_due"]


class NotDeliverable(ValueError):
    """An event that cannot produce a callback (not a completed task)."""


@dataclass(frozen=True)
class Outcome:
    """What one attempt gave; the public log entry."""

    attempt: int
    at: datetime
    status_code: int | None = None
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code == SUCCESS_STATUS and self.error is None

    def to_public(self) -> CallbackAttempt:
        return CallbackAttempt(
            attempt=self.attempt,  # type: ignore[arg-type]
            at=self.at,
            status_code=self.status_code,
            error=self.error,
            delivered=self.delivered,
        )


def outcome(attempt: int, at: datetime, status_code: int | None, error: str | None) -> Outcome:
    """The outcome of a send: exactly status 200 is success; any other answer is an error."""
    if error is None and status_code != SUCCESS_STATUS:
        error = f"the receiver answered {status_code}, not {SUCCESS_STATUS}"
    return Outcome(attempt=attempt, at=at, status_code=status_code, error=error)


@dataclass(frozen=True)
class Delivery:
    """Everything the notifier keeps about one task's callback."""

    task_id: str
    customer_id: str
    callback_format: CallbackFormat
    # The customer's view of the completed task, as JSON: what the callback carries.
    task: dict[str, Any]
    state: DeliveryState
    attempt: int  # the attempt last claimed
    claimed_at: datetime
    log: tuple[Outcome, ...] = ()
    # The retry is known to wait in RabbitMQ (publisher-confirmed).
    retry_scheduled: bool = False
    # Optimistic concurrency: every write checks and bumps it.
    version: int = 0
    request_id: str | None = field(default=None, compare=False)
    created_at: datetime | None = None

    @property
    def callback_url(self) -> str:
        return str(self.task["callback_url"])


def first_attempt(event: TaskCompleted, now: datetime) -> Delivery:
    """The delivery of a completion, with attempt 1 claimed."""
    task = event.task
    if task.status != "completed" or task.response is None:
        raise NotDeliverable(f"task {task.task_id} is {task.status}, without a response")
    return Delivery(
        task_id=task.task_id,
        customer_id=event.customer_id,
        callback_format=event.callback_format,
        task=task.to_json_dict(),
        state="attempting",
        attempt=1,
        claimed_at=now,
        request_id=event.request_id,
        created_at=now,
    )


def state_after(result: Outcome) -> DeliveryState:
    if result.delivered:
        return "delivered"
    return "awaiting_retry" if result.attempt < MAX_ATTEMPTS else "failed"


def record(delivery: Delivery, result: Outcome) -> Delivery:
    """The delivery once the outcome of its claimed attempt is known."""
    if delivery.state != "attempting" or delivery.attempt != result.attempt:
        raise ValueError(f"attempt {result.attempt} of {delivery.task_id} is not in progress")
    return replace(delivery, state=state_after(result), log=(*delivery.log, result))


def interrupted(delivery: Delivery) -> Outcome:
    return Outcome(attempt=delivery.attempt, at=delivery.claimed_at, error=INTERRUPTED)


def claim_retry(delivery: Delivery, now: datetime) -> Delivery:
    if delivery.state != "awaiting_retry":
        raise ValueError(f"the callback of {delivery.task_id} is not awaiting a retry")
    return replace(delivery, state="attempting", attempt=delivery.attempt + 1, claimed_at=now)


def retry_scheduled(delivery: Delivery) -> Delivery:
    return replace(delivery, retry_scheduled=True)


class Step(enum.Enum):
    """What the notifier does next for a delivery, given what woke it up."""

    START = "start"  # no record yet: claim attempt 1 and send it
    SEND_RETRY = "send_retry"  # claim attempt 2 and send it
    SCHEDULE_RETRY = "schedule_retry"  # make sure the retry waits in RabbitMQ
    WAIT = "wait"  # another process is sending this attempt: look again later
    ABANDON = "abandon"  # whoever claimed this attempt died: log it as interrupted
    DONE = "done"  # nothing (more) to do for this trigger


def next_step(
    delivery: Delivery | None, trigger: Trigger, now: datetime, claim_ttl: timedelta
) -> Step:
    """The one rule that decides, for every message the notifier gets, what happens."""
    if delivery is None:
        return Step.START if trigger == "completed" else Step.DONE
    if delivery.state == "attempting":
        # The completion event looks after attempt 1, the retry message after attempt 2;
        # until its message is acked, a crashed claimer's message comes back to us.
        owner: Trigger = "completed" if delivery.attempt == 1 else "retry_due"
        if trigger != owner:
            return Step.DONE
        return Step.ABANDON if now - delivery.claimed_at >= claim_ttl else Step.WAIT
    if delivery.state == "awaiting_retry":
        if trigger == "retry_due":
            return Step.SEND_RETRY
        return Step.DONE if delivery.retry_scheduled else Step.SCHEDULE_RETRY
    return Step.DONE


def claim_ttl(timeout_seconds: float) -> timedelta:
    """How long a claimed attempt may go unrecorded before its claimer counts as dead."""
    return timedelta(seconds=timeout_seconds + CLAIM_GRACE_SECONDS)
