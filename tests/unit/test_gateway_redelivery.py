"""`POST /v1/task/{task_id}/callbacks/redeliver`, in-process (docs/reference/contract.md §5):
`202` and the new delivery's number for the caller's completed task; `404` for another
customer's task (the notifier is never asked), `409` for one that is not completed, `429`
with `Retry-After` past the per-task or per-customer limit. The redelivery itself (the
notifier's) is in tests/unit/test_callback_redelivery.py and tests/e2e/test_recovery.py."""

from __future__ import annotations

from typing import Any

import pytest

from humantask_shared.core.errors import Conflict
from humantask_shared.core.messages.commands import RedeliverCallback
from humantask_shared.core.models import TaskResponse
from humantask_shared.core.timeutil import utcnow
from tests.support.fake_boundary import CUSTOMER_KEY, OTHER_CUSTOMER_KEY, WORKER_TOKEN
from tests.support.gateway import Gateway

from .conftest import GatewayFactory
from .test_gateway_http import SEED_TASK_JSON, VALID_ID, assert_error

pytestmark = pytest.mark.timeout(60)


async def new_task(gw: Gateway, status: str = "completed") -> str:
    _, _, task = await gw.call("POST", "/v1/task/categorize", CUSTOMER_KEY, json=SEED_TASK_JSON)
    owner, stored = gw.store.tasks[task["task_id"]]
    changes: dict[str, Any] = {"status": status}
    if status == "completed":
        changes |= {"completed_at": utcnow(), "response": TaskResponse(category="big")}
    gw.store.tasks[task["task_id"]] = (owner, stored.model_copy(update=changes))
    return str(task["task_id"])


def redeliver(task_id: str) -> str:
    return f"/v1/task/{task_id}/callbacks/redeliver"


async def test_a_completed_tasks_callback_is_redelivered(gateway: GatewayFactory) -> None:
    gw = await gateway()
    task_id = await new_task(gw)
    status, _, body = await gw.call("POST", redeliver(task_id), CUSTOMER_KEY)
    assert (status, body) == (202, {"task_id": task_id, "delivery": 2})
    [asked] = [c for c in gw.notifier.asked if isinstance(c, RedeliverCallback)]
    assert (asked.task_id, asked.customer_id) == (task_id, "c1")


async def test_another_customers_task_is_404_and_the_notifier_is_not_asked(
    gateway: GatewayFactory,
) -> None:
    gw = await gateway()
    task_id = await new_task(gw)
    for task in (task_id, VALID_ID, "not-a-task-id"):
        status, _, body = await gw.call("POST", redeliver(task), OTHER_CUSTOMER_KEY)
        assert_error(status, body, 404, "no task")
    assert gw.notifier.count(RedeliverCallback) == 0


@pytest.mark.parametrize("state", ["pending", "canceled"])
async def test_a_task_that_is_not_completed_is_409(gateway: GatewayFactory, state: str) -> None:
    gw = await gateway()
    task_id = await new_task(gw, state)
    status, _, body = await gw.call("POST", redeliver(task_id), CUSTOMER_KEY)
    assert_error(status, body, 409, state, "only a completed task")
    assert gw.notifier.count(RedeliverCallback) == 0


async def test_the_notifiers_refusal_is_a_409(gateway: GatewayFactory) -> None:
    gw = await gateway()
    task_id = await new_task(gw)
    gw.notifier.fail_with = Conflict(f"the callback of task {task_id} is still being delivered")
    status, _, body = await gw.call("POST", redeliver(task_id), CUSTOMER_KEY)
    assert_error(status, body, 409, "still being delivered")


async def test_credentials_and_methods(gateway: GatewayFactory) -> None:
    gw = await gateway()
    task_id = await new_task(gw)
    for key in (None, WORKER_TOKEN):
        status, headers, _ = await gw.call("POST", redeliver(task_id), key)
        assert status == 401 and "WWW-Authenticate" in headers
    status, _, _ = await gw.call("GET", redeliver(task_id), CUSTOMER_KEY)
    assert status == 405


async def test_one_redelivery_per_task_per_interval(gateway: GatewayFactory) -> None:
    gw = await gateway(callback_redelivery_interval_seconds=60)
    first, second = await new_task(gw), await new_task(gw)
    assert (await gw.call("POST", redeliver(first), CUSTOMER_KEY))[0] == 202
    status, headers, body = await gw.call("POST", redeliver(first), CUSTOMER_KEY)
    assert_error(status, body, 429, first, "moments ago")
    assert 1 <= int(headers["Retry-After"]) <= 60
    assert (await gw.call("POST", redeliver(second), CUSTOMER_KEY))[0] == 202
    assert gw.notifier.count(RedeliverCallback) == 2


async def test_redeliveries_per_customer_per_minute(gateway: GatewayFactory) -> None:
    gw = await gateway(callback_redeliveries_per_minute=2, callback_redelivery_interval_seconds=0)
    tasks = [await new_task(gw) for _ in range(3)]
    assert (await gw.call("POST", redeliver(tasks[0]), CUSTOMER_KEY))[0] == 202
    assert (await gw.call("POST", redeliver(tasks[0]), CUSTOMER_KEY))[0] == 202  # no per-task
    status, headers, body = await gw.call("POST", redeliver(tasks[1]), CUSTOMER_KEY)
    assert_error(status, body, 429, "too many callback redeliveries")
    assert 1 <= int(headers["Retry-After"]) <= 30
    assert gw.notifier.count(RedeliverCallback) == 2


async def test_a_refused_request_spends_no_redelivery(gateway: GatewayFactory) -> None:
    gw = await gateway(callback_redeliveries_per_minute=1)
    pending = await new_task(gw, "pending")
    assert (await gw.call("POST", redeliver(pending), CUSTOMER_KEY))[0] == 409
    assert (await gw.call("POST", redeliver(await new_task(gw)), CUSTOMER_KEY))[0] == 202


async def test_the_limits_can_be_turned_off(gateway: GatewayFactory) -> None:
    gw = await gateway(callback_redeliveries_per_minute=0, callback_redelivery_interval_seconds=0)
    task_id = await new_task(gw)
    for _ in range(20):
        assert (await gw.call("POST", redeliver(task_id), CUSTOMER_KEY))[0] == 202
