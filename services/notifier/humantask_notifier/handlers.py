"""Message handlers: a completion event (a task's or a batch's), a retry or a redelivery
coming due, and the commands: the log, a redelivery asked for, the failed deliveries.

Each gets its message parsed (by its queue's `EventDispatcher` or `CommandServer`;
`handler_table` says which handler serves which queue). A completion or a retry moves
its task's delivery along `domain.next_step` until there is nothing left for it to do;
the rules live in `domain`, the adapters behind `ports` (MongoDB, RabbitMQ, HTTP, the
task-store). A handler returns only once what it did is durable; then the consumer acks
its message.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from prometheus_client import Counter, Histogram

from humantask_shared.core.errors import Conflict, NotFound
from humantask_shared.core.messages.commands import (
    CallbackLog,
    CallbackRedelivery,
    FailedCallback,
    FailedCallbacks,
    ListCallbacks,
    ListFailedCallbacks,
    RedeliverCallback,
)
from humantask_shared.core.messages.events import BatchCompleted, TaskCompleted
from humantask_shared.core.messages.retries import RedeliveryDue, RetryDue
from humantask_shared.core.timeutil import utcnow
from humantask_shared.runtime.consumer import PoisonMessage, PutBack
from humantask_shared.runtime.logging import request_id_var

from . import domain, payload
from .domain import Delivery, SigningSecrets, Step, Trigger
from .hosts import HostBusy, host_of
from .ports import Dependencies

log = logging.getLogger(__name__)

# outcome: delivered, failed or interrupted (the process stopped mid-attempt); reason: the
# receiver's status class (status_2xx ... status_5xx) or what went wrong (SendResult.kind).
CALLBACK_ATTEMPTS = Counter(
    "humantask_callback_attempts_total",
    "Finished callback attempts, by outcome and reason",
    ["attempt", "outcome", "reason"],
)
CALLBACK_SECONDS = Histogram("humantask_callback_seconds", "Time to send one callback")
CALLBACK_DEFERRALS = Counter(
    "humantask_callback_deferrals_total",
    "Messages put back for a while because their callback's host had "
    "CALLBACK_MAX_PER_HOST callbacks in progress, by trigger (completed, retry_due)",
    ["trigger"],
)

CALLBACK_REDELIVERIES = Counter(
    "humantask_callback_redeliveries_total",
    "Redeliveries of a callback asked for (by a customer or the operator) and started",
)

# Each step changes the delivery, and a delivery has few states: more means a bug.
MAX_STEPS = 6


class AttemptInProgress(Exception):
    """Another process is sending this attempt; the message is looked at again later."""


async def handle_task_completed(event: TaskCompleted, deps: Dependencies) -> None:
    """A completion of a task: its delivery (delivery 1 for the first completion, the one
    it was given for a later one: `completion_delivery`), started or carried on."""
    delivery_id = await completion_delivery(event, deps)
    await _advance_or_put_back(delivery_id, "completed", deps, event)


async def completion_delivery(event: TaskCompleted, deps: Dependencies) -> str:
    """The key of the delivery of this completion of the task. The first completion's is
    the task id, always. A later completion's is numbered after the task's deliveries so
    far, once: whoever handles the event again finds the record that names it, and two
    handling it at once try the same number, which only one can insert. The number is
    read before the look for the record, so a record written between the two is found
    (`docs/architecture/overview.md`, "The notifier")."""
    task_id = event.task.task_id
    if event.completion <= 1:
        return domain.delivery_id(task_id)
    for _ in range(MAX_STEPS):
        last = await deps.deliveries.last_number(task_id)
        found = await deps.deliveries.of_completion(task_id, event.completion)
        if found is not None:
            return found.delivery_id
        # Never 1: that is the first completion's, whenever its event comes.
        delivery = _new_delivery(event, max(last, 1) + 1)
        if await deps.deliveries.create(delivery):
            log.info("callback of a later completion numbered", extra=_about(delivery))
            return delivery.delivery_id
    raise RuntimeError(f"no delivery number for completion {event.completion} of {task_id}")


async def handle_batch_completed(event: BatchCompleted, deps: Dependencies) -> None:
    """A completed batch's callback, when it has a `callback` URL. Batches are few: a busy
    host puts the event back after the consumer's pause (a transient error), rather
    than through a delay queue of its own."""
    if not event.batch.callback:
        return
    key = domain.batch_delivery_key(event.batch_id)
    try:
        await advance(domain.delivery_id(key), "completed", deps, event)
    except HostBusy as busy:
        CALLBACK_DEFERRALS.labels("completed").inc()
        raise AttemptInProgress(f"the callback host of {key} is busy") from busy


async def handle_retry_due(due: RetryDue, deps: Dependencies) -> None:
    await _advance_or_put_back(domain.delivery_id(due.task_id, due.delivery), "retry_due", deps)


async def handle_redelivery_due(due: RedeliveryDue, deps: Dependencies) -> None:
    """A redelivery's first attempt: its record was written before this was sent, so it
    starts as a completion event starts the first delivery."""
    await _advance_or_put_back(domain.delivery_id(due.task_id, due.delivery), "completed", deps)


async def _advance_or_put_back(
    delivery_id: str,
    trigger: Trigger,
    deps: Dependencies,
    event: TaskCompleted | BatchCompleted | None = None,
) -> None:
    """`advance`; when the callback's host is busy, nothing was claimed and the message
    is put back in the broker for a while (`PutBack`: its dispatcher does it), so the
    next message, perhaps another customer's, is taken at once (`hosts`)."""
    try:
        await advance(delivery_id, trigger, deps, event)
    except HostBusy as busy:
        CALLBACK_DEFERRALS.labels(trigger).inc()
        log.info("callback host busy: message put back", extra={"delivery_id": delivery_id})
        raise PutBack(f"the callback host of {delivery_id} is busy") from busy


