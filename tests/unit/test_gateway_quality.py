"""The gateway's side of docs/reference/contract.md §10, in-process (a fake boundary): the create
parameters of several workers and gold, in JSON and form bodies, each bad value a 400
naming its field that never reaches the task-store; and `GET /v1/quality/workers`."""

from __future__ import annotations

from typing import Any

import pytest

from humantask_shared.core.messages.commands import CreateTask, ListWorkerQuality, WorkerQuality
from tests.support.fake_boundary import CUSTOMER_KEY, OTHER_CUSTOMER_KEY, WORKER_TOKEN

from .conftest import GatewayFactory
from .test_gateway_http import SEED_CREATE_FORM, SEED_TASK_JSON, assert_error

pytestmark = pytest.mark.timeout(60)

QUALITY_FIELDS = {"min_workers", "max_workers", "confidence", "gold_category"}


async def test_a_task_created_without_them_shows_none_of_the_quality_fields(
    gateway: GatewayFactory,
) -> None:
    gw = await gateway()
    status, _, task = await gw.call(
        "POST", "/v1/task/categorize", CUSTOMER_KEY, json=SEED_TASK_JSON
    )
    assert status == 200 and not QUALITY_FIELDS & set(task), task


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ({"min_workers": 2}, {"min_workers": 2}),
        ({"max_workers": 5, "confidence": 0.95}, {"max_workers": 5, "confidence": 0.95}),
        ({"min_workers": 3, "max_workers": 3}, {"min_workers": 3, "max_workers": 3}),
        ({"confidence": 0.5}, {"confidence": 0.5}),
        ({"gold_category": "big"}, {"gold_category": "big"}),
    ],
)
async def test_the_quality_settings_given_in_json_are_shown_back(
    gateway: GatewayFactory, given: dict[str, Any], shown: dict[str, Any]
) -> None:
    gw = await gateway()
    status, _, task = await gw.call(
        "POST", "/v1/task/categorize", CUSTOMER_KEY, json={**SEED_TASK_JSON, **given}
    )
    assert status == 200, task
    assert {k: v for k, v in task.items() if k in QUALITY_FIELDS} == shown


async def test_form_bodies_take_them_as_text(gateway: GatewayFactory) -> None:
    gw = await gateway()
    form = [*SEED_CREATE_FORM, ("min_workers", "2"), ("max_workers", "4"), ("confidence", ".95")]
    status, _, task = await gw.call("POST", "/v1/task/categorize", CUSTOMER_KEY, data=form)
    assert status == 200, task
    assert (task["min_workers"], task["max_workers"], task["confidence"]) == (2, 4, 0.95)
    (command,) = [c for c in gw.store.asked if isinstance(c, CreateTask)]
    assert command.request.min_workers == 2


async def test_a_gold_task_needs_no_callback_url(gateway: GatewayFactory) -> None:
    gw = await gateway()
    body = {k: v for k, v in SEED_TASK_JSON.items() if k != "callback_url"}
    status, _, task = await gw.call(
        "POST", "/v1/task/categorize", CUSTOMER_KEY, json={**body, "gold_category": "small"}
    )
    assert status == 200, task
    assert task["gold_category"] == "small" and "callback_url" not in task
    form = [(k, v) for k, v in SEED_CREATE_FORM if k != "callback_url"]
    status, _, task = await gw.call(
        "POST", "/v1/task/categorize", CUSTOMER_KEY, data=[*form, ("gold_category", "public")]
    )
    assert status == 200 and task["gold_category"] == "public", task


