"""Several workers per task, gold tasks, blocking and the workers view through the real
stack, over HTTP (docs/reference/contract.md §10).

The stack is a module's own (`isolated.py`: its pool holds only these tests' tasks), with
a notifier, so that callbacks are real, and `GOLD_RATE` 0.2, so that a few hundred answers
score enough gold.

The crowd run: 300 regular tasks and 10 gold tasks of three categories, answered by
twelve simulated workers of known accuracies (six right 90% of the time, four 75%, two
always wrong), each worker's answer to each item drawn once, up front
(`tests/support/crowd.py`). The task-store's quality code replayed without the stack
(`bench.quality_replay`) on those same answers predicts an accuracy; the run over HTTP must
reach it, within a tolerance: three standard deviations of the replay's accuracy across
five seeds (each seed another order of answers and other gold items, as the stack's
concurrent workers make another order). Both ask the same answers, so what differs is
only who answers which item and when: the spread between seeds measures exactly that.
Ten gold tasks, so that every worker answers each of them in both (the replay asks each
worker every gold item; at `GOLD_RATE` 0.2 the stack's workers get through ten in the
run, not through thirty): with thirty, the replay's workers would be known from three
times the gold the stack's are, and the replay would predict more than the product
does (0.96 against 0.91 in-process, the same code over the fakes).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from humantask_taskstore import quality
from tests.support.callbacks import ScriptedReceiver, example_receiver
from tests.support.crowd import CATEGORIES, SimulatedWorker, predicted_accuracy, simulated_crowd
from tests.support.services import wait_for

from .conftest import Api, Stack
from .isolated import api_for, isolated_stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

GOLD_RATE = 0.2
RULE = quality.CompletionRule(min_workers=1, max_workers=5, confidence=0.9)
REGULAR, GOLD = 300, 10
WORKERS = [
    *(SimulatedWorker(f"good-{n}", 0.9) for n in range(6)),
    *(SimulatedWorker(f"fair-{n}", 0.75) for n in range(4)),
    *(SimulatedWorker(f"wrong-{n}", 0.0) for n in range(2)),
]
RUN_DEADLINE_SECONDS = 600


@pytest.fixture(scope="module")
def quality_stack(mongodb_url: str, test_session_id: str, _containers: Any) -> Iterator[Stack]:
    with isolated_stack(
        "quality",
        mongodb_url=mongodb_url,
        session_id=test_session_id,
        containers=_containers,
        notifier=True,
        GOLD_RATE=GOLD_RATE,
        RPC_TIMEOUT_SECONDS=60,
        CALLBACK_ALLOW_PRIVATE_NETWORKS="true",
        CALLBACK_RETRY_DELAY_SECONDS=2,
        RATE_LIMIT_PER_SECOND=0,
        WORKER_RATE_LIMIT_PER_SECOND=0,
        GATEWAY_MAX_IN_FLIGHT_PER_CREDENTIAL=0,
    ) as stack:
        yield stack


@pytest.fixture
async def api(quality_stack: Stack) -> AsyncIterator[Api]:
    async with api_for(quality_stack) as api:
        yield api


@pytest.fixture
async def receiver() -> AsyncIterator[ScriptedReceiver]:
    receiver = await ScriptedReceiver().start()
    yield receiver
    await receiver.stop()


def task_body(item: str, **extra: Any) -> dict[str, Any]:
    return {
        "instruction": "Which animal is this?",
        "attachment_type": "text",
        "attachment": item,
        "categories": CATEGORIES,
        **extra,
    }


async def created(api: Api, key: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = await api.post("/v1/task/categorize", key, json=body)
    assert reply.status == 200, reply
    return dict(reply.body)


async def answer(api: Api, token: str, category_of: dict[str, str]) -> str | None:
    """Claim; answer what the worker would for its item. The task id, or None (204). A
    task that others' answers completed meanwhile is no longer the worker's (`409`)."""
    claimed = await api.post("/v1/work/claim", token)
    if claimed.status == 204:
        return None
    assert claimed.status == 200, claimed
    item = claimed.body["params"]["attachment"]
    submitted = await api.post(
        f"/v1/work/{claimed.body['task_id']}/submit",
        token,
        json={"category": category_of[item]},
    )
    if submitted.status == 409:
        return str(claimed.body["task_id"])
    assert submitted.status == 200, submitted
    # A worker sees its own answer, the same shape whatever the task.
    assert submitted.body["response"] == {"category": category_of[item], "status_code": 200}
    return str(claimed.body["task_id"])


async def every_task(api: Api, key: str, status: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    path: str | None = f"/v1/tasks?status={status}&limit=100"
    while path is not None:
        page = await api.get(path, key)
        assert page.status == 200, page
        found += page.body
        link = page.headers.get("Link")
        path = link[1 : link.index(">")] if link else None
    return found


async def test_a_several_worker_task_is_called_back_once_with_its_votes_and_gold_never(
    api: Api, quality_stack: Stack, receiver: ScriptedReceiver
) -> None:
    customer = quality_stack.admin("customers", "create", "--name", "callbacks")
    key = customer["api_key"]
    made = [quality_stack.admin("workers", "create", "--name", f"w{n}") for n in range(3)]
    tokens = [worker["token"] for worker in made]
    gold = await created(api, key, task_body("gold-item", gold_category="cat"))
    task = await created(
        api,
        key,
        task_body("the-item", callback_url=receiver.url("/votes"), max_workers=3, min_workers=3),
    )
    assert (task["min_workers"], task["max_workers"]) == (3, 3) and "confidence" not in task
    served: list[str | None] = []
    for token in tokens:  # each one's first task of the customer is its gold task
        served.append(await answer(api, token, {"gold-item": "cat", "the-item": "dog"}))
        served.append(await answer(api, token, {"gold-item": "cat", "the-item": "dog"}))
    assert served == [gold["task_id"], task["task_id"]] * 3
    (delivery,) = await receiver.wait_for_requests("/votes", 1, timeout=30)
    done = (await api.get(f"/v1/task/{task['task_id']}", key)).body
    assert done["status"] == "completed"
    assert done["response"]["votes"] == {"dog": 3} and done["response"]["category"] == "dog"
    assert 0.5 < done["response"]["confidence"] <= 1
    decoded = example_receiver().decode_form(delivery.body)
    assert decoded["response"]["votes"] == {"dog": "3"}
    assert decoded["response"]["category"] == "dog" and "confidence" in decoded["response"]
    # Gold: pending, shows its gold category, never called back.
    shown = (await api.get(f"/v1/task/{gold['task_id']}", key)).body
    assert shown["status"] == "pending" and shown["gold_category"] == "cat"
    assert (await api.get(f"/v1/task/{gold['task_id']}/callbacks", key)).body == []
    # Nothing identifies a worker, anywhere the customer looks.
    view = (await api.get("/v1/quality/workers", key)).body
    assert len(view) == 3 and all(w["gold_answers"] == 1 and w["gold_correct"] == 1 for w in view)
    for worker in made:
        assert worker["token"] not in str(view) + str(done)
        assert worker["worker_id"] not in str(view) + str(done)
    # One delivery, for good: watch past the retry delay.
    deadline = time.monotonic() + 4
    await wait_for(
        lambda: len(receiver.received("/votes")) > 1 or time.monotonic() >= deadline,
        timeout=10,
        interval=0.1,
    )
    assert len(receiver.received("/votes")) == 1


async def test_a_simulated_crowd_reaches_the_accuracy_the_replay_predicts(
    api: Api, quality_stack: Stack
) -> None:
    crowd = simulated_crowd(REGULAR + GOLD, WORKERS)
    items = list(crowd.truth)
    gold_items, regular_items = items[:GOLD], items[GOLD:]
    predictions = predicted_accuracy(crowd, RULE, GOLD / (REGULAR + GOLD), (1, 2, 3, 4, 5))
    predicted = statistics.mean(predictions)
    tolerance = 3 * statistics.stdev(predictions)

    customer = quality_stack.admin("customers", "create", "--name", "crowd")
    key = customer["api_key"]
    tokens = {
        w.name: quality_stack.admin("workers", "create", "--name", w.name)["token"] for w in WORKERS
    }
    for item in gold_items:
        await created(api, key, task_body(item, gold_category=crowd.truth[item]))
    created_ids: dict[str, str] = {}
    for start in range(0, REGULAR, 20):
        batch = regular_items[start : start + 20]
        made = await asyncio.gather(
            *(
                created(
                    api,
                    key,
                    task_body(
                        item,
                        callback_url="http://127.0.0.1:9/never",
                        max_workers=RULE.max_workers,
                        confidence=RULE.confidence,
                    ),
                )
                for item in batch
            )
        )
        created_ids.update({task["task_id"]: item for task, item in zip(made, batch, strict=True)})

    finished = asyncio.Event()

    async def work(worker: SimulatedWorker) -> None:
        category_of = {item: crowd.answers[(item, worker.name)] for item in crowd.truth}
        while not finished.is_set():
            if await answer(api, tokens[worker.name], category_of) is None:
                await asyncio.sleep(0.2)  # a worker polling an empty pool

    async def watch() -> None:
        deadline = time.monotonic() + RUN_DEADLINE_SECONDS
        while time.monotonic() < deadline:
            if len(await every_task(api, key, "completed")) == REGULAR:
                finished.set()
                return
            await asyncio.sleep(1)
        finished.set()

    await asyncio.gather(watch(), *(work(worker) for worker in WORKERS))
    completed = await every_task(api, key, "completed")
    assert len(completed) == REGULAR, "every regular task completed in time"
    right = [t["response"]["category"] == crowd.truth[created_ids[t["task_id"]]] for t in completed]
    accuracy = sum(right) / len(right)
    assert accuracy >= predicted - tolerance, (accuracy, predictions)
    for task in completed:  # each one completed by the rule
        response = task["response"]
        counted = sum(response["votes"].values())
        assert response["confidence"] >= RULE.confidence or counted == RULE.max_workers

    # The always-wrong workers are blocked, and get none of this customer's tasks.
    # (Gold answers are scored by the task-store's quality consumer, after the answer's
    # reply: on a loaded machine the last block may land a moment after the run ends.)
    async def blocked_workers() -> list[dict[str, Any]] | None:
        view = (await api.get("/v1/quality/workers", key)).body
        blocked = [w for w in view if w["blocked"]]
        return blocked if len(blocked) >= 2 else None

    blocked = await wait_for(
        blocked_workers, timeout=60, interval=0.5, message="the always-wrong workers blocked"
    )
    assert all(w["accuracy"] < 0.7 for w in blocked), blocked
    late = await created(api, key, task_body("late-item", callback_url="http://127.0.0.1:9/x"))
    for wrong in ("wrong-0", "wrong-1"):
        assert (await api.post("/v1/work/claim", tokens[wrong])).status == 204
    # A good worker gets it (after any gold tasks it has not answered yet).
    category_of = {**crowd.truth, "late-item": "cat"}
    served = [await answer(api, tokens["good-0"], category_of) for _ in range(GOLD + 1)]
    assert late["task_id"] in served
