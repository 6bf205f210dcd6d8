"""The whole way: a customer creates a task, a worker completes it over HTTP, and the
customer's callback_url gets the signed result; the log says it was delivered.

On a stack of its own (tests/e2e/isolated.py), so that the worker's claim finds this
test's task and not an older one of another test: the worker pool is global.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.support.callbacks import Answer, ScriptedReceiver

from .conftest import SEED_TASK_JSON, Api, Stack, start_service
from .isolated import api_for, isolated_stack
from .test_callbacks import as_form_strings, example, wait_for_log

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def callback_stack(mongodb_url: str, test_session_id: str, _containers: Any) -> Iterator[Stack]:
    settings = {
        "CALLBACK_RETRY_DELAY_SECONDS": 1,
        "CALLBACK_TIMEOUT_SECONDS": 1,
        "CALLBACK_ALLOW_PRIVATE_NETWORKS": "true",
    }
    with isolated_stack(
        "callbacks",
        mongodb_url=mongodb_url,
        session_id=test_session_id,
        containers=_containers,
        **settings,
    ) as stack:
        notifier, url = start_service("humantask-notifier", stack.env, "HEALTH_PORT")
        stack.processes["notifier"], stack.health_urls["notifier"] = notifier, url
        yield stack


@pytest.fixture(scope="module")
async def api(callback_stack: Stack) -> AsyncIterator[Api]:
    async with api_for(callback_stack) as api:
        yield api


async def test_a_worker_completing_a_task_calls_the_customer_back(
    api: Api,
    callback_stack: Stack,
) -> None:
    customer = callback_stack.admin("customers", "create", "--name", "round trip")
    worker = callback_stack.admin("workers", "create", "--name", "round trip")["token"]
    receiver = await ScriptedReceiver().start()
    try:
        receiver.script("/hook", Answer(503), Answer(200))
        created = await api.post(
            "/v1/task/categorize",
            customer["api_key"],
            json={**SEED_TASK_JSON, "callback_url": receiver.url("/hook")},
        )
        assert created.status == 200, created
        task_id = created.body["task_id"]

        claimed = await api.post("/v1/work/claim", worker)
        assert claimed.status == 200 and claimed.body["task_id"] == task_id, claimed
        submitted = await api.post(f"/v1/work/{task_id}/submit", worker, json={"category": "small"})
        assert submitted.status == 200, submitted

        first, second = await receiver.wait_for_requests("/hook", 2, timeout=30)
        task = (await api.get(f"/v1/task/{task_id}", customer["api_key"])).body
        assert task["status"] == "completed"
        assert first.body == second.body
        # The callback carries the completed task exactly as the API shows it.
        assert example.decode_form(second.body) == as_form_strings(
            {"task": task, "response": task["response"], "task_id": task_id}
        )
        assert task["response"] == {"category": "small", "status_code": 200}
        assert example.verify_callback(customer["callback_secret"], second.headers, second.body)

        log = await wait_for_log(api, customer, task_id, 2)
        assert [(e["attempt"], e["status_code"], e["delivered"]) for e in log] == [
            (1, 503, False),
            (2, 200, True),
        ]
    finally:
        await receiver.stop()