BAD_JSON = [
    ({"min_workers": 0}, "min_workers"),
    ({"min_workers": 11}, "min_workers"),
    ({"min_workers": "3"}, "min_workers"),
    ({"min_workers": True}, "min_workers"),
    ({"min_workers": 2.5}, "min_workers"),
    ({"min_workers": None, "max_workers": 0}, "max_workers"),
    ({"max_workers": 11}, "max_workers"),
    ({"min_workers": 4, "max_workers": 3}, "max_workers"),
    ({"max_workers": [3]}, "max_workers"),
    ({"confidence": 0.49}, "confidence"),
    ({"confidence": 0.991}, "confidence"),
    ({"confidence": 1}, "confidence"),
    ({"confidence": "0.9"}, "confidence"),
    ({"confidence": False}, "confidence"),
    ({"gold_category": "medium"}, "gold_category"),
    ({"gold_category": ""}, "gold_category"),
    ({"gold_category": 1}, "gold_category"),
    ({"gold_category": "b" * 257}, "gold_category"),
    ({"callback_url": None}, "callback_url"),
]


@pytest.mark.parametrize(("extra", "field"), BAD_JSON, ids=[repr(c[0]) for c in BAD_JSON])
async def test_bad_json_values_are_400_naming_the_field(
    gateway: GatewayFactory, extra: dict[str, Any], field: str
) -> None:
    gw = await gateway()
    status, _, body = await gw.call(
        "POST", "/v1/task/categorize", CUSTOMER_KEY, json={**SEED_TASK_JSON, **extra}
    )
    assert_error(status, body, 400)
    assert body["error"].startswith(field), body
    assert gw.store.count(CreateTask) == 0


BAD_FORM = [
    ("min_workers", "three"),
    ("min_workers", "3.0"),
    ("min_workers", ""),
    ("min_workers", "99999999999999999999"),
    ("max_workers", "0"),
    ("confidence", "1e-1"),
    ("confidence", "nan"),
    ("confidence", "high"),
    ("confidence", "0.3"),
    ("gold_category", "medium"),
]


@pytest.mark.parametrize(("field", "value"), BAD_FORM)
async def test_bad_form_values_are_400_naming_the_field(
    gateway: GatewayFactory, field: str, value: str
) -> None:
    gw = await gateway()
    form = [*SEED_CREATE_FORM, (field, value)]
    status, _, body = await gw.call("POST", "/v1/task/categorize", CUSTOMER_KEY, data=form)
    assert_error(status, body, 400)
    assert body["error"].startswith(field), body
    assert gw.store.count(CreateTask) == 0


async def test_a_form_missing_callback_url_names_it_first(gateway: GatewayFactory) -> None:
    gw = await gateway()
    form = [(k, v) for k, v in SEED_CREATE_FORM if k != "callback_url"]
    status, _, body = await gw.call("POST", "/v1/task/categorize", CUSTOMER_KEY, data=form)
    assert_error(status, body, 400)
    assert body["error"] == "callback_url: is required"


# -- GET /v1/quality/workers -------------------------------------------------------------------


async def test_the_workers_view_is_the_callers_own(gateway: GatewayFactory) -> None:
    gw = await gateway()
    worker = WorkerQuality(
        worker="5f2a9c1e0b7d4e36",
        answers=12,
        gold_answers=3,
        gold_correct=2,
        accuracy=0.7143,
        blocked=False,
    )
    gw.store.workers["c1"] = [worker]
    status, _, body = await gw.call("GET", "/v1/quality/workers", CUSTOMER_KEY)
    assert status == 200 and body == [worker.model_dump(mode="json")]
    status, _, body = await gw.call("GET", "/v1/quality/workers", OTHER_CUSTOMER_KEY)
    assert status == 200 and body == []
    asked = [c for c in gw.store.asked if isinstance(c, ListWorkerQuality)]
    assert [c.customer_id for c in asked] == ["c1", "c2"]


async def test_the_workers_view_is_for_customers_only(gateway: GatewayFactory) -> None:
    gw = await gateway()
    for credential in (WORKER_TOKEN, None):
        status, headers, body = await gw.call("GET", "/v1/quality/workers", credential)
        assert_error(status, body, 401)
        assert headers["WWW-Authenticate"] == 'Basic realm="humantask"'
    assert gw.store.count(ListWorkerQuality) == 0
