"""Scale's official Python SDK (`scaleapi` 2.18.4, pinned in the test lock) against
`/scale/v1` of a running stack: every method docs/reference/contract.md §11 names, as a
customer switching from Scale would call it, changing only `api_instance_url`.

The stack is the module's own (gateway, task-store, notifier: claims lease from the
global pool) behind an HTTPS front with a CA of its own (`tests/support/tls_front.py`):
the SDK retries a 5xx (and honours `Retry-After`) only over https. The SDK is
synchronous (requests): its calls run in a thread, so that the front, the callback
receiver and the workers here keep answering meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import aio_pika
import orjson
import pytest
import standardwebhooks
from scaleapi import ScaleClient
from scaleapi.batches import BatchStatus
from scaleapi.exceptions import (
    ScaleDuplicateResource,
    ScaleInvalidRequest,
    ScaleResourceNotFound,
    ScaleUnauthorized,
)
from scaleapi.tasks import TaskReviewStatus, TaskStatus, TaskType

from humantask_shared.core.topology import EVENTS_EXCHANGE
from tests.support.callbacks import Answer, ScriptedReceiver
from tests.support.services import wait_for
from tests.support.tls_front import TlsFront

from .conftest import Api, Stack, start_service
from .isolated import api_for, cancel_pending, isolated_stack

pytestmark = pytest.mark.e2e

T = TypeVar("T")

CATEGORIZATION: dict[str, Any] = {
    "callback_url": "http://www.example.com/callback",
    "instruction": "Would you say this item is big or small?",
    "attachment_type": "text",
    "attachment": "car",
    "categories": ["big", "small"],
}
CREATE_PATH = "/scale/v1/task/categorization"
RETRY_DELAY_SECONDS = 2


async def sdk(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """An SDK call, in a thread: it blocks on requests."""
    return await asyncio.to_thread(call, *args, **kwargs)


@pytest.fixture(scope="module")
def scale_stack(mongodb_url: str, test_session_id: str, _containers: Any) -> Iterator[Stack]:
    with isolated_stack(
        "scale",
        mongodb_url=mongodb_url,
        session_id=test_session_id,
        containers=_containers,
        RPC_TIMEOUT_SECONDS=3,
        RATE_LIMIT_PER_SECOND=0,
        CALLBACK_RETRY_DELAY_SECONDS=RETRY_DELAY_SECONDS,
        CALLBACK_TIMEOUT_SECONDS=2,
        CALLBACK_ALLOW_PRIVATE_NETWORKS="true",
    ) as stack:
        notifier, url = start_service("humantask-notifier", stack.env, "HEALTH_PORT")
        stack.processes["notifier"], stack.health_urls["notifier"] = notifier, url
        yield stack


@pytest.fixture(scope="module")
async def front(scale_stack: Stack) -> AsyncIterator[TlsFront]:
    tls = await TlsFront(scale_stack.gateway_url).start()
    yield tls
    await tls.stop()


@pytest.fixture(scope="module")
async def api(scale_stack: Stack) -> AsyncIterator[Api]:
    async with api_for(scale_stack) as session:
        yield session


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[ScriptedReceiver]:
    started = await ScriptedReceiver().start()
    yield started
    await started.stop()


@pytest.fixture
async def customer(scale_stack: Stack, api: Api) -> AsyncIterator[dict[str, Any]]:
    """A new customer; its pending tasks are canceled after the test, so that the
    module's pool holds only the tasks of the test that runs."""
    created = scale_stack.admin("customers", "create", "--name", "scale sdk")
    yield created
    await cancel_pending(api, created["api_key"])


@pytest.fixture(autouse=True)
def _front_ca_trusted(monkeypatch: pytest.MonkeyPatch) -> None:
    """requests prefers REQUESTS_CA_BUNDLE (or CURL_CA_BUNDLE) to the `verify` the SDK
    is given, when either is set: leave the front's CA to `verify`."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


@pytest.fixture
def client(customer: dict[str, Any], front: TlsFront) -> ScaleClient:
    """The switch: Scale's client, pointed at humantask."""
    return ScaleClient(
        customer["api_key"], api_instance_url=front.url("/scale/v1"), verify=front.ca_path
    )


@pytest.fixture(scope="module")
def workers(scale_stack: Stack) -> list[str]:
    return [
        scale_stack.admin("workers", "create", "--name", f"scale worker {n}")["token"]
        for n in range(2)
    ]


