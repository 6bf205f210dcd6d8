"""The callback delivery state machine (services/notifier/humantask_notifier/domain.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from humantask_notifier import domain
from humantask_notifier.domain import Attempt, Delivery, Step
from humantask_shared.core.messages.events import TaskCompleted
from humantask_shared.core.models import Task
from tests.support.callbacks import SEED_TASK

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
TTL = timedelta(seconds=11)
TASK = SEED_TASK


def event(**task_changes: object) -> TaskCompleted:
    return TaskCompleted(
        customer_id="c1", callback_format="form", task=Task.model_validate({**TASK, **task_changes})
    )


def delivery(*attempts: Attempt, retry_scheduled: bool = False) -> Delivery:
    return Delivery(
        task_id=TASK["task_id"],
        customer_id="c1",
        callback_format="form",
        task=TASK,
        attempts=attempts,
        retry_scheduled=retry_scheduled,
    )


def failed(number: int, at: datetime = NOW) -> Attempt:
    return domain.finish(Attempt(number, at), 500, None)


def delivered(number: int) -> Attempt:
    return domain.finish(Attempt(number, NOW), 200, None)


def test_a_completion_makes_a_new_delivery_of_the_customer_view() -> None:
    new = domain.new_delivery(event(), NOW)
    assert new.state == "new"
    assert new.task == TASK
    assert new.callback_url == SEED_TASK["callback_url"]
    assert domain.next_attempt(new, NOW) == Attempt(1, NOW)


@pytest.mark.parametrize(
    "changes", [{"status": "pending", "response": None, "completed_at": None}, {"response": None}]
)
def test_only_a_completed_task_with_a_response_is_deliverable(changes: dict) -> None:
    with pytest.raises(domain.NotDeliverable):
        domain.new_delivery(event(**changes), NOW)


def test_exactly_200_is_success() -> None:
    assert domain.finish(Attempt(1, NOW), 200, None).delivered
    for status in (201, 204, 301, 302, 404, 500):
        attempt = domain.finish(Attempt(1, NOW), status, None)
        assert not attempt.delivered
        assert attempt.error == f"the receiver answered {status}, not 200"
    timed_out = domain.finish(Attempt(1, NOW), None, "timed out after 1 s")
    assert not timed_out.delivered and timed_out.error == "timed out after 1 s"


def test_states_follow_the_attempts() -> None:
    assert delivery().state == "new"
    assert delivery(Attempt(1, NOW)).state == "attempting"
    assert delivery(delivered(1)).state == "delivered"
    assert delivery(failed(1)).state == "awaiting_retry"
    assert delivery(failed(1), Attempt(2, NOW)).state == "attempting"
    assert delivery(failed(1), delivered(2)).state == "delivered"
    assert delivery(failed(1), failed(2)).state == "failed"
    assert delivery(domain.interrupted(Attempt(1, NOW))).state == "awaiting_retry"


def test_there_is_never_a_third_attempt_to_claim() -> None:
    assert domain.next_attempt(delivery(failed(1)), NOW).number == 2
    for done in (
        delivery(failed(1), failed(2)),
        delivery(delivered(1)),
        delivery(Attempt(1, NOW)),
        delivery(failed(1), Attempt(2, NOW)),
    ):
        with pytest.raises(ValueError):
            domain.next_attempt(done, NOW)


# (delivery, trigger, expected step); "fresh" claims are NOW, stale ones TTL ago.
STALE = NOW - TTL
CASES = [
    (None, "completed", Step.START),
    (None, "retry_due", Step.DONE),
    (delivery(), "completed", Step.START),
    (delivery(Attempt(1, NOW)), "completed", Step.WAIT),
    (delivery(Attempt(1, STALE)), "completed", Step.ABANDON),
    (delivery(Attempt(1, STALE)), "retry_due", Step.DONE),
    (delivery(delivered(1)), "completed", Step.DONE),
    (delivery(delivered(1)), "retry_due", Step.DONE),
    (delivery(failed(1)), "completed", Step.SCHEDULE_RETRY),
    (delivery(failed(1), retry_scheduled=True), "completed", Step.DONE),
    (delivery(failed(1)), "retry_due", Step.SEND_RETRY),
    (delivery(failed(1), Attempt(2, NOW)), "retry_due", Step.WAIT),
    (delivery(failed(1), Attempt(2, STALE)), "retry_due", Step.ABANDON),
    (delivery(failed(1), Attempt(2, STALE)), "completed", Step.DONE),
    (delivery(failed(1), failed(2)), "retry_due", Step.DONE),
    (delivery(failed(1), failed(2)), "completed", Step.DONE),
    (delivery(failed(1), delivered(2)), "retry_due", Step.DONE),
]


@pytest.mark.parametrize(("current", "trigger", "expected"), CASES)
def test_next_step(current: Delivery | None, trigger: domain.Trigger, expected: Step) -> None:
    assert domain.next_step(current, trigger, NOW, TTL) is expected


def test_an_interrupted_attempt_is_logged_as_failed_with_its_claim_time() -> None:
    attempt = domain.interrupted(Attempt(2, STALE))
    public = attempt.to_public()
    assert (public.attempt, public.at, public.status_code, public.delivered) == (
        2,
        STALE,
        None,
        False,
    )
    assert public.error == domain.INTERRUPTED


def test_claims_outlive_the_send_timeout() -> None:
    assert domain.claim_ttl(10) == timedelta(seconds=10 + domain.CLAIM_GRACE_SECONDS)
