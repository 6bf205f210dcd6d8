"""What travels over RabbitMQ: events, poison messages, commands nobody waits for."""

from __future__ import annotations

import os
import re
import signal
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import aiohttp
import orjson
import pytest

from humantask_shared.core.broker_access import broker_user
from humantask_shared.core.messages.base import Command
from humantask_shared.core.messages.scale_commands import (
    SCALE_COMMANDS,
    AuditTask,
    CancelScaleTask,
    ChangeTaskTags,
    CreateBatch,
    CreateProject,
    CreateScaleTask,
    FinalizeBatch,
    GetBatch,
    GetBatchStatus,
    GetProject,
    GetScaleTask,
    ListBatches,
    ListProjects,
    ListScaleTasks,
    SetProjectParams,
    SetTaskMetadata,
    SetTaskUniqueId,
)
from humantask_shared.core.models import new_task_id
from humantask_shared.core.scale_models import (
    AuditRequest,
    BatchListQuery,
    CreateBatchRequest,
    CreateProjectRequest,
    ScaleTaskListQuery,
    SetProjectParamsRequest,
    TaskPlacement,
)
from humantask_shared.core.topology import (
    COMMANDS_EXCHANGE,
    EVENTS_EXCHANGE,
    NOTIFIER_COMPLETIONS_QUEUE,
    REPLY_QUEUE,
    TASKSTORE_COMMANDS_QUEUE,
)
from humantask_shared.runtime.broker import DEADLINE_HEADER
from tests.support.services import wait_for

from .conftest import SEED_TASK_JSON, Api, Stack, start_service

pytestmark = pytest.mark.e2e


@pytest.fixture
async def channel(amqp_url: str) -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        yield await connection.channel()


async def collect(queue: aio_pika.abc.AbstractQueue, into: list[dict[str, Any]]) -> None:
    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        into.append({"body": orjson.loads(message.body), "message": message})

    await queue.consume(on_message, no_ack=True)


async def is_dead_lettered(
    channel: aio_pika.abc.AbstractChannel, queue: str, message_id: str
) -> bool:
    """Is the message in `queue`'s dead-letter queue? Ours is taken out, others left."""
    dead_letters = await channel.declare_queue(f"{queue}.dead-letter", passive=True)
    found, others = False, []
    while (message := await dead_letters.get(fail=False)) is not None:
        if message.message_id == message_id:
            await message.ack()
            found = True
        else:
            others.append(message)
    for message in others:
        await message.nack(requeue=True)
    return found


async def test_created_and_canceled_events_carry_the_full_task(
    api: Api, customer: dict, channel: aio_pika.abc.AbstractChannel
) -> None:
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(EVENTS_EXCHANGE.name, routing_key="task.*")
    received: list[dict[str, Any]] = []
    await collect(queue, received)

    created = await api.post(
        "/v1/task/categorize",
        customer["api_key"],
        json=SEED_TASK_JSON,
        headers={"X-Request-Id": "req-events-1"},
    )
    task_id = created.body["task_id"]
    canceled = await api.post(f"/v1/task/{task_id}/cancel", customer["api_key"])

    def of_task(event_type: str) -> list[dict[str, Any]]:
        return [
            r
            for r in received
            if r["body"]["event_type"] == event_type and r["body"]["task"]["task_id"] == task_id
        ]

    await wait_for(
        lambda: of_task("task.created") and of_task("task.canceled"),
        timeout=15,
        message="task.created and task.canceled events",
    )
    created_event = of_task("task.created")[0]
    assert created_event["body"]["task"] == created.body
    assert created_event["body"]["customer_id"] == customer["customer_id"]
    assert created_event["body"]["schema_version"] == 1
    assert created_event["body"]["request_id"] == "req-events-1"
    assert re.fullmatch(r"[0-9a-f]{32}", created_event["body"]["event_id"])
    message = created_event["message"]
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert message.message_id == created_event["body"]["event_id"]
    assert of_task("task.canceled")[0]["body"]["task"] == canceled.body