async def complete_next(api: Api, token: str, category: str = "big") -> str:
    """The worker claims the oldest task it may answer and submits `category`."""
    claimed = await api.post("/v1/work/claim", token)
    assert claimed.status == 200, claimed
    task_id = str(claimed.body["task_id"])
    submitted = await api.post(f"/v1/work/{task_id}/submit", token, json={"category": category})
    assert submitted.status == 200, submitted
    return task_id


def verify(secret: str, received: Any) -> None:
    standardwebhooks.Webhook(secret).verify(received.body, dict(received.headers), json_parse=False)


# -- tasks ---------------------------------------------------------------------------------


async def test_the_sdk_creates_gets_and_cancels_a_task_with_scales_fields(
    client: ScaleClient, api: Api, customer: dict[str, Any]
) -> None:
    task = await sdk(
        client.create_task,
        TaskType.Categorization,
        **CATEGORIZATION,
        tags=["red", "blue"],
        metadata={"order": 7},
        unique_id="sdk-1",
    )
    assert task.status == "pending" and task.type == "categorization"
    assert task.tags == ["red", "blue"] and task.metadata == {"order": 7}
    assert task.unique_id == "sdk-1" and "updated_at" in task.as_dict()
    assert "project" not in task.as_dict() and "batch" not in task.as_dict()

    fetched = await sdk(client.get_task, task.id)
    assert fetched.as_dict() == task.as_dict()
    # /v1 sees the same task, in the v1 shape: none of Scale's fields.
    seed = await api.get(f"/v1/task/{task.id}", customer["api_key"])
    assert seed.status == 200 and "tags" not in seed.body and "updated_at" not in seed.body
    assert seed.body["unique_id"] == "sdk-1"

    await sdk(client.cancel_task, task.id, True)  # clear_unique_id
    canceled = await sdk(client.get_task, task.id)
    assert canceled.status == "canceled" and "unique_id" not in canceled.as_dict()
    again = await sdk(
        client.create_task, TaskType.Categorization, **CATEGORIZATION, unique_id="sdk-1"
    )
    assert again.id != task.id

    await sdk(fetched.refresh)
    assert fetched.status == "canceled"


async def test_the_sdk_edits_tags_metadata_and_unique_id(client: ScaleClient) -> None:
    task = await sdk(client.create_task, TaskType.Categorization, **CATEGORIZATION, tags=["a"])
    assert (await sdk(client.add_task_tags, task.id, ["b", "a", "c"])).tags == ["a", "b", "c"]
    assert (await sdk(client.delete_task_tags, task.id, ["a", "z"])).tags == ["b", "c"]
    assert (await sdk(client.set_task_tags, task.id, ["only"])).tags == ["only"]
    assert (await sdk(client.set_task_metadata, task.id, {"k": [1, 2]})).metadata == {"k": [1, 2]}

    assert (await sdk(client.update_task_unique_id, task.id, "u-edit")).unique_id == "u-edit"
    other = await sdk(client.create_task, TaskType.Categorization, **CATEGORIZATION)
    with pytest.raises(ScaleDuplicateResource, match="u-edit"):
        await sdk(client.update_task_unique_id, other.id, "u-edit")
    cleared = await sdk(client.clear_task_unique_id, task.id)
    assert "unique_id" not in cleared.as_dict()
    assert (await sdk(client.update_task_unique_id, other.id, "u-edit")).unique_id == "u-edit"

    # The Task object's own methods call the same endpoints.
    await sdk(task.add_tags, ["x"])
    await sdk(task.set_metadata, {"via": "task"})
    await sdk(task.refresh)
    assert task.tags == ["only", "x"] and task.metadata == {"via": "task"}


