"""The customer API end to end: Scale's v1 examples against the real processes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from .conftest import DEMO_API_KEY, SEED_CREATE_FORM, SEED_TASK_JSON, Api

pytestmark = pytest.mark.e2e

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
TASK_ID = re.compile(r"^[0-9a-f]{24}$")
PENDING_FIELDS = {
    "task_id",
    "created_at",
    "callback_url",
    "type",
    "status",
    "instruction",
    "params",
}


def assert_pending_task(task: dict[str, Any], expected: dict[str, Any]) -> None:
    assert set(task) == PENDING_FIELDS, task
    assert TASK_ID.match(task["task_id"])
    assert TIMESTAMP.match(task["created_at"])
    assert task["type"] == "categorization"
    assert task["status"] == "pending"
    assert task["callback_url"] == expected["callback_url"]
    assert task["instruction"] == expected["instruction"]
    assert task["params"] == {
        "attachment_type": expected["attachment_type"],
        "attachment": expected["attachment"],
        "categories": expected["categories"],
    }


async def create(api: Api, key: str, **overrides: Any) -> dict[str, Any]:
    reply = await api.post("/v1/task/categorize", key, json={**SEED_TASK_JSON, **overrides})
    assert reply.status == 200, reply
    return reply.body


async def test_seed_curl_create_with_form_fields(api: Api, customer: dict) -> None:
    reply = await api.post("/v1/task/categorize", customer["api_key"], data=SEED_CREATE_FORM)

    assert reply.status == 200, reply
    assert_pending_task(
        reply.body,
        {
            "callback_url": "http://www.example.com/callback",
            "instruction": "Is this company public or private?",
            "attachment_type": "website",
            "attachment": "http://www.google.com/",
            "categories": ["public", "private"],
        },
    )


async def test_demo_key_from_the_environment_works(api: Api) -> None:
    reply = await api.post("/v1/task/categorize", DEMO_API_KEY, data=SEED_CREATE_FORM)
    assert reply.status == 200, reply


async def test_create_with_json_and_plain_repeated_form_keys(api: Api, customer: dict) -> None:
    key = customer["api_key"]
    from_json = await create(api, key)
    assert_pending_task(from_json, SEED_TASK_JSON)

    form = [(k, v) for k, v in SEED_TASK_JSON.items() if k != "categories"]
    form += [("categories", "big"), ("categories", "small")]
    reply = await api.post("/v1/task/categorization", key, data=form)
    assert reply.status == 200, reply
    assert_pending_task(reply.body, SEED_TASK_JSON)


async def test_get_right_after_create_finds_the_task(api: Api, customer: dict) -> None:
    created = await create(api, customer["api_key"])
    reply = await api.get(f"/v1/task/{created['task_id']}", customer["api_key"])
    assert reply.status == 200
    assert reply.body == created


async def test_metadata_and_unique_id_are_echoed(api: Api, customer: dict) -> None:
    metadata = {"batch": 7, "odd.key": {"$weird": [1, {"x": None}]}}
    task = await create(api, customer["api_key"], metadata=metadata, unique_id="order-1")
    assert task["metadata"] == metadata
    assert task["unique_id"] == "order-1"
    fetched = await api.get(f"/v1/task/{task['task_id']}", customer["api_key"])
    assert fetched.body == task


async def test_unique_id_makes_creation_idempotent(api: Api, customer: dict) -> None:
    key = customer["api_key"]
    first = await create(api, key, unique_id="same")
    again = await create(api, key, unique_id="same")
    assert again == first

    conflict = await api.post(
        "/v1/task/categorize",
        key,
        json={**SEED_TASK_JSON, "instruction": "other", "unique_id": "same"},
    )
    assert conflict.status == 409
    assert first["task_id"] in conflict.body["error"]

    listed = await api.get("/v1/tasks?unique_id=same", key)
    assert [t["task_id"] for t in listed.body] == [first["task_id"]]


async def test_unique_id_is_per_customer(api: Api, customer: dict, other_customer: dict) -> None:
    mine = await create(api, customer["api_key"], unique_id="shared-id")
    theirs = await create(api, other_customer["api_key"], unique_id="shared-id")
    assert mine["task_id"] != theirs["task_id"]


async def test_list_is_newest_first_and_pages_with_link_header(api: Api, customer: dict) -> None:
    key = customer["api_key"]
    created = [await create(api, key, attachment=f"item {i}") for i in range(5)]
    newest_first = [t["task_id"] for t in reversed(created)]

    everything = await api.get("/v1/tasks", key)
    assert everything.status == 200
    assert [t["task_id"] for t in everything.body] == newest_first
    assert "Link" not in everything.headers

    first_page = await api.get("/v1/tasks?limit=2", key)
    assert [t["task_id"] for t in first_page.body] == newest_first[:2]
    seen = [t["task_id"] for t in first_page.body]
    link = first_page.headers["Link"]
    while link:
        match = re.fullmatch(r'<(?P<url>[^>]+)>; rel="next"', link)
        assert match, link
        assert "next_token=" in match["url"] and "offset=" not in match["url"], link
        page = await api.get(match["url"], key)
        assert page.status == 200
        seen += [t["task_id"] for t in page.body]
        link = page.headers.get("Link", "")
    assert seen == newest_first

    offset = await api.get("/v1/tasks?limit=2&offset=3", key)
    assert [t["task_id"] for t in offset.body] == newest_first[3:5]
    assert "Link" not in offset.headers


async def test_list_filters_by_status_type_and_time(api: Api, customer: dict) -> None:
    key = customer["api_key"]
    first = await create(api, key)
    second = await create(api, key)
    third = await create(api, key)
    await api.post(f"/v1/task/{second['task_id']}/cancel", key)

    canceled = await api.get("/v1/tasks?status=canceled", key)
    assert [t["task_id"] for t in canceled.body] == [second["task_id"]]
    pending = await api.get("/v1/tasks?status=pending&type=categorization", key)
    assert [t["task_id"] for t in pending.body] == [third["task_id"], first["task_id"]]
    completed = await api.get("/v1/tasks?status=completed", key)
    assert completed.body == []

    # start_time <= created_at < end_time
    window = await api.get(
        "/v1/tasks",
        key,
        params={"start_time": second["created_at"], "end_time": third["created_at"]},
    )
    assert [t["task_id"] for t in window.body] == [second["task_id"]]
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert (await api.get("/v1/tasks", key, params={"start_time": later})).body == []


async def test_cancel_pending_then_again_then_unknown(api: Api, customer: dict) -> None:
    key = customer["api_key"]
    task = await create(api, key)

    canceled = await api.post(f"/v1/task/{task['task_id']}/cancel", key)
    assert canceled.status == 200
    assert canceled.body["status"] == "canceled"
    assert TIMESTAMP.match(canceled.body["canceled_at"])
    assert set(canceled.body) == PENDING_FIELDS | {"canceled_at"}

    again = await api.post(f"/v1/task/{task['task_id']}/cancel", key)
    assert again.status == 200
    assert again.body == canceled.body

    unknown = await api.post("/v1/task/0123456789abcdef01234567/cancel", key)
    assert unknown.status == 404
    assert unknown.body["status_code"] == 404


async def test_another_customers_task_is_not_found(
    api: Api, customer: dict, other_customer: dict
) -> None:
    task = await create(api, customer["api_key"])
    other = other_customer["api_key"]
    assert (await api.get(f"/v1/task/{task['task_id']}", other)).status == 404
    assert (await api.post(f"/v1/task/{task['task_id']}/cancel", other)).status == 404
    listed = await api.get("/v1/tasks", other)
    assert task["task_id"] not in {t["task_id"] for t in listed.body}
    # ...and it was not canceled by the attempt.
    mine = await api.get(f"/v1/task/{task['task_id']}", customer["api_key"])
    assert mine.body["status"] == "pending"


async def test_an_unknown_key_is_401(api: Api) -> None:
    # The task-store refuses it; every other 401 is the gateway's (tests/unit/test_gateway_http.py).
    reply = await api.post("/v1/task/categorize", "live_not_a_real_key", data=SEED_CREATE_FORM)
    assert reply.status == 401, reply
    assert reply.headers["WWW-Authenticate"] == 'Basic realm="humantask"'
    assert reply.body["status_code"] == 401
