"""`/scale/v1`'s HTTP behaviour in-process (docs/reference/contract.md §11): the gateway of
`create_app` with the fake boundary, whose task-store answers these commands with its
own handlers over in-memory ports (tests/support/fake_boundary.py). Shapes the SDK
reads, bad input naming its field, credentials and limits as on `/v1`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from humantask_shared.core.errors import Unavailable
from humantask_shared.core.messages.scale_commands import CreateScaleTask
from tests.support.fake_boundary import CUSTOMER_KEY, OTHER_CUSTOMER_KEY, WORKER_TOKEN
from tests.support.gateway import Gateway, in_process_gateway

SEED: dict[str, Any] = {
    "callback_url": "http://www.example.com/test_callback",
    "instruction": "Would you say this item is big or small?",
    "attachment_type": "text",
    "attachment": "car",
    "categories": ["big", "small"],
}


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    async with in_process_gateway(rate_limit_per_second=0) as served:
        yield served


async def create(gateway: Gateway, key: str = CUSTOMER_KEY, **fields: Any) -> dict[str, Any]:
    status, _, body = await gateway.call(
        "POST", "/scale/v1/task/categorization", key, json={**SEED, **fields}
    )
    assert status == 200, body
    return dict(body)


async def test_a_task_carries_scales_fields_and_v1_keeps_the_seeds(gateway: Gateway) -> None:
    task = await create(gateway, tags=["a"], metadata={"k": "v"})
    assert {"updated_at", "tags", "audits"} <= set(task) and task["tags"] == ["a"]
    assert "project" not in task and "batch" not in task
    status, _, fetched = await gateway.call(
        "GET", f"/scale/v1/task/{task['task_id']}", CUSTOMER_KEY
    )
    assert status == 200 and fetched == task
    status, _, _ = await gateway.call(
        "GET", f"/scale/v1/task/{task['task_id']}", OTHER_CUSTOMER_KEY
    )
    assert status == 404


async def test_credentials_are_v1s(gateway: Gateway) -> None:
    status, headers, body = await gateway.call("GET", "/scale/v1/projects")
    assert status == 401 and headers["WWW-Authenticate"] == 'Basic realm="humantask"'
    assert body["status_code"] == 401
    assert (await gateway.call("GET", "/scale/v1/projects", WORKER_TOKEN))[0] == 401
    cross_site = {"Sec-Fetch-Site": "cross-site"}
    assert (await gateway.call("GET", "/scale/v1/projects", CUSTOMER_KEY, headers=cross_site))[
        0
    ] == 403


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"categories": ["one"]}, "categories"),
        ({"tags": "not a list"}, "tags"),
        ({"tags": ["x" * 257]}, "tags.0"),
        ({"project": ""}, "project"),
        ({"batch": "a\x00b"}, "batch"),
        ({"project": "nowhere"}, "project: no project named 'nowhere'"),
        ({"batch": "nowhere"}, "batch: no batch named 'nowhere'"),
        ({"metadata": {"a": "x" * 20_000}, "project": "p"}, "metadata"),
    ],
)
async def test_bad_create_parameters_are_a_400_naming_the_field(
    gateway: Gateway, fields: dict[str, Any], named: str
) -> None:
    status, _, body = await gateway.call(
        "POST", "/scale/v1/task/categorization", CUSTOMER_KEY, json={**SEED, **fields}
    )
    assert status == 400, body
    assert body["error"].startswith(named), body


async def test_a_form_create_takes_tags_as_an_array(gateway: Gateway) -> None:
    form = [*((k, v) for k, v in SEED.items() if k != "categories"), ("categories[]", "big")]
    form += [("categories[]", "small"), ("tags[]", "a"), ("tags[]", "b")]
    status, _, body = await gateway.call(
        "POST", "/scale/v1/task/categorization", CUSTOMER_KEY, data=form
    )
    assert status == 200, body
    assert body["tags"] == ["a", "b"]


async def test_a_project_task_is_checked_once_its_defaults_are_filled_in(
    gateway: Gateway,
) -> None:
    params = {k: v for k, v in SEED.items() if k != "attachment"}
    status, _, project = await gateway.call(
        "POST",
        "/scale/v1/projects",
        CUSTOMER_KEY,
        json={"type": "categorization", "name": "p", "params": params},
    )
    assert status == 200 and project["param_history"][0]["version"] == 0
    status, _, body = await gateway.call(
        "POST", "/scale/v1/task/categorization", CUSTOMER_KEY, json={"project": "p"}
    )
    assert (status, body["error"]) == (400, "attachment: is required")
    task = await create(gateway, project="p", categories=None, attachment="a cat")
    assert task["project"] == "p" and task["params"]["categories"] == ["big", "small"]
    sent = [c for c in gateway.store.asked if isinstance(c, CreateScaleTask)][-1]
    assert sent.fields["categories"] is None  # a null: the project's params fill it in


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"type": "imageannotation", "name": "p"}, "type"),
        ({"type": "categorization", "name": "p", "rapid": True}, "rapid"),
        ({"type": "categorization", "name": "p", "params": {"colour": "red"}}, "params.colour"),
        (
            {"type": "categorization", "name": "p", "params": {"min_workers": 11}},
            "params.min_workers",
        ),
        ({"type": "categorization"}, "name: is required"),
    ],
)
async def test_a_bad_project_is_a_400_naming_the_field(
    gateway: Gateway, body: dict[str, Any], named: str
) -> None:
    status, _, answer = await gateway.call("POST", "/scale/v1/projects", CUSTOMER_KEY, json=body)
    assert status == 400 and answer["error"].startswith(named), answer


async def test_projects_list_as_an_array_and_a_name_is_percent_encoded(gateway: Gateway) -> None:
    for name in ("a bc/def", "é"):
        status, _, _ = await gateway.call(
            "POST",
            "/scale/v1/projects",
            CUSTOMER_KEY,
            json={"type": "categorization", "name": name},
        )
        assert status == 200
    status, _, listed = await gateway.call("GET", "/scale/v1/projects", CUSTOMER_KEY)
    assert status == 200 and [p["name"] for p in listed] == ["a bc/def", "é"]
    status, _, found = await gateway.call("GET", "/scale/v1/projects/a%20bc%2Fdef", CUSTOMER_KEY)
    assert status == 200 and found["name"] == "a bc/def"
    status, _, _ = await gateway.call("GET", "/scale/v1/projects/a%20bc%2Fdef", OTHER_CUSTOMER_KEY)
    assert status == 404
    status, _, body = await gateway.call(
        "POST", "/scale/v1/projects/a%20bc%2Fdef/setParams", CUSTOMER_KEY, json={"colour": 1}
    )
    assert status == 400 and body["error"].startswith("colour")


async def test_batches_answer_the_shapes_the_sdk_reads(gateway: Gateway) -> None:
    await gateway.call(
        "POST", "/scale/v1/projects", CUSTOMER_KEY, json={"type": "categorization", "name": "p"}
    )
    status, _, body = await gateway.call(
        "POST",
        "/scale/v1/batches",
        CUSTOMER_KEY,
        json={"project": "p", "name": "b", "callback": "not a url", "metadata": {}},
    )
    assert status == 400 and body["error"].startswith("callback")
    status, _, batch = await gateway.call(
        "POST",
        "/scale/v1/batches",
        CUSTOMER_KEY,
        json={"project": "p", "name": "b", "callback": "", "calibration_batch": False},
    )
    assert status == 200
    assert {"name", "project", "status", "created_at", "metadata"} <= set(batch)
    status, _, page = await gateway.call("GET", "/scale/v1/batches?project=p", CUSTOMER_KEY)
    assert status == 200 and set(page) == {"docs", "totalDocs", "limit", "offset", "has_more"}
    status, _, counts = await gateway.call("GET", "/scale/v1/batches/b/status", CUSTOMER_KEY)
    assert counts == {"status": "staging", "pending": 0, "completed": 0, "canceled": 0}
    status, _, _ = await gateway.call("GET", "/scale/v1/batches/b/status", OTHER_CUSTOMER_KEY)
    assert status == 404
    status, _, body = await gateway.call(
        "POST", "/scale/v1/batches", CUSTOMER_KEY, json={"project": "q", "name": "c"}
    )
    assert status == 404 and "q" in body["error"]


async def test_tags_take_a_json_array_by_method(gateway: Gateway) -> None:
    task = await create(gateway, tags=["a"])
    path = f"/scale/v1/task/{task['task_id']}/tags"
    for method, tags, expected in (
        ("PUT", ["b"], ["a", "b"]),
        ("DELETE", ["a"], ["b"]),
        ("POST", ["c", "c"], ["c"]),
    ):
        status, _, body = await gateway.call(method, path, CUSTOMER_KEY, json=tags)
        assert status == 200 and body["tags"] == expected, body
    status, _, body = await gateway.call("POST", path, CUSTOMER_KEY, json={"tags": ["a"]})
    assert status == 400, body
    status, _, body = await gateway.call("POST", path, CUSTOMER_KEY, data="tags=a")
    assert status == 415 and "application/json" in body["error"]
    status, _, body = await gateway.call("POST", path, CUSTOMER_KEY)  # the SDK's empty list
    assert status == 200 and body["tags"] == []
    status, _, body = await gateway.call(
        "POST", path, CUSTOMER_KEY, data=b"[1,", headers={"Content-Type": "application/json"}
    )
    assert status == 400 and "malformed JSON" in body["error"]


async def test_metadata_unique_id_and_cancel(gateway: Gateway) -> None:
    task = await create(gateway, unique_id="u")
    base = f"/scale/v1/task/{task['task_id']}"
    status, _, body = await gateway.call("POST", f"{base}/setMetadata", CUSTOMER_KEY, json={"x": 1})
    assert status == 200 and body["metadata"] == {"x": 1}
    status, _, body = await gateway.call("POST", f"{base}/setMetadata", CUSTOMER_KEY, json=[1])
    assert status == 400
    status, _, body = await gateway.call("POST", f"{base}/unique_id", CUSTOMER_KEY, json={})
    assert status == 400 and body["error"] == "unique_id: is required"
    status, _, body = await gateway.call("DELETE", f"{base}/unique_id", CUSTOMER_KEY)
    assert status == 200 and "unique_id" not in body
    status, _, body = await gateway.call(
        "POST", f"{base}/unique_id", CUSTOMER_KEY, json={"unique_id": "v"}
    )
    assert status == 200 and body["unique_id"] == "v"
    status, _, body = await gateway.call(
        "POST", f"{base}/cancel?clear_unique_id=maybe", CUSTOMER_KEY
    )
    assert status == 400 and body["error"].startswith("clear_unique_id")
    status, _, body = await gateway.call(
        "POST", f"{base}/cancel?clear_unique_id=true", CUSTOMER_KEY
    )
    assert status == 200 and body["status"] == "canceled" and "unique_id" not in body


async def test_an_audit_needs_a_boolean_and_a_completed_task(gateway: Gateway) -> None:
    task = await create(gateway)
    path = f"/scale/v1/task/{task['task_id']}/audit"
    status, _, body = await gateway.call("POST", path, CUSTOMER_KEY, json={"accepted": "perhaps"})
    assert status == 400 and body["error"].startswith("accepted")
    status, _, body = await gateway.call("POST", path, CUSTOMER_KEY, json={"accepted": True})
    assert status == 409 and "only a completed task" in body["error"]


async def test_the_list_answers_scales_page(gateway: Gateway) -> None:
    made = [await create(gateway, tags=["t"]) for _ in range(3)]
    status, _, page = await gateway.call("GET", "/scale/v1/tasks?limit=2&tags=t", CUSTOMER_KEY)
    assert status == 200
    assert set(page) == {"docs", "total", "limit", "offset", "has_more", "next_token"}
    assert (page["total"], page["limit"], page["offset"], page["has_more"]) == (3, 2, 0, True)
    status, _, last = await gateway.call(
        "GET", f"/scale/v1/tasks?limit=2&tags=t&next_token={page['next_token']}", CUSTOMER_KEY
    )
    assert (last["offset"], last["has_more"], last["next_token"]) == (2, False, None)
    ids = [t["task_id"] for t in page["docs"] + last["docs"]]
    assert ids == [t["task_id"] for t in reversed(made)]
    status, _, listed = await gateway.call(
        "GET", "/scale/v1/tasks?include_attachment_url=True&limited_response=false", CUSTOMER_KEY
    )
    assert status == 200 and listed["total"] == 3


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("updated_after=2024-01-01", "updated_after"),
        ("customer_review_status=maybe", "customer_review_status"),
        ("limit=101", "limit"),
        ("next_token=garbage", "next_token"),
        ("start_time=yesterday", "start_time"),
        ("status=done", "status"),
        ("type=imageannotation", "type"),
    ],
)
async def test_a_bad_list_query_is_a_400_naming_it(
    gateway: Gateway, query: str, named: str
) -> None:
    status, _, body = await gateway.call("GET", f"/scale/v1/tasks?{query}", CUSTOMER_KEY)
    assert status == 400 and body["error"].startswith(named), body


async def test_a_next_token_the_api_did_not_give_out_is_a_400_naming_it(gateway: Gateway) -> None:
    for _ in range(3):
        await create(gateway, tags=["t"])
    _, _, page = await gateway.call("GET", "/scale/v1/tasks?limit=1&tags=t", CUSTOMER_KEY)
    token = page["next_token"]
    payload, _, signature = token.rpartition(".")
    for query in (
        f"limit=1&tags=t&next_token={payload}.{'A' * len(signature)}",  # forged
        f"limit=1&tags=u&next_token={token}",  # another query's
    ):
        status, _, body = await gateway.call("GET", f"/scale/v1/tasks?{query}", CUSTOMER_KEY)
        assert status == 400 and body["error"].startswith("next_token: "), body
        assert body["status_code"] == 400


async def test_a_list_past_its_time_limit_is_a_503_in_json(gateway: Gateway) -> None:
    gateway.store.fail_with = Unavailable(
        "the list ran past its time limit (5000 ms in the database); narrow it with "
        "start_time and end_time, or a status, or try again"
    )
    for path in ("/scale/v1/tasks", "/scale/v1/projects", "/scale/v1/batches"):
        status, headers, body = await gateway.call("GET", path, CUSTOMER_KEY)
        assert (status, headers["Retry-After"]) == (503, "1")
        assert body == {"status_code": 503, "error": gateway.store.fail_with.message}


async def test_the_rate_limit_counts_scale_requests_too() -> None:
    async with in_process_gateway(rate_limit_per_second=1) as gateway:
        statuses = [
            (await gateway.call("GET", "/scale/v1/projects", CUSTOMER_KEY))[0] for _ in range(3)
        ]
    assert 429 in statuses
