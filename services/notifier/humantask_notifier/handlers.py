"""Message handlers: a completion event (a task's or a batch's), a retry coming due, a
request for the log.

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

from prometheus_client import Counter, Histogram

from humantask_shared.core.errors import NotFound
from humantask_shared.core.messages.commands import CallbackLog, ListCallbacks
from humantask_shared.core.messages.events import BatchCompleted, TaskCompleted
from humantask_shared.core.messages.retries import RetryDue
from humantask_shared.core.timeutil import utcnow
from humantask_shared.runtime.consumer import PoisonMessage, PutBack

from . import domain, payload
from .domain import Delivery, Step, Trigger
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

# Each step changes the delivery, and a delivery has few states: more means a bug.
MAX_STEPS = 6


class AttemptInProgress(Exception):
    """Another process is sending this attempt; the message is looked at again later."""


async def handle_task_completed(event: TaskCompleted, deps: Dependencies) -> None:
    key = domain.delivery_key(event.task.task_id, event.completion)
    await _advance_or_put_back(key, "completed", deps, event)


async def handle_batch_completed(event: BatchCompleted, deps: Dependencies) -> None:
    """A completed batch's callback, when it has a `callback` URL. Batches are few: a busy
    host puts the event back after the consumer's pause (a transient error), rather
    than through a delay queue of its own."""
    if not event.batch.callback:
        return
    key = domain.batch_delivery_key(event.batch_id)
    try:
        await advance(key, "completed", deps, event)
    except HostBusy as busy:
        CALLBACK_DEFERRALS.labels("completed").inc()
        raise AttemptInProgress(f"the callback host of {key} is busy") from busy


async def handle_retry_due(due: RetryDue, deps: Dependencies) -> None:
    await _advance_or_put_back(due.task_id, "retry_due", deps)


async def _advance_or_put_back(
    key: str,
    trigger: Trigger,
    deps: Dependencies,
    event: TaskCompleted | BatchCompleted | None = None,
) -> None:
    """`advance`; when the callback's host is busy, nothing was claimed and the message
    is put back in the broker for a while (`PutBack`: its dispatcher does it), so the
    next message, perhaps another customer's, is taken at once (`hosts`)."""
    try:
        await advance(key, trigger, deps, event)
    except HostBusy as busy:
        CALLBACK_DEFERRALS.labels(trigger).inc()
        log.info("callback host busy: message put back", extra={"delivery": key})
        raise PutBack(f"the callback host of {key} is busy") from busy


async def advance(
    key: str,
    trigger: Trigger,
    deps: Dependencies,
    event: TaskCompleted | BatchCompleted | None = None,
) -> None:
    """Do what `domain.next_step` says until it says done (or to wait for another
    process), for the delivery of `key` (`domain.delivery_key`)."""
    for _ in range(MAX_STEPS):
        delivery = await deps.deliveries.get(key)
        step = domain.next_step(delivery, trigger, utcnow(), deps.claim_ttl)
        if step is Step.DONE:
            return
        if step is Step.WAIT:
            raise AttemptInProgress(f"attempt of {key} in progress elsewhere")
        if step is Step.START:
            assert event is not None
            delivery = await _delivery_of(event, deps)
        assert delivery is not None
        if step in (Step.START, Step.SEND_RETRY):
            # The secret first: an unreachable task-store must not cost an attempt. Then a
            # slot of the host (or HostBusy), before the claim: a busy host costs none.
            secret = await _secret(delivery.customer_id, deps)
            with deps.hosts.slot(host_of(delivery.callback_url)):
                attempt = domain.next_attempt(delivery, utcnow())
                if await deps.deliveries.claim(delivery, attempt):
                    await _send(delivery, attempt, secret, deps)
        elif step is Step.SCHEDULE_RETRY:
            await deps.retries.schedule(delivery.key, delivery.request_id)
            await deps.deliveries.mark_retry_scheduled(delivery.key)
            log.info("callback retry scheduled", extra=_names(delivery))
        elif step is Step.ABANDON:
            assert delivery.last is not None
            if await deps.deliveries.finish(key, domain.interrupted(delivery.last)):
                _count(delivery.last, "interrupted", "interrupted")
                log.warning(
                    "callback attempt interrupted",
                    extra={**_names(delivery), "attempt": delivery.last.number},
                )
    raise RuntimeError(f"the callback {key} made no progress in {MAX_STEPS} steps")


def _names(delivery: Delivery) -> dict[str, str]:
    """What a log line says of a delivery: its task and its key."""
    return {"task_id": delivery.task_id, "delivery": delivery.key}


async def _delivery_of(event: TaskCompleted | BatchCompleted, deps: Dependencies) -> Delivery:
    """The event's delivery, stored (by this process or one before it)."""
    try:
        delivery = domain.new_delivery(event, utcnow())
    except domain.NotDeliverable as exc:
        raise PoisonMessage(str(exc)) from exc
    await deps.deliveries.create(delivery)
    stored = await deps.deliveries.get(delivery.key)
    assert stored is not None
    return stored


async def _secret(customer_id: str, deps: Dependencies) -> str:
    try:
        return await deps.secrets.get(customer_id)
    except NotFound as exc:
        raise PoisonMessage(f"no callback secret: {exc.message}") from exc


async def _send(
    delivery: Delivery, claimed: domain.Attempt, secret: str, deps: Dependencies
) -> None:
    """Send a claimed attempt and record its outcome."""
    body, content_type = payload.delivery_body(delivery)
    headers = payload.delivery_headers(
        delivery, claimed.number, int(time.time()), secret, body, content_type
    )
    started = time.perf_counter()
    result = await deps.sender.post(delivery.callback_url, body, headers)
    CALLBACK_SECONDS.observe(time.perf_counter() - started)
    attempt = domain.finish(claimed, result.status_code, result.error)
    recorded = await deps.deliveries.finish(delivery.key, attempt)
    _count(attempt, "delivered" if attempt.delivered else "failed", result.kind)
    log.info(
        "callback attempted",
        extra={
            **_names(delivery),
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
            extra={**_names(delivery), "attempt": attempt.number},
        )


def _count(attempt: domain.Attempt, outcome: str, reason: str) -> None:
    CALLBACK_ATTEMPTS.labels(str(attempt.number), outcome, reason).inc()


async def list_callbacks(command: ListCallbacks, deps: Dependencies) -> CallbackLog:
    attempts = await deps.deliveries.log(command.task_id, command.customer_id)
    return CallbackLog(attempts=[attempt.to_public() for attempt in attempts])
