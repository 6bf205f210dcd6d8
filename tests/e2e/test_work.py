"""The worker API end to end (docs/reference/contract.md §6): claims, leases, submit, release,
cancel.
Who may act on which task (expired, canceled, someone else's) is the handlers' logic,
tested against fakes in tests/unit/test_taskstore_handlers.py.

Runs on a stack of its own (see `isolated.py`) with a short lease, so that expiry can
be watched, and a pool that holds only this module's tasks: every test starts and ends
with an empty pool.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import orjson
import pymongo
import pytest

from humantask_shared.core.topology import EVENTS_EXCHANGE
from tests.support.services import wait_for

from .conftest import SEED_TASK_JSON, Api, Stack
from .isolated import api_for, empty_pool, isolated_stack

pytestmark = pytest.mark.e2e

LEASE_SECONDS = 3
WORK_ITEM_FIELDS = {"task_id", "type", "instruction", "params", "lease_expires_at"}
COMPLETED_FIELDS = {
    "task_id",
    "type",
    "instruction",
    "params",
    "status",
    "response",
    "completed_at",
}
VALID_ID = "0123456789abcdef01234567"


@pytest.fixture(scope="module")
def work_stack(mongodb_url: str, test_session_id: str, _containers: Any) -> Iterator[Stack]:
    with isolated_stack(
        "work",
        mongodb_url=mongodb_url,
        session_id=test_session_id,
        containers=_containers,
        WORK_LEASE_SECONDS=LEASE_SECONDS,
    ) as stack:
        yield stack


@pytest.fixture(scope="module")
async def api(work_stack: Stack) -> AsyncIterator[Api]:
    async with api_for(work_stack) as api:
        yield api


@pytest.fixture(scope="module")
def owner(work_stack: Stack) -> dict[str, Any]:
    """The customer of every task in this module's pool."""
    return work_stack.admin("customers", "create", "--name", "work owner")


@pytest.fixture(autouse=True)
async def pool_of_our_own(api: Api, owner: dict[str, Any]) -> AsyncIterator[None]:
    async with empty_pool(api, owner["api_key"]):
        yield


@pytest.fixture
def new_worker(work_stack: Stack) -> Any:
    def create(name: str = "e2e worker") -> str:
        return work_stack.admin("workers", "create", "--name", name)["token"]

    return create


@pytest.fixture
def worker(new_worker: Any) -> str:
    return new_worker()