async def test_unparseable_command_is_answered_and_dead_lettered(
    channel: aio_pika.abc.AbstractChannel, amqp_url: str
) -> None:
    # Named as a gateway's: the task-store replies only to a reply queue of the sender's.
    replies = await channel.declare_queue(REPLY_QUEUE.for_process("gateway").name, exclusive=True)
    received: list[dict[str, Any]] = []
    await collect(replies, received)
    marker = uuid.uuid4().hex
    exchange = await channel.get_exchange(COMMANDS_EXCHANGE.name)
    await exchange.publish(
        aio_pika.Message(
            b'{"not": "a command", "marker": "' + marker.encode() + b'"}',
            type="task.create",
            reply_to=replies.name,
            correlation_id=marker,
            message_id=marker,
            user_id=broker_user(amqp_url),
        ),
        routing_key="task.create",
    )
    await wait_for(lambda: received, timeout=15, message="an error reply to the poison message")
    assert received[0]["body"]["ok"] is False
    assert received[0]["body"]["error"]["code"] == "invalid"

    assert await wait_for(
        lambda: is_dead_lettered(channel, TASKSTORE_COMMANDS_QUEUE.name, marker),
        timeout=15,
        message="the poison command in the DLQ",
    )


async def taskstore_metric(stack: Stack, name: str, labels: str) -> float:
    async with (
        aiohttp.ClientSession() as session,
        session.get(stack.health_urls["taskstore"] + "/metrics") as response,
    ):
        text = await response.text()
    match = re.search(rf"^{name}\{{{labels}\}} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def test_command_past_its_deadline_is_not_executed(
    api: Api, stack: Stack, customer: dict, channel: aio_pika.abc.AbstractChannel
) -> None:
    labels = 'command="task.create",outcome="expired"'
    before = await taskstore_metric(stack, "humantask_commands_total", labels)
    command = {
        "customer_id": customer["customer_id"],
        "request": {**SEED_TASK_JSON, "unique_id": "late"},
    }
    exchange = await channel.get_exchange(COMMANDS_EXCHANGE.name)
    await exchange.publish(
        aio_pika.Message(
            orjson.dumps(command),
            type="task.create",
            message_id=uuid.uuid4().hex,
            user_id=broker_user(stack.env["AMQP_URL"]),
            headers={DEADLINE_HEADER: int((time.time() - 1) * 1000)},
        ),
        routing_key="task.create",
    )

    async def dropped() -> bool:
        return await taskstore_metric(stack, "humantask_commands_total", labels) > before

    await wait_for(dropped, timeout=15, message="the task-store dropping the late command")
    listed = await api.get("/v1/tasks?unique_id=late", customer["api_key"])
    assert listed.body == []


async def test_503_when_the_taskstore_does_not_answer_and_the_command_never_runs_later(
    stack: Stack, customer: dict
) -> None:
    gateway, url = start_service(
        "humantask-gateway",
        {**stack.env, "RPC_TIMEOUT_SECONDS": "1", "AUTH_CACHE_SECONDS": "300"},
        "GATEWAY_PORT",
    )
    taskstore = stack.processes["taskstore"]
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            api = Api(session, url)
            key = customer["api_key"]
            assert (await api.get("/v1/tasks", key)).status == 200  # credentials now cached

            os.kill(taskstore.pid, signal.SIGSTOP)
            try:
                reply = await api.post(
                    "/v1/task/categorize", key, json={**SEED_TASK_JSON, "unique_id": "never-ran"}
                )
            finally:
                os.kill(taskstore.pid, signal.SIGCONT)
            assert reply.status == 503
            assert reply.headers["Retry-After"].isdigit()
            assert reply.body["status_code"] == 503

            # The task-store is back. Commands are handled in order, so by the time it
            # answers this one it has seen the stale create and dropped it (or the broker
            # did, once its TTL ran out): it never creates the task.
            listed = await api.get("/v1/tasks?unique_id=never-ran", key)
            assert listed.status == 200
            assert listed.body == []
    finally:
        gateway.terminate(timeout=30)
    assert gateway.returncode == 0, gateway.log_tail()


async def test_sigterm_stops_a_taskstore_cleanly(stack: Stack) -> None:
    process, _ = start_service("humantask-taskstore", stack.env, "HEALTH_PORT")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0, process.log_tail()
    assert '"stopped"' in process.log_text()


async def test_notifier_consumes_completion_events_and_dead_letters_poison(
    channel: aio_pika.abc.AbstractChannel,
) -> None:
    exchange = await channel.get_exchange(EVENTS_EXCHANGE.name)
    marker = uuid.uuid4().hex
    await exchange.publish(
        aio_pika.Message(
            b"not json at all", message_id=marker, delivery_mode=aio_pika.DeliveryMode.PERSISTENT
        ),
        routing_key="task.completed",
    )
    assert await wait_for(
        lambda: is_dead_lettered(channel, NOTIFIER_COMPLETIONS_QUEUE.name, marker),
        timeout=15,
        message="the poison event in the DLQ",
    )


