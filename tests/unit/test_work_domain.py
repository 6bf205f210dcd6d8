"""The worker rules of the task state machine (domain.py), without any I/O."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from humantask_shared.core.errors import Conflict, InvalidRequest
from humantask_shared.core.messages.events import TaskAnswered, TaskCompleted
from humantask_shared.core.models import CreateTaskRequest, TaskResponse
from humantask_shared.core.worker_models import no_live_lease
from humantask_taskstore import domain

T0 = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
LEASE = 600.0
REQUEST = CreateTaskRequest(
    callback_url="http://www.example.com/callback",
    instruction="Would you say this item is big or small?",
    attachment_type="text",
    attachment="car",
    categories=["big", "small"],
    metadata={"secret": "customer data"},
    unique_id="order-1",
)


def pending() -> domain.TaskRecord:
    record, _ = domain.create_task("0123456789abcdef01234567", "customer-1", REQUEST, T0)
    return record


def leased(worker: str = "alice", at: datetime = T0) -> domain.TaskRecord:
    """As the repository's claim leaves it."""
    return domain.lease_to(pending(), worker, at, domain.lease_expiry(at, LEASE))


# --- leases ---------------------------------------------------------------------------------


def test_a_lease_lasts_the_lease_time_and_only_its_worker_holds_it() -> None:
    record = leased("alice")
    assert record.leases == (domain.Lease("alice", T0 + timedelta(seconds=LEASE)),)
    assert record.free_at == T0 + timedelta(seconds=LEASE)  # its one slot is taken
    assert domain.holds_live_lease(record, "alice", T0)
    assert domain.holds_live_lease(record, "alice", T0 + timedelta(seconds=LEASE - 0.001))
    assert not domain.holds_live_lease(record, "alice", T0 + timedelta(seconds=LEASE))
    assert not domain.holds_live_lease(record, "bob", T0)


@pytest.mark.parametrize("status", ["completed", "canceled"])
def test_a_finished_task_is_nobodys_live_lease(status: str) -> None:
    assert not domain.holds_live_lease(replace(leased("alice"), status=status), "alice", T0)


def test_the_worker_view_shows_nothing_about_the_customer() -> None:
    item = leased().to_work_item("alice")
    assert set(item.model_dump()) == {
        "task_id",
        "type",
        "instruction",
        "params",
        "lease_expires_at",
    }
    dumped = item.model_dump_json()
    for secret in ("customer-1", "customer data", "order-1", "www.example.com"):
        assert secret not in dumped


# --- submitting ----------------------------------------------------------------------------


def test_submit_completes_the_task_and_raises_task_completed() -> None:
    now = T0 + timedelta(seconds=30)
    record, events = domain.submit_work(leased("alice"), "alice", "small", now, "req-1")
    assert record.status == "completed"
    assert record.completed_at == now
    assert record.response == TaskResponse(category="small", status_code=200)
    assert record.answers == (domain.Answer("alice", "small", now),)
    assert (record.leases, record.free_at, record.pool) == ((), None, None)
    assert [type(event) for event in events] == [TaskAnswered, TaskCompleted]
    event = events[1]
    assert isinstance(event, TaskCompleted)
    assert event.task == record.to_public()
    assert event.customer_id == "customer-1"
    assert event.request_id == "req-1"
    assert "alice" not in event.model_dump_json()
    # Exactly today's shape: no confidence, no votes, none of the §10 fields.
    assert record.to_public().to_json_dict()["response"] == {
        "category": "small",
        "status_code": 200,
    }
    view = record.answered_work("small", now)
    assert view.status == "completed" and view.completed_at == now
    assert "customer data" not in view.model_dump_json()


NO_LEASE = "you do not hold a live lease on task 0123456789abcdef01234567: claim a task first"


def test_every_submit_without_the_live_lease_gets_one_and_the_same_answer() -> None:
    """A worker learns nothing about tasks it does not hold (docs/reference/contract.md §6)."""
    completed, _ = domain.submit_work(leased("alice"), "alice", "big", T0)
    canceled, _ = domain.cancel_task(leased("alice"), T0)
    not_held = {
        "never claimed": (pending(), "alice", T0),
        "leased to someone else": (leased("alice"), "bob", T0),
        "expired": (leased("alice"), "alice", T0 + timedelta(seconds=LEASE)),
        "completed": (completed, "alice", T0),
        "canceled": (canceled, "alice", T0),
    }
    for case, (record, worker, at) in not_held.items():
        with pytest.raises(Conflict) as info:
            domain.submit_work(record, worker, "big", at)
        assert info.value.message == NO_LEASE, case
        with pytest.raises(Conflict) as info:
            domain.release_work(record, worker, at)
        assert info.value.message == NO_LEASE, case
    assert no_live_lease("0123456789abcdef01234567").message == NO_LEASE


@pytest.mark.parametrize("category", ["medium", "Big", "big ", ""])
def test_a_category_the_task_does_not_offer_is_invalid(category: str) -> None:
    with pytest.raises(InvalidRequest, match=r"^category"):
        domain.submit_work(leased("alice"), "alice", category, T0)


def test_the_lease_is_checked_before_the_category() -> None:
    # A worker without the lease learns nothing about the task's categories.
    with pytest.raises(Conflict):
        domain.submit_work(leased("alice"), "bob", "medium", T0)


# --- releasing and canceling ---------------------------------------------------------------


def test_release_returns_the_task_to_the_pool_at_once() -> None:
    record = domain.release_work(leased("alice"), "alice", T0 + timedelta(seconds=1))
    assert (record.leases, record.free_at) == ((), None)
    assert record.status == "pending"


def test_release_needs_the_live_lease() -> None:
    with pytest.raises(Conflict):
        domain.release_work(pending(), "alice", T0)
    with pytest.raises(Conflict):
        domain.release_work(leased("alice"), "bob", T0)


def test_cancel_revokes_the_lease() -> None:
    canceled, _ = domain.cancel_task(leased("alice"), T0 + timedelta(seconds=1))
    assert canceled.status == "canceled"
    assert (canceled.leases, canceled.free_at, canceled.pool) == ((), None, None)
    assert not domain.holds_live_lease(canceled, "alice", T0 + timedelta(seconds=1))
    with pytest.raises(Conflict, match="claim a task first"):
        domain.release_work(canceled, "alice", T0 + timedelta(seconds=1))