async def test_errors_come_back_as_the_sdks_exceptions(
    client: ScaleClient, scale_stack: Stack, front: TlsFront
) -> None:
    other = scale_stack.admin("customers", "create", "--name", "someone else")
    theirs = ScaleClient(
        other["api_key"], api_instance_url=front.url("/scale/v1"), verify=front.ca_path
    )
    task = await sdk(theirs.create_task, TaskType.Categorization, **CATEGORIZATION)
    with pytest.raises(ScaleResourceNotFound, match=task.id):
        await sdk(client.get_task, task.id)
    with pytest.raises(ScaleInvalidRequest, match="categories"):
        await sdk(
            client.create_task, TaskType.Categorization, **{**CATEGORIZATION, "categories": ["a"]}
        )
    with pytest.raises(ScaleInvalidRequest, match="project"):
        await sdk(client.create_task, TaskType.Categorization, **CATEGORIZATION, project="nowhere")
    stranger = ScaleClient(
        "live_nobody", api_instance_url=front.url("/scale/v1"), verify=front.ca_path
    )
    with pytest.raises(ScaleUnauthorized):
        await sdk(stranger.get_projects)
    await sdk(client.create_project, "twice", TaskType.Categorization)
    with pytest.raises(ScaleDuplicateResource, match="twice"):
        await sdk(client.create_project, "twice", TaskType.Categorization)
    # Another customer's project and batch are not there at all.
    await sdk(theirs.create_project, "theirs", TaskType.Categorization)
    await sdk(theirs.create_batch, "theirs", "their batch")
    with pytest.raises(ScaleResourceNotFound):
        await sdk(client.get_project, "theirs")
    with pytest.raises(ScaleResourceNotFound):
        await sdk(client.get_batch, "their batch")
    with pytest.raises(ScaleInvalidRequest, match="batch"):
        await sdk(
            client.create_task, TaskType.Categorization, **CATEGORIZATION, batch="their batch"
        )
    await sdk(theirs.cancel_task, task.id)


# -- projects ------------------------------------------------------------------------------


async def test_projects_hold_versions_of_params_that_are_their_tasks_defaults(
    client: ScaleClient,
) -> None:
    defaults = {k: v for k, v in CATEGORIZATION.items() if k != "attachment"}
    project = await sdk(client.create_project, "kittens", TaskType.Categorization, defaults)
    assert (project.name, project.type, project.version) == ("kittens", "categorization", 0)
    assert project.instruction == CATEGORIZATION["instruction"]
    assert project.params["categories"] == ["big", "small"]

    # The project's params fill in what the task leaves out; the task's own win.
    task = await sdk(
        client.create_task,
        TaskType.Categorization,
        project="kittens",
        attachment="a kitten",
        instruction="Big or small kitten?",
    )
    assert task.project == "kittens" and task.params["categories"] == ["big", "small"]
    assert task.instruction == "Big or small kitten?" and task.params["attachment"] == "a kitten"

    updated = await sdk(
        client.update_project,
        "kittens",
        instruction="Is it big?",
        categories=["yes", "no"],
        attachment_type="text",
    )
    assert updated.version == 1 and updated.instruction == "Is it big?"
    assert "callback_url" not in updated.params  # replaced, not merged
    patched = await sdk(
        client.update_project, "kittens", patch=True, callback_url="https://example.com/k"
    )
    assert patched.version == 2 and patched.params["categories"] == ["yes", "no"]
    assert [v["version"] for v in patched.as_dict()["param_history"]] == [0, 1, 2]
    later = await sdk(
        client.create_task, TaskType.Categorization, project="kittens", attachment="x"
    )
    assert later.params["categories"] == ["yes", "no"] and later.instruction == "Is it big?"

    # The quality settings are create parameters too (docs/reference/contract.md §10).
    quality = await sdk(
        client.update_project, "kittens", patch=True, min_workers=2, max_workers=3, confidence=0.8
    )
    assert (quality.params["min_workers"], quality.params["confidence"]) == (2, 0.8)
    with pytest.raises(ScaleInvalidRequest, match="max_workers"):
        await sdk(client.update_project, "kittens", patch=True, max_workers=1)

    assert (await sdk(client.get_project, "kittens")).version == 3
    names = [p.name for p in await sdk(client.get_projects)]
    assert names == ["kittens"]
    assert [p.name for p in await sdk(client.projects)] == names


# -- batches -------------------------------------------------------------------------------


