"""Several workers per task, gold tasks, blocking, the fair pool and the customer's view of
its workers (docs/reference/contract.md §6 and §10), through the task-store's handlers over the
in-memory fakes (tests/support/fakes.py). `World.hear` delivers what the quality queue
carries. What the database decides under races is in
tests/integration/test_quality_store.py."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from humantask_shared.core.errors import NotFound
from humantask_shared.core.messages.commands import Account, SetCustomerWeight
from humantask_shared.core.messages.events import (
    TaskAnswered,
    TaskCompleted,
    WorkerBlocked,
    WorkerScored,
)
from humantask_shared.core.timeutil import utcnow
from humantask_taskstore import account_handlers
from humantask_taskstore.ports import QualitySettings
from humantask_taskstore.quality_handlers import pseudonym
from tests.support.taskstore_world import World

GOLD: dict[str, Any] = {"gold_category": "big", "callback_url": None}


@pytest.fixture
def world() -> World:
    return World()


async def started(world: World, worker: str, customer: str = "cust-a") -> None:
    """The worker has had its first task of the customer (its first gold is behind it)."""
    await world.quality.mark_started(customer, worker)


# -- several workers -------------------------------------------------------------------------


async def test_several_workers_lease_one_task_up_to_max_workers(world: World) -> None:
    task = await world.create(max_workers=3)
    later = await world.create()
    assert [await world.claim(w) for w in ("a", "b", "c")] == [task.task_id] * 3
    assert await world.claim("d") == later.task_id  # the first is full
    assert await world.claim("e") is None
    stored = world.tasks.records[task.task_id]
    assert sorted(lease.worker_id for lease in stored.leases) == ["a", "b", "c"]


async def test_each_answer_counts_once_and_the_task_completes_with_its_votes(
    world: World,
) -> None:
    task = await world.create(max_workers=3, confidence=0.99)
    for worker, category in (("a", "big"), ("b", "small"), ("c", "big")):
        assert await world.claim(worker) == task.task_id
        seen = await world.submit(worker, task.task_id, category)
        # Each worker sees its own answer, whatever the others said or the task decided.
        assert seen.response.category == category and seen.response.votes is None
    done = await world.get(task.task_id)
    assert done.status == "completed" and done.response is not None
    assert done.response.votes == {"big": 2, "small": 1} and done.response.category == "big"
    assert done.response.confidence is not None and 0.5 < done.response.confidence < 0.99
    assert world.outbox.event_types().count("task.completed") == 1
    assert world.outbox.event_types().count("task.answered") == 3


async def test_a_worker_is_never_served_a_task_it_answered(world: World) -> None:
    first = await world.create(max_workers=3)
    second = await world.create(max_workers=3)
    assert await world.answer("a") == first.task_id
    assert await world.answer("a") == second.task_id
    assert await world.claim("a") is None
    assert await world.claim("b") == first.task_id


async def test_a_lease_that_ran_out_gives_its_slot_to_the_next_worker(world: World) -> None:
    task = await world.create(max_workers=2)
    past = utcnow() - timedelta(hours=1)
    for worker in ("a", "b"):
        leased = await world.tasks.lease_oldest(
            worker, "cust-a", "work", past, past + timedelta(seconds=1)
        )
        assert leased is not None
    assert await world.claim("c") == task.task_id
    assert await world.claim("d") == task.task_id
    # a's claim drops its lease that ran out, and the task has no free slot for it.
    assert await world.claim("a") is None


# -- the fair pool ---------------------------------------------------------------------------


async def test_a_backlog_holds_another_customers_new_task_back_one_claim_at_most(
    world: World,
) -> None:
    for _ in range(50):
        await world.create("big-customer")
    served = [
        world.tasks.records[t].customer_id
        for t in [await world.claim(f"w{n}") for n in range(5)]
        if t
    ]
    assert served == ["big-customer"] * 5
    newcomer = await world.create("small-customer")
    claims = [await world.claim(f"x{n}") for n in range(2)]
    assert newcomer.task_id in claims


async def test_customers_are_served_in_proportion_to_their_weights(world: World) -> None:
    for customer in ("heavy", "light"):
        world.accounts.customers[customer] = Account(
            role="customer", principal_id=customer, name=customer, created_at=utcnow()
        )
    for _ in range(40):
        await world.create("heavy")
        await world.create("light")
    await account_handlers.set_customer_weight(
        SetCustomerWeight(customer_id="heavy", weight=3), world.deps
    )
    served = Counter(
        world.tasks.records[task_id].customer_id
        for task_id in [await world.claim(f"w{n}") for n in range(40)]
        if task_id is not None
    )
    assert served == {"heavy": 30, "light": 10}


async def test_within_a_customer_the_oldest_task_first(world: World) -> None:
    tasks = [await world.create() for _ in range(4)]
    assert [await world.claim(f"w{n}") for n in range(4)] == [t.task_id for t in tasks]


async def test_a_weight_is_set_only_for_a_customer_that_exists(world: World) -> None:
    with pytest.raises(NotFound):
        await account_handlers.set_customer_weight(
            SetCustomerWeight(customer_id="nobody", weight=2), world.deps
        )


async def test_a_customer_with_nothing_left_leaves_the_pool_until_its_next_task(
    world: World,
) -> None:
    task = await world.create()
    assert await world.answer("a") == task.task_id
    assert await world.claim("b") is None
    assert world.pool.active == {"cust-a": False}
    again = await world.create()
    assert await world.claim("b") == again.task_id


# -- gold ------------------------------------------------------------------------------------


async def test_a_workers_first_task_of_a_customer_is_gold_then_regular(world: World) -> None:
    gold = await world.create(**GOLD)
    regular = [await world.create() for _ in range(3)]
    assert await world.answer("a", "small") == gold.task_id
    assert await world.answer("a") == regular[0].task_id
    assert await world.answer("a") == regular[1].task_id
    # The gold task stays pending, shows its gold category, and is nobody's completion.
    shown = await world.get(gold.task_id)
    assert shown.status == "pending" and shown.gold_category == "big"
    assert shown.callback_url is None
    assert "task.completed" not in [
        e.event.routing_key
        for t, events in world.outbox.published
        if t == gold.task_id
        for e in events
    ]


async def test_after_the_first_a_share_of_claims_serve_gold_each_once(world: World) -> None:
    golds = [await world.create(**GOLD) for _ in range(2)]
    regular = [await world.create() for _ in range(4)]
    await started(world, "a")
    world.settings = QualitySettings(gold_rate=0.5)
    world.draws = [0.9, 0.1, 0.1, 0.1]  # work, gold, gold, gold (none left: work)
    served = [await world.answer("a") for _ in range(4)]
    assert served == [regular[0].task_id, golds[0].task_id, golds[1].task_id, regular[1].task_id]


async def test_no_gold_is_served_without_regular_work_of_its_customer(world: World) -> None:
    await world.create(**GOLD)
    assert await world.claim("a") is None


async def test_gold_is_not_served_once_its_customers_work_is_done(world: World) -> None:
    """A customer whose last regular task left the pool (completed or canceled) leaves it
    when the quality queue hears so: its gold tasks wait for its next regular task."""
    await world.create(**GOLD)
    done = await world.create()
    canceled = await world.create()
    await started(world, "a")
    assert await world.answer("a") == done.task_id
    await world.cancel(canceled.task_id)
    await world.hear()
    assert world.pool.active == {"cust-a": False}
    assert await world.claim("newcomer") is None
    later = await world.create()
    assert await world.claim("newcomer") != later.task_id  # its gold first, now


async def test_a_gold_answer_is_scored_once(world: World) -> None:
    gold = await world.create(**GOLD)
    await world.create()
    await world.answer("a", "big")
    await world.hear()
    await world.hear()  # nothing twice
    scored = world.publisher.of(WorkerScored)
    assert [(s.correct, s.gold_answers, s.gold_correct) for s in scored] == [(True, 1, 1)]
    (view,) = await world.workers_view()
    assert (view.answers, view.gold_answers, view.gold_correct, view.blocked) == (1, 1, 1, False)
    assert view.accuracy == pytest.approx(0.8)  # Beta(3, 1) after one right: 4 / 5
    # A redelivered answer changes nothing.
    (answered,) = [
        e.event
        for t, events in world.outbox.published
        if t == gold.task_id
        for e in events
        if isinstance(e.event, TaskAnswered)
    ]
    from humantask_taskstore.quality_handlers import on_task_answered

    await on_task_answered(answered, world.deps)
    assert (await world.workers_view())[0].gold_answers == 1


# -- blocking ---------------------------------------------------------------------------------


async def test_three_wrong_gold_answers_block_a_worker_for_that_customer_only(
    world: World,
) -> None:
    for _ in range(3):
        await world.create(**GOLD)
    regular = await world.create(max_workers=3)
    world.settings = QualitySettings(gold_rate=1.0)
    world.draws = [0.0] * 10
    for _ in range(3):
        await world.answer("spammer", "small")
        await world.hear()
    assert [b.worker_id for b in world.publisher.of(WorkerBlocked)] == ["spammer"]
    (view,) = await world.workers_view()
    assert view.blocked and view.gold_answers == 3 and view.gold_correct == 0
    # None of that customer's tasks any more; another customer's, yes.
    other = await world.create("cust-b")
    assert await world.claim("spammer") == other.task_id
    world.settings = QualitySettings(gold_rate=0.0)
    await started(world, "honest")
    assert await world.claim("honest") == regular.task_id


async def test_a_block_discounts_the_workers_answers_on_open_tasks(world: World) -> None:
    task = await world.create(max_workers=3, min_workers=3)
    await world.answer("spammer", "small")
    await world.answer("honest", "big")
    await world.quality.block("cust-a", "spammer", utcnow())
    await world.deps.publish(
        WorkerBlocked(
            customer_id="cust-a", worker_id="spammer", gold_answers=3, gold_correct=0, accuracy=0.4
        )
    )
    await world.hear()
    stored = world.tasks.records[task.task_id]
    assert [a.worker_id for a in stored.counted_answers] == ["honest"]
    # It waits for two more answers now.
    await world.answer("c", "big")
    assert (await world.get(task.task_id)).status == "pending"
    await world.answer("d", "big")
    done = await world.get(task.task_id)
    assert done.status == "completed" and done.response is not None
    assert done.response.votes == {"big": 3}


async def test_a_block_arriving_while_an_answer_is_in_flight_keeps_it_from_counting(
    world: World,
) -> None:
    """The worker holds the lease when it is blocked; its submit is accepted (it learns
    nothing) and does not count; the task waits for another worker."""
    task = await world.create()
    assert await world.claim("spammer") == task.task_id
    await world.quality.mark_started("cust-a", "spammer")
    await world.quality.block("cust-a", "spammer", utcnow())
    seen = await world.submit("spammer", task.task_id, "small")
    assert seen.status == "completed" and seen.response.category == "small"
    stored = world.tasks.records[task.task_id]
    assert stored.status == "pending" and stored.counted_answers == []
    assert await world.answer("honest", "big") == task.task_id
    assert (await world.get(task.task_id)).response.category == "big"  # type: ignore[union-attr]


# -- learning from completions ---------------------------------------------------------------


async def test_a_completion_teaches_its_workers_once(world: World) -> None:
    task = await world.create(max_workers=2, min_workers=2)
    await world.answer("a", "big")
    await world.answer("b", "big")
    await world.hear()
    (completed,) = [
        e.event
        for t, events in world.outbox.published
        if t == task.task_id
        for e in events
        if isinstance(e.event, TaskCompleted)
    ]
    from humantask_taskstore.quality_handlers import on_task_completed

    await on_task_completed(completed, world.deps)  # redelivered
    a = world.quality.workers[("cust-a", "a")].state
    assert a.answers == 1 and sum(a.row_totals.values()) == pytest.approx(1.0)
    assert sum(world.quality.customers["cust-a"].classes.values()) == pytest.approx(1.0)


# -- the customer's view ---------------------------------------------------------------------


async def test_the_view_shows_pseudonyms_stable_per_customer_and_different_across(
    world: World,
) -> None:
    await world.create("cust-a")
    await world.create("cust-b")
    await world.answer("worker-1")
    await world.answer("worker-1")
    await world.hear()
    (a,) = await world.workers_view("cust-a")
    (b,) = await world.workers_view("cust-b")
    assert a.worker != b.worker and "worker-1" not in (a.worker + b.worker)
    assert (await world.workers_view("cust-a"))[0].worker == a.worker
    assert a.worker == pseudonym(world.quality.keys["cust-a"], "worker-1")
    assert await world.workers_view("cust-c") == []


# -- a worker cannot tell gold by what the task-store does -----------------------------------


class Calls:
    """Wraps an adapter: records the name of each method called."""

    def __init__(self, inner: Any, log: list[str], prefix: str) -> None:
        self._inner, self._log, self._prefix = inner, log, prefix

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if not callable(attribute):
            return attribute

        async def call(*args: Any, **kwargs: Any) -> Any:
            self._log.append(f"{self._prefix}.{name}")
            return await attribute(*args, **kwargs)

        return call


async def _calls_of_a_claim_and_submit(gold: bool) -> list[str]:
    world = World()
    await world.create(**GOLD) if gold else None
    await world.create(max_workers=3)
    await started(world, "warm")
    await world.create(max_workers=3)
    await started(world, "a")
    world.settings = QualitySettings(gold_rate=0.5)
    world.draws = [0.1 if gold else 0.9]
    log: list[str] = []
    world.tasks = Calls(world.tasks, log, "tasks")  # type: ignore[assignment]
    world.quality = Calls(world.quality, log, "quality")  # type: ignore[assignment]
    task_id = await world.claim("a")
    assert task_id is not None
    assert (world.tasks._inner.records[task_id].gold_category is not None) == gold  # type: ignore[attr-defined]
    await world.submit("a", task_id, "big")
    return log


async def test_gold_and_regular_work_make_the_same_calls_on_the_reply_path() -> None:
    assert await _calls_of_a_claim_and_submit(True) == await _calls_of_a_claim_and_submit(False)