async def create_task(api: Api, owner: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    reply = await api.post(
        "/v1/task/categorize", owner["api_key"], json={**SEED_TASK_JSON, **overrides}
    )
    assert reply.status == 200, reply
    return reply.body


async def claim(api: Api, token: str) -> Any:
    return await api.post("/v1/work/claim", token)


async def claimed_id(api: Api, token: str) -> str:
    reply = await claim(api, token)
    assert reply.status == 200, reply
    return reply.body["task_id"]


async def submit(api: Api, token: str, task_id: str, category: str = "big") -> Any:
    return await api.post(f"/v1/work/{task_id}/submit", token, json={"category": category})


async def release(api: Api, token: str, task_id: str) -> Any:
    return await api.post(f"/v1/work/{task_id}/release", token)


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- workers and their tokens --------------------------------------------------------------


def test_admin_creates_a_worker_whose_token_is_stored_only_hashed(work_stack: Stack) -> None:
    created = work_stack.admin("workers", "create", "--name", "alice")
    assert set(created) == {"worker_id", "token"}
    token = created["token"]
    assert token.startswith("worker_") and len(token) >= 32

    with pymongo.MongoClient(work_stack.env["MONGODB_URL"]) as client:
        database = client.get_default_database()
        credential = database["credentials"].find_one(
            {"_id": hashlib.sha256(token.encode()).hexdigest()}
        )
        assert credential is not None
        assert credential["role"] == "worker"
        assert credential["principal_id"] == created["worker_id"]
        for collection in database.list_collection_names():
            for document in database[collection].find():
                assert token not in json.dumps(document, default=str), collection


async def test_customer_keys_and_worker_tokens_never_open_each_others_endpoints(
    api: Api, owner: dict[str, Any], worker: str
) -> None:
    task = await create_task(api, owner)
    customer_key = owner["api_key"]
    for method, path in [
        ("POST", "/v1/work/claim"),
        ("POST", f"/v1/work/{task['task_id']}/submit"),
        ("POST", f"/v1/work/{task['task_id']}/release"),
    ]:
        for key in (customer_key, None, "worker_not_a_real_token"):
            reply = await api.request(method, path, key, json={"category": "big"})
            assert reply.status == 401, (method, path, key, reply)
            assert reply.headers["WWW-Authenticate"] == 'Basic realm="humantask"'
            assert reply.body["status_code"] == 401
    for method, path in [
        ("POST", "/v1/task/categorize"),
        ("GET", "/v1/tasks"),
        ("GET", f"/v1/task/{task['task_id']}"),
        ("POST", f"/v1/task/{task['task_id']}/cancel"),
    ]:
        reply = await api.request(method, path, worker, json=SEED_TASK_JSON)
        assert reply.status == 401, (method, path, reply)
        assert reply.body["status_code"] == 401
    # Nothing above touched the task.
    assert (await api.get(f"/v1/task/{task['task_id']}", customer_key)).body == task


# --- claiming ------------------------------------------------------------------------------


async def test_claim_leases_the_oldest_pending_task_in_the_worker_view(
    api: Api, owner: dict[str, Any], worker: str
) -> None:
    first = await create_task(
        api,
        owner,
        metadata={"secret": "customer data"},
        unique_id="order-1",
        callback_url="http://www.example.com/private-callback",
    )
    await create_task(api, owner, attachment="second")

    before = datetime.now(UTC)
    reply = await claim(api, worker)
    assert reply.status == 200, reply
    item = reply.body
    assert set(item) == WORK_ITEM_FIELDS
    assert item["task_id"] == first["task_id"]
    assert item["type"] == "categorization"
    assert item["instruction"] == first["instruction"]
    assert item["params"] == first["params"]
    expires = parse_time(item["lease_expires_at"])
    assert before + timedelta(seconds=LEASE_SECONDS - 1) <= expires
    assert expires <= datetime.now(UTC) + timedelta(seconds=LEASE_SECONDS + 1)
    # Nothing about the customer, however it is looked at.
    raw = json.dumps(item)
    for secret in ("customer data", "order-1", "private-callback", owner["customer_id"]):
        assert secret not in raw


async def test_claim_with_nothing_to_do_is_204(api: Api, worker: str) -> None:
    reply = await claim(api, worker)
    assert reply.status == 204
    assert reply.body is None


async def test_a_worker_holds_one_lease_and_two_workers_never_share_a_task(
    api: Api, owner: dict[str, Any], new_worker: Any
) -> None:
    tasks = [(await create_task(api, owner, attachment=f"item {i}"))["task_id"] for i in range(3)]
    one, two, three, four = (new_worker(f"worker {i}") for i in range(4))

    assert await claimed_id(api, one) == tasks[0]
    # A repeated claim (a page reload) returns the same task and leases no other.
    assert await claimed_id(api, one) == tasks[0]
    assert await claimed_id(api, two) == tasks[1]
    assert await claimed_id(api, one) == tasks[0]
    assert await claimed_id(api, three) == tasks[2]
    assert (await claim(api, four)).status == 204


async def test_an_expired_lease_returns_the_task_to_the_pool(
    api: Api, owner: dict[str, Any], new_worker: Any
) -> None:
    task_id = (await create_task(api, owner))["task_id"]
    slow, quick = new_worker("slow"), new_worker("quick")
    assert await claimed_id(api, slow) == task_id
    assert (await claim(api, quick)).status == 204

    async def claimed_by_quick() -> Any:
        reply = await claim(api, quick)
        return reply.body if reply.status == 200 else None

    item = await wait_for(
        claimed_by_quick,
        timeout=LEASE_SECONDS + 10,
        interval=0.2,
        message="the task back in the pool once the lease expired",
    )
    assert item["task_id"] == task_id

    late = await submit(api, slow, task_id)
    assert late.status == 409, late
    assert (await submit(api, quick, task_id, "small")).status == 200
    done = await api.get(f"/v1/task/{task_id}", owner["api_key"])
    assert done.body["response"] == {"category": "small", "status_code": 200}


# --- submitting ----------------------------------------------------------------------------


async def test_submit_completes_the_task_and_publishes_task_completed(
    api: Api, work_stack: Stack, owner: dict[str, Any], worker: str
) -> None:
    connection = await aio_pika.connect(work_stack.env["AMQP_URL"])
    async with connection:
        channel = await connection.channel()
        events = await channel.declare_queue(exclusive=True)
        await events.bind(EVENTS_EXCHANGE.name, routing_key="task.completed")

        task = await create_task(api, owner, metadata={"batch": 1}, unique_id="submit-1")
        assert await claimed_id(api, worker) == task["task_id"]
        reply = await submit(api, worker, task["task_id"], "small")

        assert reply.status == 200, reply
        assert set(reply.body) == COMPLETED_FIELDS
        assert reply.body["status"] == "completed"
        assert reply.body["response"] == {"category": "small", "status_code": 200}
        assert reply.body["params"] == task["params"]

        customer_view = (await api.get(f"/v1/task/{task['task_id']}", owner["api_key"])).body
        assert customer_view["status"] == "completed"
        assert customer_view["response"] == {"category": "small", "status_code": 200}
        assert customer_view["completed_at"] == reply.body["completed_at"]
        assert customer_view["metadata"] == {"batch": 1}

        message = await wait_for(
            lambda: events.get(fail=False), timeout=15, message="the task.completed event"
        )
        event = orjson.loads(message.body)
        assert event["event_type"] == "task.completed"
        assert event["task"] == customer_view
        assert event["customer_id"] == owner["customer_id"]

    # The lease ended with the task: a claim finds nothing, a second submit is a 409.
    assert (await claim(api, worker)).status == 204
    again = await submit(api, worker, task["task_id"], "small")
    assert again.status == 409
    assert again.body["error"] == (
        f"you do not hold a live lease on task {task['task_id']}: claim a task first"
    )


async def test_submit_takes_a_form_body(api: Api, owner: dict[str, Any], worker: str) -> None:
    task_id = (await create_task(api, owner))["task_id"]
    await claimed_id(api, worker)
    reply = await api.post(f"/v1/work/{task_id}/submit", worker, data={"category": "big"})
    assert reply.status == 200, reply
    assert reply.body["response"]["category"] == "big"


async def test_a_category_the_task_does_not_offer_is_400(
    api: Api, owner: dict[str, Any], worker: str
) -> None:
    task_id = (await create_task(api, owner))["task_id"]
    await claimed_id(api, worker)
    for category in ("medium", "Big", "big "):
        reply = await submit(api, worker, task_id, category)
        assert reply.status == 400, reply
        assert reply.body["error"].startswith("category")
    # The lease is still the worker's.
    assert (await submit(api, worker, task_id, "big")).status == 200


# --- releasing -----------------------------------------------------------------------------


async def test_release_returns_the_task_to_the_pool_at_once(
    api: Api, owner: dict[str, Any], new_worker: Any
) -> None:
    first, second = new_worker("first"), new_worker("second")
    task_id = (await create_task(api, owner))["task_id"]
    assert await claimed_id(api, first) == task_id

    reply = await release(api, first, task_id)
    assert reply.status == 204
    assert reply.body is None
    assert await claimed_id(api, second) == task_id
    # Released is released: the first worker holds nothing now.
    assert (await release(api, first, task_id)).status == 409
    assert (await submit(api, first, task_id)).status == 409


# --- what the task-store answers (the gateway's own answers: tests/unit/test_gateway_http.py)


async def test_an_unknown_task_is_409_like_any_task_not_held(api: Api, worker: str) -> None:
    for action in ("submit", "release"):
        reply = await api.post(f"/v1/work/{VALID_ID}/{action}", worker, json={"category": "big"})
        assert reply.status == 409, (action, reply)
        assert reply.body == {
            "status_code": 409,
            "error": f"you do not hold a live lease on task {VALID_ID}: claim a task first",
        }


async def test_the_services_survived_everything_above(api: Api, work_stack: Stack) -> None:
    assert (await api.get("/readyz")).status == 200
    for process in work_stack.processes.values():
        assert process.running, process.log_tail()