async def test_a_batch_goes_from_staging_to_completed_and_calls_back_once_signed(
    client: ScaleClient,
    api: Api,
    customer: dict[str, Any],
    workers: list[str],
    receiver: ScriptedReceiver,
) -> None:
    await sdk(client.create_project, "birds", TaskType.Categorization, CATEGORIZATION)
    receiver.script("/batch-once", Answer(500), Answer(200))  # the retry delivers it
    batch = await sdk(
        client.create_batch,
        "birds",
        "birds-1",
        callback=receiver.url("/batch-once"),
        metadata={"week": 3},
    )
    assert (batch.name, batch.project, batch.status) == ("birds-1", "birds", "staging")
    assert batch.metadata == {"week": 3}
    tasks = [
        await sdk(
            client.create_task, TaskType.Categorization, batch="birds-1", attachment=f"bird {n}"
        )
        for n in range(3)
    ]
    assert {task.batch for task in tasks} == {"birds-1"} and tasks[0].project == "birds"
    status = await sdk(client.batch_status, "birds-1")
    assert status == {"status": "staging", "pending": 3, "completed": 0, "canceled": 0}

    finalized = await sdk(client.finalize_batch, "birds-1")
    assert finalized.status == "in_progress"
    with pytest.raises(ScaleDuplicateResource, match="staging"):
        await sdk(client.create_task, TaskType.Categorization, batch="birds-1", attachment="late")

    await complete_next(api, workers[0])
    await sdk(client.cancel_task, tasks[2].id)
    await sdk(batch.get_status)
    assert (batch.status, batch.tasks_pending, batch.tasks_completed) == ("in_progress", 1, 1)
    await complete_next(api, workers[0])

    attempts = await receiver.wait_for_requests("/batch-once", 2, timeout=30)
    body = orjson.loads(attempts[1].body)
    assert body["batch"]["name"] == "birds-1" and body["batch"]["status"] == "completed"
    assert body["counts"] == {"pending": 0, "completed": 2, "canceled": 1}
    for attempt in attempts:
        verify(customer["callback_secret"], attempt)
        assert attempt.headers["Content-Type"].startswith("application/json")
    assert attempts[0].headers["webhook-id"] == attempts[1].headers["webhook-id"]
    assert [a.headers["X-Callback-Attempt"] for a in attempts] == ["1", "2"]
    assert (await sdk(client.get_batch, "birds-1")).status == "completed"
    assert await sdk(client.batch_status, "birds-1") == {
        "status": "completed",
        "pending": 0,
        "completed": 2,
        "canceled": 1,
    }
    # Finalizing again changes nothing, and nothing is called back again.
    assert (await sdk(client.finalize_batch, "birds-1")).status == "completed"
    assert len(receiver.received("/batch-once")) == 2


async def test_an_empty_batch_completes_when_finalized_and_batches_page(
    client: ScaleClient, receiver: ScriptedReceiver
) -> None:
    await sdk(client.create_project, "fish", TaskType.Categorization)
    for n in range(5):
        await sdk(client.create_batch, "fish", f"fish-{n}")
    await sdk(client.create_batch, "fish", "fish-called", callback=receiver.url("/empty"))
    await sdk(client.finalize_batch, "fish-called")
    (called,) = await receiver.wait_for_requests("/empty", 1, timeout=30)
    assert orjson.loads(called.body)["counts"] == {"pending": 0, "completed": 0, "canceled": 0}

    page = await sdk(client.batches, project="fish", limit=2)
    assert (page.total, page.limit, page.offset, page.has_more) == (6, 2, 0, True)
    assert [b.name for b in page.docs] == ["fish-called", "fish-4"]  # newest first
    every = [b.name for b in await sdk(lambda: list(client.get_batches(project_name="fish")))]
    assert sorted(every) == sorted([*(f"fish-{n}" for n in range(5)), "fish-called"])
    completed = await sdk(
        lambda: list(client.get_batches(project_name="fish", batch_status=BatchStatus.Completed))
    )
    assert [b.name for b in completed] == ["fish-called"]


# -- audits --------------------------------------------------------------------------------