def scale_commands(customer_id: str) -> list[Command[Any]]:
    """One of each `/scale/v1` command (docs/reference/contract.md §11), for `customer_id`."""
    task_id, marker = new_task_id(), uuid.uuid4().hex[:8]
    made = [
        CreateScaleTask(customer_id=customer_id, fields=SEED_TASK_JSON, placement=TaskPlacement()),
        GetScaleTask(customer_id=customer_id, task_id=task_id),
        ListScaleTasks(customer_id=customer_id, query=ScaleTaskListQuery()),
        CancelScaleTask(customer_id=customer_id, task_id=task_id),
        SetTaskMetadata(customer_id=customer_id, task_id=task_id, metadata={}),
        ChangeTaskTags(customer_id=customer_id, task_id=task_id, operation="add", tags=["t"]),
        SetTaskUniqueId(customer_id=customer_id, task_id=task_id),
        AuditTask(customer_id=customer_id, task_id=task_id, audit=AuditRequest(accepted=True)),
        CreateProject(
            customer_id=customer_id,
            request=CreateProjectRequest(type="categorization", name=f"p-{marker}"),
        ),
        ListProjects(customer_id=customer_id),
        GetProject(customer_id=customer_id, name=f"p-{marker}"),
        SetProjectParams(
            customer_id=customer_id, name=f"p-{marker}", request=SetProjectParamsRequest()
        ),
        CreateBatch(
            customer_id=customer_id,
            request=CreateBatchRequest(project=f"p-{marker}", name=f"b-{marker}"),
        ),
        FinalizeBatch(customer_id=customer_id, name=f"b-{marker}"),
        GetBatch(customer_id=customer_id, name=f"b-{marker}"),
        GetBatchStatus(customer_id=customer_id, name=f"b-{marker}"),
        ListBatches(customer_id=customer_id, query=BatchListQuery()),
    ]
    assert {type(command) for command in made} == set(SCALE_COMMANDS)
    return made


async def test_scale_commands_reply_only_to_a_reply_queue_of_the_senders(
    stack: Stack, customer: dict, channel: aio_pika.abc.AbstractChannel
) -> None:
    """Every `/scale/v1` command is served by the task-store's one command server, under
    its rule: a `reply_to` that is not a reply queue of the sender's own service gets
    nothing (the command still runs), one that is gets the answer."""
    victim = await channel.declare_queue(f"victim-{uuid.uuid4().hex}", exclusive=True)
    landed: list[dict[str, Any]] = []
    await collect(victim, landed)
    replies = await channel.declare_queue(REPLY_QUEUE.for_process("gateway").name, exclusive=True)
    answered: list[dict[str, Any]] = []
    await collect(replies, answered)
    exchange = await channel.get_exchange(COMMANDS_EXCHANGE.name)
    user = broker_user(stack.env["AMQP_URL"])

    async def send(command: Command[Any], reply_to: str) -> str:
        correlation_id = uuid.uuid4().hex
        await exchange.publish(
            aio_pika.Message(
                command.model_dump_json().encode(),
                type=command.routing_key,
                reply_to=reply_to,
                correlation_id=correlation_id,
                message_id=uuid.uuid4().hex,
                user_id=user,
            ),
            routing_key=command.routing_key,
        )
        return correlation_id

    commands = scale_commands(customer["customer_id"])
    for command in commands:
        labels = f'command="{command.routing_key}",outcome="reply_dropped"'
        before = await taskstore_metric(stack, "humantask_commands_total", labels)
        await send(command, victim.name)

        async def dropped(labels: str = labels, before: float = before) -> bool:
            return await taskstore_metric(stack, "humantask_commands_total", labels) > before

        await wait_for(dropped, timeout=15, message=f"{command.routing_key}'s reply dropped")
    asked = {await send(command, replies.name): command for command in commands}
    await wait_for(lambda: len(answered) == len(commands), timeout=15, message="every answer")
    assert landed == []
    # The commands sent with another queue to reply to ran all the same: the project exists.
    by_command = {type(asked[a["message"].correlation_id]): a["body"] for a in answered}
    listed = by_command[ListProjects]
    assert listed["ok"], listed
    names = [project["name"] for project in listed["result"]["projects"]]
    assert names == [c.request.name for c in commands if isinstance(c, CreateProject)]
