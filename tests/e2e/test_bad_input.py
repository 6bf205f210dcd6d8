"""Bad input through the whole stack: a few smoke cases that it is answered at once with a
JSON error and breaks nothing. The gateway's answers to bad input of every kind are
tested in-process (`tests/unit/test_gateway_http.py`); here, what needs the real
services: the task-store's answer to an unknown task, and that every process survives.
"""

from __future__ import annotations

import time

import pytest

from .conftest import Api

pytestmark = pytest.mark.e2e

VALID_ID = "0123456789abcdef01234567"
JSON = {"Content-Type": "application/json"}


async def test_malformed_json_is_400_through_the_stack(api: Api, other_customer: dict) -> None:
    reply = await api.post(
        "/v1/task/categorize", other_customer["api_key"], data=b'{"callback_url": ', headers=JSON
    )
    assert reply.status == 400, reply
    assert reply.body["status_code"] == 400 and "malformed JSON" in reply.body["error"]


async def test_an_out_of_range_list_query_is_400_at_once(api: Api, other_customer: dict) -> None:
    # A value that once overflowed inside the task-store (no reply, a 503 after 10 s).
    started = time.monotonic()
    reply = await api.get("/v1/tasks?offset=9223372036854775808", other_customer["api_key"])
    assert time.monotonic() - started < 5, "answered at once, not after the RPC timeout"
    assert reply.status == 400, reply
    assert reply.body["error"].startswith("offset"), reply.body


async def test_an_unknown_task_is_404(api: Api, other_customer: dict) -> None:
    for method, path in [("GET", f"/v1/task/{VALID_ID}"), ("POST", f"/v1/task/{VALID_ID}/cancel")]:
        reply = await api.request(method, path, other_customer["api_key"])
        assert reply.status == 404, (method, path, reply)
        assert reply.body["status_code"] == 404


async def test_an_unknown_path_is_404_in_json(api: Api, other_customer: dict) -> None:
    reply = await api.get("/v2/tasks", other_customer["api_key"])
    assert reply.status == 404, reply
    assert reply.body == {"status_code": 404, "error": reply.body["error"]}


async def test_services_survive_bad_input(api: Api, stack) -> None:
    # After everything above, both services still answer and are ready.
    assert (await api.get("/readyz")).status == 200
    for process in stack.processes.values():
        assert process.running, process.log_tail()