async def test_a_rejected_task_goes_back_to_other_workers_and_calls_back_again(
    client: ScaleClient,
    api: Api,
    scale_stack: Stack,
    customer: dict[str, Any],
    workers: list[str],
    receiver: ScriptedReceiver,
) -> None:
    task = await sdk(
        client.create_task,
        TaskType.Categorization,
        **{**CATEGORIZATION, "callback_url": receiver.url("/audited"), "callback_format": "json"},
    )
    first, second = workers
    async with completion_events(scale_stack, task.id) as events:
        assert await complete_next(api, first, "big") == task.id
        (delivered,) = await receiver.wait_for_requests("/audited", 1, timeout=30)
        assert delivered.headers["webhook-id"] == task.id
        assert delivered.headers["X-Callback-Delivery"] == "1"

        await sdk(client.audit_task, task.id, False, "the cat is small")
        rejected = await sdk(client.get_task, task.id)
        assert (rejected.status, rejected.customer_review_status) == ("pending", "rejected")
        assert "response" not in rejected.as_dict() and "completed_at" not in rejected.as_dict()
        assert rejected.audits[0]["comments"] == "the cat is small"
        reviewed = await sdk(lambda: client.tasks(customer_review_status="rejected").docs)
        assert [t.id for t in reviewed] == [task.id]

        # The worker who answered may not answer it again; another may.
        assert (await api.post("/v1/work/claim", first)).status == 204
        assert await complete_next(api, second, "small") == task.id
        deliveries = await receiver.wait_for_requests("/audited", 2, timeout=30)
        await wait_for(lambda: len(events) == 2, timeout=30, message="both completion events")
    again = deliveries[1]
    assert again.headers["webhook-id"] == f"{task.id}.2"  # a new message
    assert (again.headers["X-Callback-Attempt"], again.headers["X-Callback-Delivery"]) == ("1", "2")
    verify(customer["callback_secret"], again)
    assert orjson.loads(again.body)["response"]["category"] == "small"

    # The customer asks for it again: delivery 3, the latest completion's message.
    asked = await api.post(f"/v1/task/{task.id}/callbacks/redeliver", customer["api_key"])
    assert (asked.status, asked.body) == (202, {"task_id": task.id, "delivery": 3})
    resent = (await receiver.wait_for_requests("/audited", 3, timeout=30))[2]
    assert resent.headers["webhook-id"] == f"{task.id}.2"
    assert resent.headers["X-Callback-Delivery"] == "3" and resent.body == again.body
    verify(customer["callback_secret"], resent)

    # Both completion events delivered again (a relay, a broker redelivery): nothing more.
    await publish_events_again(scale_stack, events)
    await assert_no_more_requests(receiver, "/audited", 3, 3 * RETRY_DELAY_SECONDS)
    log = await api.get(f"/v1/task/{task.id}/callbacks", customer["api_key"])
    assert [(a["attempt"], a["delivered"], a.get("delivery")) for a in log.body] == [
        (1, True, None),
        (1, True, 2),
        (1, True, 3),
    ]

    await sdk(client.audit_task, task.id, True)
    accepted = await sdk(client.get_task, task.id)
    assert (accepted.status, accepted.customer_review_status) == ("completed", "accepted")
    assert accepted.response["category"] == "small"
    pending = await sdk(client.create_task, TaskType.Categorization, **CATEGORIZATION)
    with pytest.raises(ScaleDuplicateResource, match="only a completed task"):
        await sdk(client.audit_task, pending.id, True)


async def test_a_rejected_three_worker_task_is_answered_by_three_others_and_called_back_again(
    client: ScaleClient,
    api: Api,
    scale_stack: Stack,
    customer: dict[str, Any],
    receiver: ScriptedReceiver,
) -> None:
    """docs/reference/contract.md §10 and §11: a task of a project whose params ask three
    workers; rejected after their three answers, it is pending again, none of those three
    is served it (claim `204`, submit `409`), three other workers complete it, and its
    second completion is called back as delivery 2."""
    defaults = {**CATEGORIZATION, "min_workers": 3, "max_workers": 3}
    await sdk(client.create_project, "three workers", TaskType.Categorization, defaults)
    task = await sdk(
        client.create_task,
        TaskType.Categorization,
        project="three workers",
        callback_url=receiver.url("/three"),
        callback_format="json",
    )
    assert (task.as_dict()["min_workers"], task.as_dict()["max_workers"]) == (3, 3)
    workers = [
        scale_stack.admin("workers", "create", "--name", f"three {n}")["token"] for n in range(6)
    ]
    first, second = workers[:3], workers[3:]
    claimed = [await api.post("/v1/work/claim", token) for token in first]
    assert [reply.body["task_id"] for reply in claimed] == [task.id] * 3  # three slots
    for token in first:
        answered = await api.post(f"/v1/work/{task.id}/submit", token, json={"category": "big"})
        assert answered.status == 200, answered
    (called,) = await receiver.wait_for_requests("/three", 1, timeout=30)
    assert orjson.loads(called.body)["response"]["votes"] == {"big": 3}

    await sdk(client.audit_task, task.id, False, "they are all small")
    rejected = await sdk(client.get_task, task.id)
    assert (rejected.status, rejected.customer_review_status) == ("pending", "rejected")
    for token in first:  # each of the three: nothing to claim, and no answer taken
        assert (await api.post("/v1/work/claim", token)).status == 204
        refused = await api.post(f"/v1/work/{task.id}/submit", token, json={"category": "small"})
        assert refused.status == 409, refused
    for token in second:
        assert await complete_next(api, token, "small") == task.id
    deliveries = await receiver.wait_for_requests("/three", 2, timeout=30)
    again = deliveries[1]
    assert again.headers["webhook-id"] == f"{task.id}.2"
    assert again.headers["X-Callback-Delivery"] == "2"
    verify(customer["callback_secret"], again)
    body = orjson.loads(again.body)
    assert body["response"]["category"] == "small" and body["response"]["votes"] == {"small": 3}
    done = await sdk(client.get_task, task.id)
    assert done.status == "completed" and done.response["category"] == "small"


