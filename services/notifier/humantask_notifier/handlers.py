"""Message handlers: a completion event, a retry coming due, a request for the log.

Each message moves its task's delivery along `domain.next_step` until there is nothing
left for it to do; the rules live in `domain`, the adapters in `repository` (MongoDB),
`retries` (RabbitMQ), `sender` (HTTP) and `signing_keys` (the task-store). A handler
returns only once what it did is durable; then the consumer acks its message.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from aio_pika.abc import AbstractIncomingMessage
from prometheus_client import Counter, Histogram
from pydantic import BaseModel, ValidationError

from humantask_shared.errors import NotFound
from humantask_shared.messages.commands import CallbackLog, ListCallbacks
from humantask_shared.messages.events import TaskCompleted
from humantask_shared.messaging import PoisonMessage
from humantask_shared.timeutil import utcnow

from . import domain, payload
from .domain import Delivery, Step, Trigger
from .repository import DeliveryRepository
from .retries import RetryDue, RetryScheduler
from .sender import CallbackSender
from .signing_keys import CallbackSecrets

log = logging.getLogger(__name__)

ModelT = TypeVar("ModelT", bound=BaseModel)

CALLBACK_ATTEMPTS = Counter(
    "humantask_callback_attempts_total", "Callback attempts", ["attempt", "outcome"]
)
CALLBACK_SECONDS = Histogram("humantask_callback_seconds", "Time to send one callback")

# Each step changes the delivery, and a delivery has few states: more means a bug.
MAX_STEPS = 6


class AttemptInProgress(Exception):
    """Another process is sending this attempt; the message is looked at again later."""


@dataclass(frozen=True)
class Dependencies:
    deliveries: DeliveryRepository
    secrets: CallbackSecrets
    retries: RetryScheduler
    sender: CallbackSender
    claim_ttl: timedelta


def _parse(model: type[ModelT], message: AbstractIncomingMessage) -> ModelT:
    try:
        return model.model_validate_json(message.body)
    except ValidationError as exc:
        raise PoisonMessage(f"not a {model.__name__}: {exc.error_count()} errors") from exc


async def handle_task_completed(message: AbstractIncomingMessage, deps: Dependencies) -> None:
    event = _parse(TaskCompleted, message)
    await advance(event.task.task_id, "completed", deps, event)


async def handle_retry_due(message: AbstractIncomingMessage, deps: Dependencies) -> None:
    due = _parse(RetryDue, message)
    await advance(due.task_id, "retry_due", deps)


async def advance(
    task_id: str, trigger: Trigger, deps: Dependencies, event: TaskCompleted | None = None
) -> None:
    """Do what `domain.next_step` says until it says done (or to wait for another process)."""
    for _ in range(MAX_STEPS):
        delivery = await deps.deliveries.get(task_id)
        step = domain.next_step(delivery, trigger, utcnow(), deps.claim_ttl)
        if step is Step.DONE:
            return
        if step is Step.WAIT:
            raise AttemptInProgress(f"attempt of task {task_id} in progress elsewhere")
        if step is Step.START:
            assert event is not None
            await _start(event, deps)
            continue
        assert delivery is not None
        if step is Step.SEND_RETRY:
            # The secret first: an unreachable task-store must not cost an attempt.
            secret = await _secret(delivery.customer_id, deps)
            claimed = await deps.deliveries.save(delivery, domain.claim_retry(delivery, utcnow()))
            if claimed is not None:
                await _attempt(claimed, secret, deps)
        elif step is Step.SCHEDULE_RETRY:
            await deps.retries.schedule(delivery.task_id, delivery.request_id)
            await deps.deliveries.save(delivery, domain.retry_scheduled(delivery))
            log.info("callback retry scheduled", extra={"task_id": task_id})
        elif step is Step.ABANDON:
            outcome = domain.interrupted(delivery)
            if await deps.deliveries.save(delivery, domain.record(delivery, outcome)):
                _count(outcome, "interrupted")
                log.warning("callback attempt interrupted",
                            extra={"task_id": task_id, "attempt": outcome.attempt})
    raise RuntimeError(f"the callback of task {task_id} made no progress in {MAX_STEPS} steps")


async def _start(event: TaskCompleted, deps: Dependencies) -> None:
    secret = await _secret(event.customer_id, deps)
    try:
        first = domain.first_attempt(event, utcnow())
    except domain.NotDeliverable as exc:
        raise PoisonMessage(str(exc)) from exc
    if await deps.deliveries.create(first):
        await _attempt(first, secret, deps)


async def _secret(customer_id: str, deps: Dependencies) -> str:
    try:
        return await deps.secrets.get(customer_id)
    except NotFound as exc:
        raise PoisonMessage(f"no callback secret: {exc.message}") from exc


async def _attempt(claimed: Delivery, secret: str, deps: Dependencies) -> None:
    """Send the claimed attempt and record its outcome."""
    body, content_type = payload.encode_body(claimed.task, claimed.callback_format)
    headers = payload.callback_headers(
        claimed.task_id, claimed.attempt, int(time.time()), secret, body, content_type
    )
    started = time.perf_counter()
    result = await deps.sender.post(claimed.callback_url, body, headers)
    CALLBACK_SECONDS.observe(time.perf_counter() - started)
    outcome = domain.outcome(claimed.attempt, claimed.claimed_at, result.status_code, result.error)
    recorded = await deps.deliveries.save(claimed, domain.record(claimed, outcome))
    _count(outcome, "delivered" if outcome.delivered else "failed")
    log.info(
        "callback attempted",
        extra={"task_id": claimed.task_id, "attempt": outcome.attempt,
               "status_code": outcome.status_code, "error": outcome.error,
               "delivered": outcome.delivered,
               "duration_ms": round((time.perf_counter() - started) * 1000, 1)},
    )
    if recorded is None:
        log.warning("callback outcome not recorded: the attempt was declared interrupted",
                    extra={"task_id": claimed.task_id, "attempt": outcome.attempt})


def _count(outcome: domain.Outcome, label: str) -> None:
    CALLBACK_ATTEMPTS.labels(str(outcome.attempt), label).inc()


async def list_callbacks(command: ListCallbacks, _command_id: str, deps: Dependencies) -> CallbackLog:
    outcomes = await deps.deliveries.attempts(command.task_id, command.customer_id)
    return CallbackLog(attempts=[outcome.to_public() for outcome in outcomes])
