"""Claims are atomic: many workers at once, one or two task-stores, every task completed
exactly once — none twice, none lost, no task held by two workers.

Each test runs on a stack of its own (see `isolated.py`) whose pool and database hold
only its tasks. The lease is the default (600 s), so no lease expires during a run and
a task claimed by two workers would be a broken claim, not an expiry.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import aiohttp
import orjson
import pytest

from humantask_shared.core.topology import EVENTS_EXCHANGE
from tests.support.services import wait_for

from .conftest import SEED_TASK_JSON, Api, Stack, start_service
from .isolated import api_for, isolated_stack

# Hundreds of tasks, a dozen workers and two task-stores on a 2-core machine: give the
# run room beyond the suite's default timeout.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

TASKS = 200
WORKERS = 12
CATEGORIES = ["red", "green", "blue"]
RUN_DEADLINE_SECONDS = 480


@pytest.fixture
def pool_stack(mongodb_url: str, test_session_id: str, _containers: Any) -> Iterator[Stack]:
    # Under this load on a small machine a request may queue for a while: give it time
    # rather than a 503 (a claim may still answer 503 when too many claim at once).
    with isolated_stack(
        "pool",
        mongodb_url=mongodb_url,
        session_id=test_session_id,
        containers=_containers,
        RPC_TIMEOUT_SECONDS=60,
        # One customer key creates hundreds of tasks as fast as it can: the per-credential
        # rate limit (tested on its own) is not what this test is about.
        RATE_LIMIT_PER_SECOND=0,
        WORKER_RATE_LIMIT_PER_SECOND=0,
        GATEWAY_MAX_IN_FLIGHT_PER_CREDENTIAL=0,
    ) as stack:
        yield stack


@pytest.fixture
async def api(pool_stack: Stack) -> AsyncIterator[Api]:
    async with api_for(pool_stack) as api:
        yield api


@dataclass
class Outcome:
    """What the workers saw."""

    claims: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # task -> workers
    completions: list[tuple[str, str, str]] = field(default_factory=list)  # task, worker, category
    conflicts: list[tuple[str, str]] = field(default_factory=list)  # task, worker
    busy: int = 0  # 503s, retried


async def work_until_empty(api: Api, name: str, token: str, outcome: Outcome) -> None:
    """Claim and submit until the pool is empty; a 503 (busy) is retried."""
    deadline = time.monotonic() + RUN_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        claimed = await api.post("/v1/work/claim", token)
        if claimed.status == 204:
            return
        if claimed.status == 503:
            outcome.busy += 1
            await asyncio.sleep(0.05)
            continue
        assert claimed.status == 200, claimed
        task_id = claimed.body["task_id"]
        outcome.claims[task_id].add(name)
        category = CATEGORIES[int(task_id, 16) % len(CATEGORIES)]
        submitted = await api.post(f"/v1/work/{task_id}/submit", token, json={"category": category})
        if submitted.status == 200:
            outcome.completions.append((task_id, name, category))
        else:
            assert submitted.status == 409, submitted
            outcome.conflicts.append((task_id, name))
    raise AssertionError(f"{name} still working after {RUN_DEADLINE_SECONDS}s")


async def create_tasks(api: Api, key: str, count: int) -> list[str]:
    semaphore = asyncio.Semaphore(8)

    async def one(number: int) -> str:
        async with semaphore:
            reply = await api.post(
                "/v1/task/categorize",
                key,
                json={
                    **SEED_TASK_JSON,
                    "attachment": f"item {number}",
                    "categories": CATEGORIES,
                },
            )
        assert reply.status == 200, reply
        return reply.body["task_id"]

    return list(await asyncio.gather(*(one(n) for n in range(count))))


async def all_tasks(api: Api, key: str) -> dict[str, dict[str, Any]]:
    tasks: dict[str, dict[str, Any]] = {}
    url: str | None = "/v1/tasks?limit=100"
    while url:
        page = await api.get(url, key)
        assert page.status == 200, page
        tasks.update((task["task_id"], task) for task in page.body)
        link = page.headers.get("Link")
        url = link.split(">", 1)[0].lstrip("<") if link else None
    return tasks


async def run_workers(stack: Stack, api: Api) -> None:
    owner = stack.admin("customers", "create", "--name", "pool owner")
    tokens = [
        stack.admin("workers", "create", "--name", f"worker {n}")["token"] for n in range(WORKERS)
    ]
    created = await create_tasks(api, owner["api_key"], TASKS)

    connection = await aio_pika.connect(stack.env["AMQP_URL"])
    async with connection:
        channel = await connection.channel()
        events_queue = await channel.declare_queue(exclusive=True)
        await events_queue.bind(EVENTS_EXCHANGE.name, routing_key="task.completed")
        events: list[dict[str, Any]] = []

        async def on_event(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            events.append(orjson.loads(message.body))

        await events_queue.consume(on_event, no_ack=True)

        # Each worker its own HTTP connection pool, as separate browsers would have.
        outcome = Outcome()
        sessions = [aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) for _ in tokens]
        try:
            await asyncio.gather(
                *(
                    work_until_empty(Api(session, stack.gateway_url), f"worker {n}", token, outcome)
                    for n, (session, token) in enumerate(zip(sessions, tokens, strict=True))
                )
            )
        finally:
            await asyncio.gather(*(session.close() for session in sessions))

        # Every task completed exactly once: none twice, none lost.
        completed = Counter(task_id for task_id, _, _ in outcome.completions)
        assert sorted(completed) == sorted(created), (
            f"lost: {sorted(set(created) - set(completed))}; 503s retried: {outcome.busy}"
        )
        assert [task for task, count in completed.items() if count > 1] == []
        # No task was ever handed to two workers, so no submit was turned away.
        assert {task: workers for task, workers in outcome.claims.items() if len(workers) > 1} == {}
        assert outcome.conflicts == []
        assert sum(1 for _, worker, _ in outcome.completions if worker) == TASKS

        # The customer sees each task completed with the category its worker chose.
        chosen = {task_id: category for task_id, _, category in outcome.completions}
        tasks = await all_tasks(api, owner["api_key"])
        assert set(tasks) == set(created)
        for task_id, task in tasks.items():
            assert task["status"] == "completed", task
            assert task["response"] == {"category": chosen[task_id], "status_code": 200}

        # One task.completed event per task (events are deduplicated on event_id).
        def distinct_events() -> dict[str, set[str]]:
            by_task: dict[str, set[str]] = defaultdict(set)
            for event in events:
                by_task[event["task"]["task_id"]].add(event["event_id"])
            return by_task

        await wait_for(
            lambda: len(distinct_events()) == TASKS,
            timeout=60,
            message=f"task.completed for all {TASKS} tasks",
        )
        assert {task: ids for task, ids in distinct_events().items() if len(ids) != 1} == {}

    assert (await api.post("/v1/work/claim", tokens[0])).status == 204


async def commands_handled(health_url: str, command: str) -> float:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{health_url}/metrics") as response,
    ):
        text = await response.text()
    prefix = f'humantask_commands_total{{command="{command}",outcome="ok"}} '
    return sum(float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix))


async def test_many_workers_complete_every_task_exactly_once(pool_stack: Stack, api: Api) -> None:
    await run_workers(pool_stack, api)


async def test_many_workers_and_two_taskstores_side_by_side(pool_stack: Stack, api: Api) -> None:
    second, second_url = start_service("humantask-taskstore", pool_stack.env, "HEALTH_PORT")
    pool_stack.processes["taskstore-2"] = second
    first_url = pool_stack.health_urls["taskstore-1"]
    before = await commands_handled(first_url, "work.claim")

    await run_workers(pool_stack, api)

    # Both task-stores claimed tasks for workers: the claims really ran side by side.
    assert await commands_handled(first_url, "work.claim") > before
    assert await commands_handled(second_url, "work.claim") > 0