@asynccontextmanager
async def completion_events(stack: Stack, task_id: str) -> AsyncIterator[list[Any]]:
    """The `task.completed` events of the task, as published (body, id), while inside."""
    received: list[Any] = []
    connection = await aio_pika.connect(stack.env["AMQP_URL"])
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(EVENTS_EXCHANGE.name, routing_key="task.completed")

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            if orjson.loads(message.body)["task"]["task_id"] == task_id:
                received.append((message.body, message.message_id))

        await queue.consume(on_message, no_ack=True)
        yield received


async def publish_events_again(stack: Stack, events: list[Any]) -> None:
    connection = await aio_pika.connect(stack.env["AMQP_URL"])
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(EVENTS_EXCHANGE.name)
        for body, message_id in events:
            message = aio_pika.Message(
                body,
                message_id=message_id,
                type="task.completed",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            )
            await exchange.publish(message, routing_key="task.completed")


async def assert_no_more_requests(
    receiver: ScriptedReceiver, path: str, count: int, seconds: float
) -> None:
    """Watch `path` for `seconds`: it must still have exactly `count` requests."""
    deadline = time.monotonic() + seconds
    await wait_for(
        lambda: len(receiver.received(path)) > count or time.monotonic() >= deadline,
        timeout=seconds + 5,
        interval=0.1,
    )
    assert len(receiver.received(path)) == count, receiver.received(path)


# -- the list ------------------------------------------------------------------------------


async def test_get_tasks_walks_every_page_once_while_tasks_are_created(
    client: ScaleClient,
) -> None:
    await sdk(client.create_project, "paging", TaskType.Categorization, CATEGORIZATION)
    created = [
        (
            await sdk(
                client.create_task, TaskType.Categorization, project="paging", attachment=f"t{n}"
            )
        ).id
        for n in range(25)
    ]

    def walk_while_creating() -> list[str]:
        seen = []
        for number, task in enumerate(client.get_tasks(project_name="paging", limit=10)):
            seen.append(task.id)
            if number in (0, 12):  # while the first and second pages are read
                client.create_task(TaskType.Categorization, project="paging", attachment="new")
        return seen

    walked = await sdk(walk_while_creating)
    assert walked == list(reversed(created))  # newest first, each once, none skipped
    assert await sdk(client.get_tasks_count, project_name="paging") == 27
    first = await sdk(client.tasks, project="paging", limit=10)
    assert (first.total, first.limit, first.offset, first.has_more) == (27, 10, 0, True)
    second = await sdk(client.tasks, project="paging", limit=10, next_token=first.next_token)
    assert (second.total, second.offset) == (27, 10)
    assert not {t.id for t in first.docs} & {t.id for t in second.docs}


