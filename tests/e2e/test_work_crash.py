"""A completion is never lost: the task-store dies between writing a completed task and
publishing its `task.completed` event, and the event still arrives after a restart.

The task-store's test hook (`HUMANTASK_TEST_EXIT_AFTER_COMPLETION_WRITE`) makes it exit
at exactly that point; the event waits in the task's outbox, in the same document as the
completion, and the restarted task-store's relay publishes it.
"""

from __future__ import annotations

from typing import Any

import aio_pika
import orjson
import pymongo
import pytest
from bson import ObjectId

from humantask_shared.core.topology import EVENTS_EXCHANGE
from humantask_taskstore.crash_hook import EXIT_CODE
from tests.support.services import wait_for

from .conftest import SEED_TASK_JSON, start_service
from .isolated import api_for, isolated_stack

pytestmark = pytest.mark.e2e


async def test_a_completion_survives_a_crash_between_its_write_and_its_publish(
    mongodb_url: str,
    test_session_id: str,
    _containers: Any,  # noqa: PT019 - its value is used: the session's containers
) -> None:
    with isolated_stack(
        "crash",
        mongodb_url=mongodb_url,
        session_id=test_session_id,
        containers=_containers,
        taskstores=0,
        RPC_TIMEOUT_SECONDS=3,
    ) as stack:
        crashing, _ = start_service(
            "humantask-taskstore",
            {**stack.env, "HUMANTASK_TEST_EXIT_AFTER_COMPLETION_WRITE": "true"},
            "HEALTH_PORT",
        )
        owner = stack.admin("customers", "create", "--name", "crash owner")
        token = stack.admin("workers", "create", "--name", "crash worker")["token"]
        connection = await aio_pika.connect(stack.env["AMQP_URL"])
        async with connection, api_for(stack) as api:
            channel = await connection.channel()
            events = await channel.declare_queue(exclusive=True)
            await events.bind(EVENTS_EXCHANGE.name, routing_key="task.completed")

            task = (
                await api.post("/v1/task/categorize", owner["api_key"], json=SEED_TASK_JSON)
            ).body
            claimed = await api.post("/v1/work/claim", token)
            assert claimed.body["task_id"] == task["task_id"]

            submitted = await api.post(
                f"/v1/work/{task['task_id']}/submit", token, json={"category": "small"}
            )
            assert submitted.status == 503, submitted  # nobody left to answer
            assert crashing.wait(timeout=30) == EXIT_CODE, crashing.log_tail()
            assert "exiting after the completion write" in crashing.log_text()

            # The completion is written, its event is in the outbox and nowhere else yet.
            with pymongo.MongoClient(stack.env["MONGODB_URL"]) as client:
                stored = client.get_default_database()["tasks"].find_one(
                    {"_id": ObjectId(task["task_id"])}
                )
            assert stored["status"] == "completed"
            assert [orjson.loads(raw)["event_type"] for raw in stored["outbox"]] == [
                "task.answered",
                "task.completed",
            ]
            assert await events.get(fail=False) is None

            restarted, _ = start_service("humantask-taskstore", stack.env, "HEALTH_PORT")
            stack.processes["taskstore"] = restarted
            message = await wait_for(
                lambda: events.get(fail=False),
                timeout=30,
                message="task.completed published by the restarted relay",
            )
            event = orjson.loads(message.body)
            assert event["event_type"] == "task.completed"
            assert event["task"]["task_id"] == task["task_id"]
            assert event["task"]["response"] == {"category": "small", "status_code": 200}
            assert message.message_id == event["event_id"]

            done = await api.get(f"/v1/task/{task['task_id']}", owner["api_key"])
            assert done.body["status"] == "completed"
            assert done.body["response"] == {"category": "small", "status_code": 200}
