"""A batch's callback is sent once (docs/reference/contract.md §11), even when the task-store
dies between deciding the batch is complete and publishing it, and when the events
around it are delivered again.

The task-store's test hook (`HUMANTASK_TEST_EXIT_AFTER_BATCH_COMPLETION_WRITE`) makes it
exit right after the conditional write that completes the batch: `batch.completed` waits
in the batch's outbox, in the same document, and the `batch.task_settled` that woke it
was never acked. The restarted task-store's relay publishes the one, the broker delivers
the other again (the batch is complete already: nothing more), and the notifier calls
the batch back once; a `batch.completed` and a `batch.task_settled` published again
afterwards change nothing.
"""

from __future__ import annotations

from typing import Any

import aio_pika
import orjson
import pymongo
import pytest

from humantask_shared.core.topology import (
    EVENTS_EXCHANGE,
    NOTIFIER_BATCH_COMPLETIONS_QUEUE,
    TASKSTORE_BATCH_PROGRESS_QUEUE,
)
from humantask_taskstore.crash_hook import EXIT_CODE
from tests.support.callbacks import ScriptedReceiver
from tests.support.services import wait_for

from .conftest import SEED_TASK_JSON, start_service
from .isolated import api_for, isolated_stack

pytestmark = pytest.mark.e2e


async def _publish_again(channel: aio_pika.abc.AbstractChannel, raw: str) -> None:
    """An event again, byte for byte as it was published (a redelivery)."""
    fields = orjson.loads(raw)
    exchange = await channel.get_exchange(EVENTS_EXCHANGE.name)
    await exchange.publish(
        aio_pika.Message(
            body=raw.encode(),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=fields["event_id"],
            type=fields["event_type"],
        ),
        routing_key=fields["event_type"],
    )


async def _drained(channel: aio_pika.abc.AbstractChannel, queue: str) -> bool:
    declared = await channel.declare_queue(queue, passive=True)
    return declared.declaration_result.message_count == 0


async def test_a_batch_is_called_back_once_across_a_crash_and_redeliveries(
    mongodb_url: str,
    test_session_id: str,
    _containers: Any,  # noqa: PT019 - its value is used: the session's containers
) -> None:
    receiver = await ScriptedReceiver().start()
    with isolated_stack(
        "batch_crash",
        mongodb_url=mongodb_url,
        session_id=test_session_id,
        containers=_containers,
        taskstores=0,
        RPC_TIMEOUT_SECONDS=3,
        CALLBACK_ALLOW_PRIVATE_NETWORKS="true",
        CALLBACK_RETRY_DELAY_SECONDS=2,
    ) as stack:
        crashing, _ = start_service(
            "humantask-taskstore",
            {**stack.env, "HUMANTASK_TEST_EXIT_AFTER_BATCH_COMPLETION_WRITE": "true"},
            "HEALTH_PORT",
        )
        notifier, _ = start_service("humantask-notifier", stack.env, "HEALTH_PORT")
        stack.processes["notifier"] = notifier
        owner = stack.admin("customers", "create", "--name", "batch crash owner")
        token = stack.admin("workers", "create", "--name", "batch crash worker")["token"]
        key = owner["api_key"]
        connection = await aio_pika.connect(stack.env["AMQP_URL"])
        async with connection, api_for(stack) as api:
            channel = await connection.channel()
            assert (
                await api.post(
                    "/scale/v1/projects", key, json={"type": "categorization", "name": "p"}
                )
            ).status == 200
            batch = {"project": "p", "name": "b", "callback": receiver.url("/batch")}
            assert (await api.post("/scale/v1/batches", key, json=batch)).status == 200
            task = await api.post(
                "/scale/v1/task/categorization", key, json={**SEED_TASK_JSON, "batch": "b"}
            )
            assert task.status == 200, task
            assert (await api.post("/scale/v1/batches/b/finalize", key)).status == 200

            claimed = await api.post("/v1/work/claim", token)
            assert claimed.body["task_id"] == task.body["task_id"]
            submitted = await api.post(
                f"/v1/work/{task.body['task_id']}/submit", token, json={"category": "big"}
            )
            assert submitted.status in (200, 503), submitted  # it may die before answering
            assert crashing.wait(timeout=30) == EXIT_CODE, crashing.log_tail()
            assert "exiting after the completion write" in crashing.log_text()

            # The batch is completed and its event waits in its outbox, nowhere else.
            with pymongo.MongoClient(stack.env["MONGODB_URL"]) as client:
                stored = client.get_default_database()["batches"].find_one({"name": "b"})
            assert stored["status"] == "completed"
            (raw_completion,) = stored["outbox"]
            assert orjson.loads(raw_completion)["event_type"] == "batch.completed"
            assert receiver.received("/batch") == []

            restarted, url = start_service("humantask-taskstore", stack.env, "HEALTH_PORT")
            stack.processes["taskstore"], stack.health_urls["taskstore"] = restarted, url
            (delivered,) = await receiver.wait_for_requests("/batch", 1, timeout=30)
            body = orjson.loads(delivered.body)
            assert body["batch"]["status"] == "completed"
            assert body["counts"] == {"pending": 0, "completed": 1, "canceled": 0}

            # Each event again: the batch's completion, and the task's settling.
            await _publish_again(channel, raw_completion)
            settled = {
                "event_id": "redelivered-settle",
                "occurred_at": "2026-01-01T00:00:00.000Z",
                "schema_version": 1,
                "customer_id": owner["customer_id"],
                "batch": "b",
                "task_id": task.body["task_id"],
                "event_type": "batch.task_settled",
            }
            await _publish_again(channel, orjson.dumps(settled).decode())
            for queue in (NOTIFIER_BATCH_COMPLETIONS_QUEUE, TASKSTORE_BATCH_PROGRESS_QUEUE):
                await wait_for(
                    lambda queue=queue: _drained(channel, queue.name),
                    timeout=30,
                    message=f"{queue.name} drained",
                )
            status = await api.get("/scale/v1/batches/b/status", key)
            assert status.body == {
                "status": "completed",
                "pending": 0,
                "completed": 1,
                "canceled": 0,
            }
            with pymongo.MongoClient(stack.env["MONGODB_URL"]) as client:
                database = client.get_default_database()
                batch_doc = database["batches"].find_one({"name": "b"})
                attempts = list(
                    database["callback_attempts"].find({"task_id": f"batch-{batch_doc['_id']}"})
                )
            assert batch_doc["outbox"] == []
            assert [(a["attempt"], a["delivered"]) for a in attempts] == [(1, True)]
            assert len(receiver.received("/batch")) == 1
    await receiver.stop()