async def test_the_list_filters_as_scales_does(
    client: ScaleClient, api: Api, workers: list[str]
) -> None:
    await sdk(client.create_project, "filters", TaskType.Categorization, CATEGORIZATION)
    await sdk(client.create_batch, "filters", "filters-b")
    before = datetime.now(UTC) - timedelta(seconds=1)
    in_batch = await sdk(
        client.create_task, TaskType.Categorization, batch="filters-b", attachment="b", tags=["x"]
    )
    tagged = await sdk(
        client.create_task,
        TaskType.Categorization,
        project="filters",
        attachment="t",
        tags=["x", "y"],
        unique_id="f-1",
    )
    done = await sdk(client.create_task, TaskType.Categorization, project="filters", attachment="d")
    assert await complete_next(api, workers[0]) == in_batch.id
    after_first = datetime.now(UTC)
    assert await complete_next(api, workers[0]) == tagged.id
    assert await complete_next(api, workers[0]) == done.id
    await sdk(client.audit_task, done.id, True)

    def ids(**filters: Any) -> list[str]:
        return [task.id for task in client.get_tasks(project_name="filters", **filters)]

    assert await sdk(ids) == [done.id, tagged.id, in_batch.id]
    assert await sdk(lambda: [t.id for t in client.get_tasks(batch_name="filters-b")]) == [
        in_batch.id
    ]
    assert await sdk(ids, tags="y") == [tagged.id]
    assert await sdk(ids, tags=["x", "y"]) == [tagged.id]
    assert await sdk(ids, tags="x") == [tagged.id, in_batch.id]
    assert await sdk(ids, unique_id=["f-1", "nope"]) == [tagged.id]
    assert await sdk(ids, status=TaskStatus.Completed) == [done.id, tagged.id, in_batch.id]
    assert await sdk(ids, status=TaskStatus.Pending) == []
    assert await sdk(ids, task_type=TaskType.Categorization) == [done.id, tagged.id, in_batch.id]
    assert await sdk(ids, review_status=TaskReviewStatus.Accepted) == [done.id]
    assert await sdk(ids, review_status=[TaskReviewStatus.Accepted, TaskReviewStatus.Rejected]) == [
        done.id
    ]
    sdk_time = "%Y-%m-%d %H:%M:%S.%f"  # the SDK's own format
    assert await sdk(ids, completed_after=after_first.strftime(sdk_time)) == [done.id, tagged.id]
    assert await sdk(ids, completed_before=after_first.strftime(sdk_time)) == [in_batch.id]
    assert await sdk(ids, created_after=before.strftime(sdk_time)) == [
        done.id,
        tagged.id,
        in_batch.id,
    ]
    assert await sdk(ids, created_before=before.strftime(sdk_time)) == []
    with pytest.raises(ScaleInvalidRequest, match="updated_after"):
        await sdk(ids, updated_after=before.strftime(sdk_time))


# -- retries -------------------------------------------------------------------------------


async def test_a_create_whose_answer_was_lost_is_retried_with_its_unique_id_to_one_task(
    client: ScaleClient, front: TlsFront
) -> None:
    """The gateway created the task, the answer never reached the SDK (a 502 from the
    front): the SDK retries, and the same unique_id gives back the same task."""
    front.lose_responses("POST", CREATE_PATH, 1)
    before = len(front.statuses("POST", CREATE_PATH))
    task = await sdk(
        client.create_task, TaskType.Categorization, **CATEGORIZATION, unique_id="lost-1"
    )
    assert front.statuses("POST", CREATE_PATH)[before:] == [502, 200]
    found = await sdk(client.tasks, unique_id="lost-1")
    assert [t.id for t in found.docs] == [task.id] and found.total == 1


async def test_a_create_answered_503_is_retried_by_the_sdk_until_the_task_store_is_back(
    client: ScaleClient, front: TlsFront, scale_stack: Stack
) -> None:
    """A real 503: the task-store is stopped, the gateway gives up waiting for it (its
    RPC_TIMEOUT_SECONDS, `Retry-After: 1`); the SDK retries, the task-store comes back."""
    taskstore = scale_stack.processes["taskstore-1"]
    taskstore.terminate(timeout=30)
    before = len(front.statuses("POST", CREATE_PATH))
    creating = asyncio.create_task(
        sdk(client.create_task, TaskType.Categorization, **CATEGORIZATION, unique_id="down-1")
    )
    try:
        await wait_for(
            lambda: 503 in front.statuses("POST", CREATE_PATH)[before:],
            timeout=30,
            message="a 503 while the task-store is down",
        )
    finally:
        restarted, url = start_service("humantask-taskstore", scale_stack.env, "HEALTH_PORT")
        scale_stack.processes["taskstore-1"], scale_stack.health_urls["taskstore-1"] = (
            restarted,
            url,
        )
    task = await asyncio.wait_for(creating, timeout=60)
    statuses = front.statuses("POST", CREATE_PATH)[before:]
    assert statuses[0] == 503 and statuses[-1] == 200, statuses
    found = await sdk(client.tasks, unique_id="down-1")
    assert [t.id for t in found.docs] == [task.id]
