"""Recovering what failed (docs/operations/recovery.md), on the deployment's permission
model: a stack of its own with a broker user per service (`test_credentials.secured`).

- A customer asks for a failed callback again (`POST /v1/task/{id}/callbacks/redeliver`):
  one new delivery of the same message, logged with its `delivery` number, while the
  original delivery's log entries stay exactly the contract's.
- The operator lists the deliveries that failed since a time and redelivers them
  (`humantask-admin callbacks failed|redeliver`).
- The operator lists, shows, replays and drops dead letters (`humantask-admin
  dead-letters`), as the admin's broker user.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import aiohttp
import pytest
import standardwebhooks

from humantask_shared.core.messages.events import TaskCompleted
from humantask_shared.core.models import Task, new_task_id
from humantask_shared.core.timeutil import utcnow
from humantask_shared.core.topology import (
    DEAD_LETTER_EXCHANGE,
    EVENTS_EXCHANGE,
    NOTIFIER_COMPLETIONS_QUEUE,
)
from humantask_shared.runtime.broker import open_channel
from humantask_shared.runtime.publishing import outgoing, stamp
from tests.support.callbacks import Answer, ScriptedReceiver
from tests.support.services import wait_for

from .conftest import BIN, SEED_TASK_JSON, Api
from .test_credentials import LeastPrivilegeStack, secured  # noqa: F401 (a fixture)

pytestmark = pytest.mark.e2e

SPEC_FIELDS = {"attempt", "at", "status_code", "error", "delivered"}


@pytest.fixture(scope="module")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


@pytest.fixture
async def receiver() -> AsyncIterator[ScriptedReceiver]:
    started = await ScriptedReceiver().start()
    try:
        yield started
    finally:
        await started.stop()


def run_admin(stack: LeastPrivilegeStack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "humantask-admin"), *args],
        env=stack.stack.env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def admin(stack: LeastPrivilegeStack, *args: str) -> list[dict[str, Any]]:
    """`humantask-admin` in a thread (the receiver answers on this event loop meanwhile)."""
    result = await asyncio.to_thread(run_admin, stack, *args)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


async def complete(api: Api, key: str, worker: str, callback_url: str) -> str:
    created = await api.post(
        "/v1/task/categorize", key, json={**SEED_TASK_JSON, "callback_url": callback_url}
    )
    assert created.status == 200, created
    claimed = await api.post("/v1/work/claim", worker)
    assert claimed.status == 200 and claimed.body["task_id"] == created.body["task_id"], claimed
    task_id = str(claimed.body["task_id"])
    submitted = await api.post(f"/v1/work/{task_id}/submit", worker, json={"category": "big"})
    assert submitted.status == 200, submitted
    return task_id


async def log_of(api: Api, key: str, task_id: str, entries: int) -> list[dict[str, Any]]:
    async def logged() -> list[dict[str, Any]] | None:
        reply = await api.get(f"/v1/task/{task_id}/callbacks", key)
        assert reply.status == 200, reply
        return reply.body if len(reply.body) >= entries else None

    return await wait_for(logged, timeout=30, message=f"{entries} entries in the log")


async def test_a_customer_has_a_failed_callback_delivered_again(
    http: aiohttp.ClientSession,
    secured: LeastPrivilegeStack,  # noqa: F811
    receiver: ScriptedReceiver,
) -> None:
    api = Api(http, secured.gateways[0])
    customer = secured.admin("customers", "create", "--name", "redelivered")
    other = secured.admin("customers", "create", "--name", "someone else")
    worker = secured.admin("workers", "create", "--name", "redelivery")["token"]
    key = customer["api_key"]
    receiver.script("/down", Answer(503), Answer(503))  # down for both attempts, then up
    task_id = await complete(api, key, worker, receiver.url("/down"))
    await receiver.wait_for_requests("/down", 2, timeout=30)
    original = await log_of(api, key, task_id, 2)

    # Not another customer's, not a task that is not completed.
    redeliver = f"/v1/task/{task_id}/callbacks/redeliver"
    assert (await api.post(redeliver, other["api_key"])).status == 404
    pending = await api.post("/v1/task/categorize", key, json=SEED_TASK_JSON)
    refused = await api.post(f"/v1/task/{pending.body['task_id']}/callbacks/redeliver", key)
    assert refused.status == 409 and "pending" in refused.body["error"], refused
    assert (await api.post(f"/v1/task/{pending.body['task_id']}/cancel", key)).status == 200

    asked = await api.post(redeliver, key)
    assert (asked.status, asked.body) == (202, {"task_id": task_id, "delivery": 2}), asked
    first, _, again = await receiver.wait_for_requests("/down", 3, timeout=30)
    assert again.body == first.body
    assert again.headers["webhook-id"] == first.headers["webhook-id"] == task_id
    assert (again.headers["X-Callback-Delivery"], again.headers["X-Callback-Attempt"]) == ("2", "1")
    standardwebhooks.Webhook(customer["callback_secret"]).verify(
        again.body, dict(again.headers), json_parse=False
    )
    log = await log_of(api, key, task_id, 3)
    assert log[:2] == original  # the original delivery's entries: the contract's, unchanged
    assert all(set(entry) == SPEC_FIELDS for entry in original)
    assert {k: v for k, v in log[2].items() if k != "at"} == {
        "attempt": 1,
        "status_code": 200,
        "error": None,
        "delivered": True,
        "delivery": 2,
    }
    # At once again: the per-task limit.
    limited = await api.post(redeliver, key)
    assert limited.status == 429 and int(limited.headers["Retry-After"]) >= 1, limited


async def test_the_operator_redelivers_the_callbacks_that_failed_since_a_time(
    http: aiohttp.ClientSession,
    secured: LeastPrivilegeStack,  # noqa: F811
    receiver: ScriptedReceiver,
) -> None:
    api = Api(http, secured.gateways[1])
    customer = secured.admin("customers", "create", "--name", "failed callbacks")
    worker = secured.admin("workers", "create", "--name", "failed callbacks")["token"]
    receiver.script("/outage", Answer(500), Answer(500))
    task_id = await complete(api, customer["api_key"], worker, receiver.url("/outage"))
    await receiver.wait_for_requests("/outage", 2, timeout=30)
    mine = ("--customer", customer["customer_id"])

    async def listed() -> list[dict[str, Any]] | None:
        lines = await admin(secured, "callbacks", "failed", "--since", "10m", *mine)
        return lines or None

    (failed,) = await wait_for(listed, timeout=30, message="the failed delivery listed")
    assert failed["task_id"] == task_id and failed["delivery"] == 1
    assert failed["status_code"] == 500 and failed["callback_url"] == receiver.url("/outage")
    assert await admin(secured, "callbacks", "failed", "--since", "2099-01-01T00:00:00Z") == []

    redelivered = await admin(secured, "callbacks", "redeliver", "--failed-since", "10m", *mine)
    assert redelivered == [{"task_id": task_id, "delivery": 2}]
    *_, again = await receiver.wait_for_requests("/outage", 3, timeout=30)
    assert again.headers["X-Callback-Delivery"] == "2"
    assert await admin(secured, "callbacks", "failed", "--since", "10m", *mine) == []

    # A task with no callback to redeliver: said on its line, and the exit status.
    refused = await asyncio.to_thread(run_admin, secured, "callbacks", "redeliver", "0" * 24)
    assert refused.returncode == 1
    [line] = [json.loads(text) for text in refused.stdout.splitlines()]
    assert line["task_id"] == "0" * 24 and "cannot be redelivered" in line["error"]


async def test_dead_letters_are_listed_shown_replayed_and_dropped(
    secured: LeastPrivilegeStack,  # noqa: F811
    receiver: ScriptedReceiver,
) -> None:
    customer = secured.admin("customers", "create", "--name", "dead letters")
    task = Task.model_validate(
        {
            **SEED_TASK_JSON,
            "task_id": new_task_id(),
            "created_at": utcnow(),
            "completed_at": utcnow(),
            "status": "completed",
            "callback_url": receiver.url("/replayed"),
            "params": {"attachment_type": "text", "attachment": "car", "categories": ["a", "b"]},
            "response": {"category": "a"},
        }
    )
    event = stamp(
        TaskCompleted(customer_id=customer["customer_id"], callback_format="json", task=task),
        utcnow(),
    )
    connection = await aio_pika.connect_robust(secured.users.url("taskstore"))
    async with connection:
        channel = await open_channel(connection)
        # A message the notifier cannot parse: it dead-letters it (reason: rejected).
        events = await channel.get_exchange(EVENTS_EXCHANGE.name, ensure=False)
        await events.publish(
            outgoing(b'{"not": "an event"}', "task.completed", persistent=True, message_id="p1"),
            routing_key="task.completed",
        )
        # A good one, as if it had been dead-lettered while the notifier could not cope.
        dead_letters = await channel.get_exchange(DEAD_LETTER_EXCHANGE.name, ensure=False)
        await dead_letters.publish(
            outgoing(event.body.encode(), "task.completed", persistent=True, message_id="good-1"),
            routing_key=NOTIFIER_COMPLETIONS_QUEUE.name,
        )
    queue = NOTIFIER_COMPLETIONS_QUEUE.name

    async def both_listed() -> dict[str, dict[str, Any]] | None:
        lines = await admin(secured, "dead-letters", "list", "--queue", queue)
        found = {line["id"]: line for line in lines}
        return found if {"p1", "good-1"} <= set(found) else None

    listed = await wait_for(both_listed, timeout=30, message="both dead letters listed")
    assert listed["p1"]["reason"] == "rejected" and listed["p1"]["type"] == "task.completed"
    assert listed["p1"]["queue"] == f"{queue}.dead-letter"
    # Listing takes nothing away.
    assert {"p1", "good-1"} <= {line["id"] for line in await admin(secured, "dead-letters", "list")}
    (shown,) = await admin(secured, "dead-letters", "show", queue, "p1")
    assert shown["body"] == {"not": "an event"} and "x-death" not in shown["headers"]

    # A command is never replayed; an unknown id is an error; both leave everything.
    commands = await asyncio.to_thread(
        run_admin, secured, "dead-letters", "replay", "taskstore.commands", "--all"
    )
    assert commands.returncode != 0 and "never replayed" in commands.stderr
    missing = await asyncio.to_thread(run_admin, secured, "dead-letters", "drop", queue, "nope")
    assert missing.returncode != 0 and "nope" in missing.stderr

    (replayed,) = await admin(secured, "dead-letters", "replay", queue, "good-1")
    assert replayed["id"] == "good-1" and replayed["replayed"] is True
    (callback,) = await receiver.wait_for_requests("/replayed", 1, timeout=30)
    assert callback.headers["webhook-id"] == task.task_id
    standardwebhooks.Webhook(customer["callback_secret"]).verify(
        callback.body, dict(callback.headers), json_parse=False
    )
    (dropped,) = await admin(secured, "dead-letters", "drop", queue, "p1")
    assert dropped["dropped"] is True
    # (The task-store's quality queue hears task.completed too, and turned p1 away on its
    # own: that copy stays in its dead-letter queue until dropped there.)
    remaining = {
        line["id"] for line in await admin(secured, "dead-letters", "list", "--queue", queue)
    }
    assert not {"p1", "good-1"} & remaining
