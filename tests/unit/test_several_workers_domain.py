"""Several workers per task, gold tasks and blocked workers in the task's state machine
(domain.py; docs/reference/contract.md §10), without any I/O."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from humantask_shared.core.errors import Conflict
from humantask_shared.core.messages.events import TaskAnswered, TaskCompleted
from humantask_shared.core.models import CreateTaskRequest
from humantask_taskstore import domain, quality
from humantask_taskstore.workers import QualityContext, WorkerStanding

T0 = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
LEASE = timedelta(seconds=600)
SEED: dict[str, Any] = {
    "callback_url": "http://www.example.com/callback",
    "instruction": "Is this review positive?",
    "attachment_type": "text",
    "attachment": "great product",
    "categories": ["yes", "no"],
}


def task(**params: Any) -> domain.TaskRecord:
    record, _ = domain.create_task(
        "0123456789abcdef01234567",
        "cust-1",
        CreateTaskRequest.model_validate({**SEED, **params}),
        T0,
    )
    return record


def lease(record: domain.TaskRecord, worker: str, at: datetime = T0) -> domain.TaskRecord:
    return domain.lease_to(record, worker, at, at + LEASE)


def answer(
    record: domain.TaskRecord,
    worker: str,
    category: str,
    at: datetime = T0,
    context: QualityContext | None = None,
) -> domain.TaskRecord:
    if record.lease_of(worker, at) is None:
        record = lease(record, worker, at)
    answered, _ = domain.submit_work(record, worker, category, at, context=context)
    return answered


def blocked(*workers: str) -> QualityContext:
    return QualityContext(workers={w: WorkerStanding(blocked=True) for w in workers})


# --- the defaults keep today's task ----------------------------------------------------------


def test_a_task_without_quality_settings_shows_none_and_completes_on_its_first_answer() -> None:
    record = task()
    shown = record.to_public().to_json_dict()
    assert not {"min_workers", "max_workers", "confidence", "gold_category"} & set(shown)
    assert record.rule == quality.CompletionRule(1, 1, 0.9)
    done = answer(record, "alice", "no")
    assert done.status == "completed"
    assert done.to_public().to_json_dict()["response"] == {"category": "no", "status_code": 200}


def test_the_settings_given_are_shown_and_the_rule_fills_in_the_rest() -> None:
    record = task(min_workers=2, confidence=0.95)
    shown = record.to_public().to_json_dict()
    assert (shown["min_workers"], shown["confidence"]) == (2, 0.95)
    assert "max_workers" not in shown
    assert record.rule == quality.CompletionRule(2, 2, 0.95)
    assert task(max_workers=4).rule == quality.CompletionRule(1, 4, 0.9)


# --- slots ---------------------------------------------------------------------------------


def test_leases_and_counted_answers_never_exceed_max_workers() -> None:
    record = task(max_workers=3)
    record = lease(lease(record, "a"), "b", T0 + timedelta(seconds=1))
    assert record.free_at is None and domain.claimable_by(record, "c", T0)
    record = lease(record, "c", T0 + timedelta(seconds=2))
    # Full: free again when the first lease ends.
    assert record.free_at == T0 + LEASE
    assert not domain.claimable_by(record, "d", T0 + timedelta(seconds=3))
    record = answer(record, "b", "yes", T0 + timedelta(seconds=3))
    assert record.status == "pending" and record.free_at == T0 + LEASE
    assert len(record.counted_answers) + len(record.live_leases(T0)) == 3
    assert not domain.claimable_by(record, "d", T0 + timedelta(seconds=4))


def test_a_lease_that_runs_out_gives_its_slot_back() -> None:
    record = lease(lease(task(max_workers=2), "a"), "b", T0 + timedelta(seconds=5))
    assert not domain.claimable_by(record, "c", T0 + LEASE - timedelta(milliseconds=1))
    later = T0 + LEASE
    assert domain.claimable_by(record, "c", later)
    taken = lease(record, "c", later)
    assert [x.worker_id for x in taken.leases] == ["b", "c"]  # a's is dropped
    assert taken.free_at == T0 + timedelta(seconds=5) + LEASE


def test_a_worker_answers_a_task_once_and_holds_one_lease_on_it() -> None:
    record = lease(task(max_workers=3), "a")
    assert not domain.claimable_by(record, "a", T0)  # it holds one already
    record = answer(record, "a", "yes")
    assert record.answered_by("a") and not domain.claimable_by(record, "a", T0)
    assert domain.claimable_by(record, "b", T0)


# --- completion ----------------------------------------------------------------------------


def test_a_several_worker_task_completes_by_the_rule_with_confidence_and_votes() -> None:
    record = task(max_workers=5, confidence=0.9)
    for n, worker in enumerate(["a", "b"]):
        record = answer(record, worker, "yes", T0 + timedelta(seconds=n))
        assert record.status == "pending"  # two agreeing answers: 0.84 with no history
    record, events = domain.submit_work(lease(record, "c"), "c", "yes", T0 + timedelta(seconds=3))
    assert record.status == "completed"
    assert record.response is not None
    assert record.response.category == "yes" and record.response.votes == {"yes": 3}
    assert record.response.confidence is not None and record.response.confidence >= 0.9
    assert [type(e) for e in events] == [TaskAnswered, TaskCompleted]
    public = record.to_public().to_json_dict()
    assert set(public["response"]) == {"category", "status_code", "confidence", "votes"}
    assert not any(w in str(public) for w in ("'a'", "'b'", "'c'"))


def test_max_workers_counted_answers_complete_the_task_however_split() -> None:
    record = task(min_workers=1, max_workers=3, confidence=0.99)
    record = answer(record, "a", "yes")
    record = answer(record, "b", "no")
    done = answer(record, "c", "no")
    assert done.status == "completed" and done.response is not None
    assert done.response.votes == {"yes": 1, "no": 2} and done.response.category == "no"
    assert sum(done.response.votes.values()) == len(done.counted_answers) == 3
    assert done.leases == () and done.posterior is not None


def test_completion_ends_every_other_lease() -> None:
    record = lease(lease(task(max_workers=3, min_workers=1, confidence=0.5), "a"), "b")
    done = answer(record, "a", "yes")
    assert done.status == "completed" and done.leases == ()
    with pytest.raises(Conflict):
        domain.submit_work(done, "b", "yes", T0)


# --- blocked workers -----------------------------------------------------------------------


def test_a_blocked_workers_answer_is_taken_but_does_not_count() -> None:
    record = answer(task(), "spammer", "yes", context=blocked("spammer"))
    assert record.status == "pending"  # waits for an answer that counts
    assert record.answered_by("spammer") and record.counted_answers == []
    assert record.free_at is None  # its slot is free again
    assert not domain.claimable_by(record, "spammer", T0)
    done = answer(record, "honest", "no")
    assert done.status == "completed" and done.response is not None
    assert done.response.category == "no"


def test_answers_of_a_worker_blocked_since_stop_counting_at_the_next_answer() -> None:
    record = answer(task(max_workers=2, min_workers=2), "spammer", "yes")
    record = answer(record, "honest", "no", context=blocked("spammer"))
    assert record.status == "pending"
    assert [a.worker_id for a in record.counted_answers] == ["honest"]


def test_discounting_a_worker_frees_its_slots_on_open_tasks_only() -> None:
    record = lease(answer(answer(task(max_workers=3, min_workers=3), "s", "yes"), "h", "no"), "x")
    assert record.free_at == T0 + LEASE
    discounted = domain.discount_worker(record, "s", T0 + timedelta(seconds=1))
    assert [a.worker_id for a in discounted.counted_answers] == ["h"]
    assert discounted.free_at is None and discounted.answered_by("s")
    assert domain.discount_worker(discounted, "s", T0) == discounted  # once is enough
    done = answer(task(), "s", "yes")
    assert domain.discount_worker(done, "s", T0) == done  # a completed task keeps it


# --- gold ----------------------------------------------------------------------------------


def test_a_gold_task_never_completes_and_every_worker_answers_it_once() -> None:
    record = task(gold_category="yes", callback_url=None)
    assert record.pool == "gold" and record.callback_url is None
    public = record.to_public().to_json_dict()
    assert public["gold_category"] == "yes" and "callback_url" not in public
    for n in range(12):
        worker = f"w{n}"
        record = lease(record, worker)
        assert record.free_at is None  # no slots to fill: anyone may hold one
        record, events = domain.submit_work(record, worker, "no" if n % 2 else "yes", T0)
        assert [type(e) for e in events] == [TaskAnswered]
        assert isinstance(events[0], TaskAnswered) and events[0].gold
        assert [a.worker_id for a in record.answers][n] == worker
    assert record.status == "pending" and record.response is None
    assert not domain.claimable_by(record, "w3", T0) and domain.claimable_by(record, "new", T0)


def test_a_worker_sees_the_same_answer_whatever_the_task() -> None:
    """Regular with one worker, with several, gold: one shape, its own answer."""
    views = []
    for params in ({}, {"max_workers": 3}, {"gold_category": "no"}):
        record = lease(task(**params), "alice")
        answered, _ = domain.submit_work(record, "alice", "yes", T0)
        views.append(answered.answered_work("yes", T0).model_dump(mode="json"))
    assert views[0] == views[1] == views[2]
    assert views[0]["status"] == "completed" and views[0]["response"] == {
        "category": "yes",
        "status_code": 200,
        "confidence": None,
        "votes": None,
    }


# --- audits --------------------------------------------------------------------------------


def test_reopening_for_an_audit_keeps_who_answered_and_counts_only_new_answers() -> None:
    done = answer(answer(task(max_workers=2, min_workers=2), "a", "yes"), "b", "yes")
    assert done.status == "completed"
    reopened = domain.reopen_for_audit(done, T0 + timedelta(minutes=1))
    assert reopened.status == "pending" and reopened.pool == "work"
    assert (reopened.response, reopened.completed_at, reopened.posterior) == (None, None, None)
    assert reopened.counted_answers == [] and reopened.reopened == 1
    assert not domain.claimable_by(reopened, "a", T0) and not domain.claimable_by(reopened, "b", T0)
    again = answer(answer(reopened, "c", "no"), "d", "no")
    assert again.status == "completed" and again.response is not None
    assert again.response.votes == {"no": 2}
    with pytest.raises(Conflict):
        domain.reopen_for_audit(reopened, T0)


def test_reopening_keeps_the_slot_rule() -> None:
    done = answer(task(), "a", "yes")
    reopened = replace(domain.reopen_for_audit(done, T0), version=7)
    assert reopened.free_at is None and domain.claimable_by(reopened, "b", T0)