async def advance(
    delivery_id: str,
    trigger: Trigger,
    deps: Dependencies,
    event: TaskCompleted | BatchCompleted | None = None,
) -> None:
    """Do what `domain.next_step` says until it says done (or to wait for another process).
    `event` builds the delivery of a task's first completion or of a batch when it has no
    record yet; any other starts from its stored record."""
    for _ in range(MAX_STEPS):
        delivery = await deps.deliveries.get(delivery_id)
        step = domain.next_step(delivery, trigger, utcnow(), deps.claim_ttl)
        if step is Step.DONE:
            return
        if step is Step.WAIT:
            raise AttemptInProgress(f"attempt of {delivery_id} in progress elsewhere")
        if step is Step.START and delivery is None:
            assert event is not None
            delivery = await _delivery_of(event, deps)
        assert delivery is not None
        if step in (Step.START, Step.SEND_RETRY):
            # The secret first: an unreachable task-store must not cost an attempt. Then a
            # slot of the host (or HostBusy), before the claim: a busy host costs none.
            secrets = await _secrets(delivery.customer_id, deps)
            with deps.hosts.slot(host_of(delivery.callback_url)):
                attempt = domain.next_attempt(delivery, utcnow())
                if await deps.deliveries.claim(delivery, attempt):
                    await _send(delivery, attempt, secrets, deps)
        elif step is Step.SCHEDULE_RETRY:
            await deps.retries.schedule(delivery.task_id, delivery.number, delivery.request_id)
            await deps.deliveries.mark_retry_scheduled(delivery_id)
            log.info("callback retry scheduled", extra=_about(delivery))
        elif step is Step.ABANDON:
            assert delivery.last is not None
            if await deps.deliveries.finish(delivery_id, domain.interrupted(delivery.last)):
                _count(delivery.last, "interrupted", "interrupted")
                log.warning(
                    "callback attempt interrupted",
                    extra={**_about(delivery), "attempt": delivery.last.number},
                )
    raise RuntimeError(f"the callback {delivery_id} made no progress in {MAX_STEPS} steps")


def _about(delivery: Delivery) -> dict[str, Any]:
    """What a log line says of a delivery: its task (or batch), its number, its message."""
    return {
        "task_id": delivery.task_id,
        "delivery": delivery.number,
        "completion": delivery.completion,
        "webhook_id": delivery.webhook_id,
    }


def _new_delivery(event: TaskCompleted | BatchCompleted, number: int = 1) -> Delivery:
    try:
        return domain.new_delivery(event, utcnow(), number)
    except domain.NotDeliverable as exc:
        raise PoisonMessage(str(exc)) from exc


