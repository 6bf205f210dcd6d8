"""The worker rules of the task state machine (domain.py), without any I/O."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from humantask_shared.errors import Conflict, InvalidRequest
from humantask_shared.messages.events import TaskCompleted
from humantask_shared.models import CreateTaskRequest, TaskResponse
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
    return domain.claim_task(pending(), worker, at, LEASE)


# --- claimable, and claiming ---------------------------------------------------------------


def test_a_new_task_is_claimable() -> None:
    assert domain.is_claimable(pending(), T0)


def test_claiming_leases_the_task_for_the_lease_time() -> None:
    record = leased("alice")
    assert record.lease_worker_id == "alice"
    assert record.lease_expires_at == T0 + timedelta(seconds=LEASE)
    assert record.status == "pending"
    assert domain.holds_live_lease(record, "alice", T0)
    assert not domain.holds_live_lease(record, "bob", T0)


def test_a_live_lease_makes_the_task_unclaimable_until_it_expires() -> None:
    record = leased("alice")
    expiry = T0 + timedelta(seconds=LEASE)
    assert not domain.is_claimable(record, T0)
    assert not domain.is_claimable(record, expiry - timedelta(milliseconds=1))
    assert domain.is_claimable(record, expiry)
    assert not domain.holds_live_lease(record, "alice", expiry)
    with pytest.raises(Conflict):
        domain.claim_task(record, "bob", T0 + timedelta(seconds=1), LEASE)


def test_an_expired_lease_can_be_taken_by_another_worker() -> None:
    later = T0 + timedelta(seconds=LEASE + 1)
    record = domain.claim_task(leased("alice"), "bob", later, LEASE)
    assert record.lease_worker_id == "bob"
    assert record.lease_expires_at == later + timedelta(seconds=LEASE)


@pytest.mark.parametrize("status", ["completed", "canceled"])
def test_finished_tasks_are_never_claimable(status: str) -> None:
    record = replace(pending(), status=status)
    assert not domain.is_claimable(record, T0)
    with pytest.raises(Conflict):
        domain.claim_task(record, "alice", T0, LEASE)


def test_the_worker_view_shows_nothing_about_the_customer() -> None:
    item = leased().to_work_item()
    assert set(item.model_dump()) == {"task_id", "type", "instruction", "params", "lease_expires_at"}
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
    assert record.completed_by == "alice"
    assert (record.lease_worker_id, record.lease_expires_at) == (None, None)
    assert [type(event) for event in events] == [TaskCompleted]
    event = events[0]
    assert event.task == record.to_public()
    assert event.customer_id == "customer-1"
    assert event.request_id == "req-1"
    assert "completed_by" not in event.model_dump_json()
    view = record.to_completed_work()
    assert view.status == "completed" and view.completed_at == now
    assert "customer data" not in view.model_dump_json()


def test_submit_needs_the_live_lease() -> None:
    with pytest.raises(Conflict, match="claim a task first"):
        domain.submit_work(pending(), "alice", "big", T0)
    with pytest.raises(Conflict, match="do not hold a lease"):
        domain.submit_work(leased("alice"), "bob", "big", T0)
    with pytest.raises(Conflict, match="expired"):
        domain.submit_work(leased("alice"), "alice", "big", T0 + timedelta(seconds=LEASE))


def test_submit_of_a_finished_task_is_a_conflict() -> None:
    completed, _ = domain.submit_work(leased("alice"), "alice", "big", T0)
    with pytest.raises(Conflict, match="already completed"):
        domain.submit_work(completed, "alice", "big", T0)
    canceled, _ = domain.cancel_task(leased("alice"), T0)
    with pytest.raises(Conflict, match="canceled"):
        domain.submit_work(canceled, "alice", "big", T0)


@pytest.mark.parametrize("category", ["medium", "Big", "big ", ""])
def test_a_category_the_task_does_not_offer_is_invalid(category: str) -> None:
    with pytest.raises(InvalidRequest, match="^category"):
        domain.submit_work(leased("alice"), "alice", category, T0)


def test_the_lease_is_checked_before_the_category() -> None:
    # A worker without the lease learns nothing about the task's categories.
    with pytest.raises(Conflict):
        domain.submit_work(leased("alice"), "bob", "medium", T0)


# --- releasing and canceling ---------------------------------------------------------------


def test_release_returns_the_task_to_the_pool_at_once() -> None:
    record = domain.release_work(leased("alice"), "alice", T0 + timedelta(seconds=1))
    assert (record.lease_worker_id, record.lease_expires_at) == (None, None)
    assert domain.is_claimable(record, T0 + timedelta(seconds=1))


def test_release_needs_the_live_lease() -> None:
    with pytest.raises(Conflict):
        domain.release_work(pending(), "alice", T0)
    with pytest.raises(Conflict):
        domain.release_work(leased("alice"), "bob", T0)


def test_cancel_revokes_the_lease() -> None:
    canceled, _ = domain.cancel_task(leased("alice"), T0 + timedelta(seconds=1))
    assert canceled.status == "canceled"
    assert (canceled.lease_worker_id, canceled.lease_expires_at) == (None, None)
    assert not domain.holds_live_lease(canceled, "alice", T0 + timedelta(seconds=1))
    with pytest.raises(Conflict, match="canceled"):
        domain.release_work(canceled, "alice", T0 + timedelta(seconds=1))
