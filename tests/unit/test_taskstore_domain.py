"""The task's state machine and the events it raises: no I/O."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from humantask_shared.core.errors import Conflict
from humantask_shared.core.messages.envelope import EventStamp
from humantask_shared.core.messages.events import TaskCanceled, TaskCreated
from humantask_shared.core.models import CreateTaskRequest, TaskResponse
from humantask_shared.runtime.publishing import stamp
from humantask_taskstore.domain import TaskRecord, cancel_task, create_task, request_fingerprint

TASK_ID = "0123456789abcdef01234567"
CUSTOMER_ID = "cust-1"
CREATED = datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)
LATER = CREATED + timedelta(minutes=5)

SEED: dict[str, Any] = {
    "callback_url": "http://www.example.com/test_callback",
    "instruction": "Would you say this item is big or small?",
    "attachment_type": "text",
    "attachment": "car",
    "categories": ["big", "small"],
}


def request(**overrides: Any) -> CreateTaskRequest:
    return CreateTaskRequest.model_validate({**SEED, **overrides})


def pending(**overrides: Any) -> TaskRecord:
    record, _ = create_task(TASK_ID, CUSTOMER_ID, request(**overrides), CREATED, "req-create")
    return record


# -- create_task -------------------------------------------------------------------------


def test_create_makes_a_pending_task_from_the_request() -> None:
    record, _ = create_task(
        TASK_ID,
        CUSTOMER_ID,
        request(metadata={"batch": 7}, unique_id="u-1", callback_format="json"),
        CREATED,
        "req-1",
    )
    assert record.task_id == TASK_ID
    assert record.customer_id == CUSTOMER_ID
    assert record.status == "pending"
    assert record.created_at == CREATED
    assert record.callback_url == SEED["callback_url"]
    assert record.callback_format == "json"
    assert record.instruction == SEED["instruction"]
    assert record.params.attachment_type == "text"
    assert record.params.attachment == "car"
    assert record.params.categories == ["big", "small"]
    assert record.metadata == {"batch": 7}
    assert record.unique_id == "u-1"
    assert (record.completed_at, record.canceled_at, record.response) == (None, None, None)
    assert record.version == 0
    assert record.request_id == "req-1"


def test_create_raises_one_task_created_event_with_the_full_public_task() -> None:
    record, events = create_task(
        TASK_ID, CUSTOMER_ID, request(metadata={"k": "v"}), CREATED, "req-1"
    )
    assert len(events) == 1
    event = events[0]
    assert isinstance(event, TaskCreated)
    assert event.routing_key == "task.created"
    assert event.task == record.to_public()
    assert event.task.metadata == {"k": "v"}
    assert event.customer_id == CUSTOMER_ID
    assert event.callback_format == "form"
    assert event.request_id == "req-1"


def test_the_domain_builds_the_same_event_from_the_same_facts() -> None:
    # No clock, random id or trace is read to build one: the runtime stamps it.
    _, first = create_task(TASK_ID, CUSTOMER_ID, request(), CREATED)
    _, second = create_task(TASK_ID, CUSTOMER_ID, request(), CREATED)
    assert first == second


def test_a_stamped_event_has_its_own_id_and_goes_out_flat() -> None:
    _, (event,) = create_task(TASK_ID, CUSTOMER_ID, request(), CREATED, "req-1")
    first, second = stamp(event, LATER), stamp(event, LATER)
    assert first.stamp.event_id != second.stamp.event_id
    assert len(first.stamp.event_id) == 32
    body = orjson.loads(first.body)
    assert list(body)[:4] == ["event_id", "occurred_at", "schema_version", "request_id"]
    assert body["occurred_at"] == "2024-05-01T12:05:00.123Z"
    assert body["schema_version"] == 1
    assert body["event_type"] == "task.created"
    assert "trace_context" not in body  # none outside a trace
    # A consumer reads the event from the same body, whatever the stamp holds.
    assert TaskCreated.model_validate_json(first.body) == event
    assert EventStamp.model_validate_json(first.body) == first.stamp


def test_the_public_task_hides_what_customers_never_see() -> None:
    public = pending().to_public().to_json_dict()
    assert set(public) == {
        "task_id",
        "created_at",
        "callback_url",
        "type",
        "status",
        "instruction",
        "params",
    }
    assert CUSTOMER_ID not in str(public)
    assert "req-create" not in str(public)


# -- cancel_task -------------------------------------------------------------------------


def test_cancel_a_pending_task() -> None:
    record = pending(metadata={"m": 1}, unique_id="u")
    canceled, events = cancel_task(record, LATER, "req-cancel")

    assert canceled.status == "canceled"
    assert canceled.canceled_at == LATER
    assert canceled.completed_at is None
    # Everything else is the same task; the repository bumps the version when it saves.
    assert replace(canceled, status="pending", canceled_at=None) == record
    assert canceled.version == record.version
    assert canceled.request_id == "req-cancel"
    assert record.status == "pending"  # the original is untouched

    assert len(events) == 1
    event = events[0]
    assert isinstance(event, TaskCanceled)
    assert event.routing_key == "task.canceled"
    assert event.task == canceled.to_public()
    assert event.task.status == "canceled" and event.task.canceled_at == LATER
    assert event.task.metadata == {"m": 1} and event.task.unique_id == "u"
    assert event.customer_id == CUSTOMER_ID
    assert event.request_id == "req-cancel"


def test_cancel_a_canceled_task_changes_nothing_and_raises_no_event() -> None:
    canceled, _ = cancel_task(pending(), LATER)
    again, events = cancel_task(canceled, LATER + timedelta(hours=1), "req-again")
    assert events == []
    assert again is canceled
    assert again.canceled_at == LATER


def test_cancel_a_completed_task_is_a_conflict() -> None:
    completed = replace(
        pending(), status="completed", completed_at=LATER, response=TaskResponse(category="big")
    )
    with pytest.raises(Conflict) as info:
        cancel_task(completed, LATER)
    assert TASK_ID in info.value.message
    assert info.value.code == "conflict"


# -- request_fingerprint -----------------------------------------------------------------


def test_the_same_parameters_have_the_same_fingerprint() -> None:
    assert request_fingerprint(request()) == request_fingerprint(request())
    assert len(request_fingerprint(request())) == 64


def test_unique_id_is_not_part_of_the_fingerprint() -> None:
    assert request_fingerprint(request(unique_id="a")) == request_fingerprint(
        request(unique_id="b")
    )
    assert request_fingerprint(request(unique_id="a")) == request_fingerprint(request())


def test_a_default_callback_format_equals_an_explicit_one() -> None:
    assert request_fingerprint(request()) == request_fingerprint(request(callback_format="form"))


def test_unknown_fields_do_not_change_the_fingerprint() -> None:
    assert request_fingerprint(request()) == request_fingerprint(request(priority=30))


@pytest.mark.parametrize(
    "change",
    [
        {"callback_url": "http://www.example.com/other"},
        {"instruction": "Something else?"},
        {"attachment_type": "website", "attachment": "http://example.com/"},
        {"attachment": "truck"},
        {"categories": ["big", "small", "medium"]},
        {"categories": ["small", "big"]},  # the order of categories matters
        {"metadata": {"a": 1}},
        {"metadata": {}},  # an empty object is not "no metadata"
        {"callback_format": "json"},
    ],
)
def test_every_parameter_is_part_of_the_fingerprint(change: dict[str, Any]) -> None:
    assert request_fingerprint(request(**change)) != request_fingerprint(request())


def test_metadata_values_and_nesting_matter() -> None:
    assert request_fingerprint(request(metadata={"a": 1})) != request_fingerprint(
        request(metadata={"a": 2})
    )
    assert request_fingerprint(request(metadata={"a": [1, 2]})) != request_fingerprint(
        request(metadata={"a": [2, 1]})
    )


def test_metadata_key_order_does_not_matter() -> None:
    # A JSON object is unordered: the same object sent with its keys in another order
    # is the same metadata (the fingerprint is computed with sorted keys).
    first = request(metadata={"a": 1, "b": {"x": 1, "y": 2}})
    second = request(metadata={"b": {"y": 2, "x": 1}, "a": 1})
    assert request_fingerprint(first) == request_fingerprint(second)