async def _delivery_of(event: TaskCompleted | BatchCompleted, deps: Dependencies) -> Delivery:
    """The delivery of a first completion (or a batch's), stored (by this process or one
    before it)."""
    delivery = _new_delivery(event)
    await deps.deliveries.create(delivery)
    stored = await deps.deliveries.get(delivery.delivery_id)
    assert stored is not None
    return stored


async def _secrets(customer_id: str, deps: Dependencies) -> SigningSecrets:
    try:
        return await deps.secrets.get(customer_id)
    except NotFound as exc:
        raise PoisonMessage(f"no callback secret: {exc.message}") from exc


async def _send(
    delivery: Delivery, claimed: domain.Attempt, secrets: SigningSecrets, deps: Dependencies
) -> None:
    """Send a claimed attempt and record its outcome."""
    body, content_type = payload.delivery_body(delivery)
    headers = payload.delivery_headers(
        delivery, claimed.number, int(time.time()), secrets.at(utcnow()), body, content_type
    )
    started = time.perf_counter()
    result = await deps.sender.post(delivery.callback_url, body, headers)
    CALLBACK_SECONDS.observe(time.perf_counter() - started)
    attempt = domain.finish(claimed, result.status_code, result.error)
    recorded = await deps.deliveries.finish(delivery.delivery_id, attempt)
    _count(attempt, "delivered" if attempt.delivered else "failed", result.kind)
    log.info(
        "callback attempted",
        extra={
            **_about(delivery),
            "attempt": attempt.number,
            "status_code": attempt.status_code,
            "error": attempt.error,
            "delivered": attempt.delivered,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        },
    )
    if not recorded:
        log.warning(
            "callback outcome not recorded: the attempt was declared interrupted",
            extra={**_about(delivery), "attempt": attempt.number},
        )


def _count(attempt: domain.Attempt, outcome: str, reason: str) -> None:
    CALLBACK_ATTEMPTS.labels(str(attempt.number), outcome, reason).inc()


async def list_callbacks(command: ListCallbacks, deps: Dependencies) -> CallbackLog:
    attempts = await deps.deliveries.log(command.task_id, command.customer_id)
    return CallbackLog(attempts=[attempt.to_public() for attempt in attempts])


async def redeliver_callback(command: RedeliverCallback, deps: Dependencies) -> CallbackRedelivery:
    """A new delivery of the task's callback, after its latest (which must be finished),
    with its own two attempts. Its record is written first, then the message that starts
    it is confirmed by the broker: the answer means it is on its way. Asked again while
    that message has not been acted on, it is sent again (the claim of its first attempt
    keeps it to one), so a caller that got no answer may simply ask again."""
    latest = await deps.deliveries.latest(command.task_id)
    if latest is None or (
        command.customer_id is not None and latest.customer_id != command.customer_id
    ):
        # The gateway asked the task-store first: the task is the customer's, completed.
        raise Conflict(
            f"the callback of task {command.task_id} cannot be redelivered: no delivery of "
            "it is on record (its completion's is still on its way, or the latest was more "
            "than 7 days ago)"
        )
    if latest.origin == "redelivery" and latest.state == "new":
        await deps.retries.start(latest.task_id, latest.number, latest.request_id)
        return CallbackRedelivery(task_id=latest.task_id, delivery=latest.number)
    try:
        redelivery = domain.redelivery(latest, utcnow(), request_id_var.get())
    except domain.NotRedeliverable as exc:
        raise Conflict(str(exc)) from exc
    if not await deps.deliveries.create(redelivery):
        raise Conflict(
            f"the callback of task {command.task_id} is already being redelivered: "
            "ask again once that delivery has finished"
        )
    await deps.retries.start(redelivery.task_id, redelivery.number, redelivery.request_id)
    CALLBACK_REDELIVERIES.inc()
    log.info("callback redelivery asked for", extra=_about(redelivery))
    return CallbackRedelivery(task_id=redelivery.task_id, delivery=redelivery.number)


async def list_failed_callbacks(
    command: ListFailedCallbacks, deps: Dependencies
) -> FailedCallbacks:
    found = await deps.deliveries.failed(command.since, command.customer_id, command.limit)
    return FailedCallbacks(
        callbacks=[
            FailedCallback(
                task_id=delivery.task_id,
                customer_id=delivery.customer_id,
                delivery=delivery.number,
                callback_url=delivery.callback_url,
                failed_at=attempt.at,
                status_code=attempt.status_code,
                error=attempt.error,
            )
            for delivery, attempt in found
        ]
    )
