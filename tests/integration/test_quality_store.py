"""What the database decides for several workers per task, gold and blocking
(docs/reference/contract.md §6, §10): the task-store's handlers on the real repositories,
racing each other. The rules themselves are tested against fakes in
tests/unit/test_quality_handlers.py."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.database import AsyncDatabase

from humantask_shared.core.errors import Conflict
from humantask_shared.core.messages.commands import ClaimWork, CreateTask, SubmitWork
from humantask_shared.core.messages.events import TaskCompleted, WorkerBlocked
from humantask_shared.core.models import CreateTaskRequest, Task, new_task_id
from humantask_shared.core.timeutil import utcnow
from humantask_taskstore import (
    customer_handlers,
    domain,
    quality,
    quality_handlers,
    work_handlers,
)
from humantask_taskstore.bootstrap import prepare_database
from humantask_taskstore.cursors import CursorSigner
from humantask_taskstore.ports import Dependencies, QualitySettings
from humantask_taskstore.repository import (
    AccountRepository,
    BatchRepository,
    PoolRepository,
    ProjectRepository,
    QualityRepository,
    TaskRepository,
    TaskSearch,
    ensure_indexes,
    task_document,
)
from humantask_taskstore.repository.documents import TASKS
from tests.support.fakes import RecordingAnnouncer, RecordingOutbox, RecordingPublisher
from tests.support.services import wait_for

SEED: dict[str, Any] = {
    "callback_url": "http://www.example.com/test_callback",
    "instruction": "Would you say this item is big or small?",
    "attachment_type": "text",
    "attachment": "car",
    "categories": ["big", "small"],
}


@pytest.fixture
async def db(fresh_database: Any) -> AsyncIterator[AsyncDatabase]:
    async for database in fresh_database(ensure_indexes):
        yield database


def scale_ports(db: AsyncDatabase) -> dict[str, Any]:
    """`/scale/v1`'s ports (docs/reference/contract.md §11), on the same database."""
    return {
        "search": TaskSearch(db),
        "projects": ProjectRepository(db),
        "batches": BatchRepository(db),
        "batch_outbox": RecordingOutbox(),
    }


@pytest.fixture
def deps(db: AsyncDatabase) -> Dependencies:
    return Dependencies(
        tasks=TaskRepository(db),
        accounts=AccountRepository(db),
        outbox=RecordingOutbox(),
        announce=RecordingAnnouncer(),
        work_lease_seconds=600,
        pool=PoolRepository(db),
        quality=QualityRepository(db),
        publish=RecordingPublisher(),
        list_tokens=CursorSigner(bytes(32)),
        **scale_ports(db),
    )


async def create(deps: Dependencies, customer_id: str = "cust-a", **params: Any) -> Task:
    request = CreateTaskRequest.model_validate({**SEED, **params})
    return await customer_handlers.create_task(
        CreateTask(customer_id=customer_id, request=request), deps
    )


async def claim(deps: Dependencies, worker: str) -> str | None:
    result = await work_handlers.claim_work(ClaimWork(worker_id=worker), deps)
    return None if result.item is None else result.item.task_id


async def submit(deps: Dependencies, worker: str, task_id: str, category: str) -> Any:
    command = SubmitWork(worker_id=worker, task_id=task_id, category=category)
    return await work_handlers.submit_work(command, deps)


def completions(deps: Dependencies, task_id: str) -> list[TaskCompleted]:
    outbox = deps.outbox
    assert isinstance(outbox, RecordingOutbox)
    return [
        stamped.event
        for written, events in outbox.published
        if written == task_id
        for stamped in events
        if isinstance(stamped.event, TaskCompleted)
    ]


async def started(deps: Dependencies, *workers: str, customer_id: str = "cust-a") -> None:
    for worker in workers:
        await deps.quality.mark_started(customer_id, worker)


async def test_32_workers_claiming_one_max_workers_3_task_get_exactly_3_leases(
    deps: Dependencies,
) -> None:
    task = await create(deps, max_workers=3)
    workers = [f"w{n}" for n in range(32)]
    claimed = await asyncio.gather(*(claim(deps, worker) for worker in workers))
    holders = [worker for worker, got in zip(workers, claimed, strict=True) if got]
    assert len(holders) == 3 and set(claimed) == {task.task_id, None}
    stored = await deps.tasks.get(task.task_id)
    assert stored is not None
    assert sorted(lease.worker_id for lease in stored.leases) == sorted(holders)
    assert stored.free_at == min(lease.expires_at for lease in stored.leases)


async def test_claims_sent_at_once_by_one_worker_return_one_task(deps: Dependencies) -> None:
    tasks = [await create(deps, max_workers=3) for _ in range(3)]
    claimed = await asyncio.gather(*(claim(deps, "alice") for _ in range(12)))
    assert set(claimed) == {tasks[0].task_id}
    stored = await deps.tasks.get(tasks[0].task_id)
    assert stored is not None and [lease.worker_id for lease in stored.leases] == ["alice"]


async def test_a_lease_that_runs_out_gives_its_slot_back(deps: Dependencies) -> None:
    short = replace(deps, work_lease_seconds=0.2)
    task = await create(deps, max_workers=2)
    assert [await claim(short, "a"), await claim(short, "b")] == [task.task_id] * 2
    assert await claim(short, "c") is None
    # As soon as the first lease ends, c's claim takes its slot.
    assert await wait_for(lambda: claim(short, "c"), timeout=10) == task.task_id
    stored = await deps.tasks.get(task.task_id)
    assert stored is not None
    holders = [lease.worker_id for lease in stored.leases]
    assert "c" in holders and "a" not in holders and len(holders) <= 2


async def test_concurrent_submits_complete_a_task_exactly_once(deps: Dependencies) -> None:
    task = await create(deps, max_workers=3, min_workers=3)
    workers = ["a", "b", "c"]
    assert [await claim(deps, w) for w in workers] == [task.task_id] * 3
    answers = await asyncio.gather(
        *(
            submit(deps, w, task.task_id, c)
            for w, c in zip(workers, ["big", "small", "big"], strict=True)
        )
    )
    assert [answer.response.category for answer in answers] == ["big", "small", "big"]
    done = await deps.tasks.get(task.task_id)
    assert done is not None and done.status == "completed" and done.response is not None
    assert done.response.votes == {"big": 2, "small": 1}
    assert sum(done.response.votes.values()) == len(done.counted_answers) == 3
    assert len(completions(deps, task.task_id)) == 1


async def test_submits_racing_a_completion_complete_it_once_and_the_rest_are_refused(
    deps: Dependencies,
) -> None:
    task = await create(deps, max_workers=5, min_workers=1, confidence=0.5)
    workers = [f"w{n}" for n in range(5)]
    assert [await claim(deps, w) for w in workers] == [task.task_id] * 5
    outcomes = await asyncio.gather(
        *(submit(deps, w, task.task_id, "big") for w in workers), return_exceptions=True
    )
    accepted = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, Conflict)]
    assert len(accepted) + len(refused) == 5 and accepted
    done = await deps.tasks.get(task.task_id)
    assert done is not None and done.status == "completed" and done.response is not None
    assert sum(done.response.votes.values()) == len(done.counted_answers)  # type: ignore[union-attr]
    assert len(done.answers) == len(accepted)
    assert len(completions(deps, task.task_id)) == 1


async def test_every_worker_may_hold_the_gold_task_at_once(deps: Dependencies) -> None:
    gold = await create(deps, gold_category="big", callback_url=None)
    await create(deps)
    claimed = await asyncio.gather(*(claim(deps, f"w{n}") for n in range(10)))
    assert claimed == [gold.task_id] * 10
    stored = await deps.tasks.get(gold.task_id)
    assert stored is not None and len(stored.leases) == 10 and stored.free_at is None


async def test_a_block_arriving_while_answers_are_in_flight(deps: Dependencies) -> None:
    """A spammer's answers count on 12 open tasks; honest workers' answers that would
    complete them race the block. Each task ends either completed with the spammer's
    answer counted (its completion landed before the block reached it) or pending with
    it discounted; every completion's votes are its counted answers, each once."""
    tasks = [await create(deps, max_workers=3, min_workers=3) for _ in range(12)]
    await started(deps, "spammer", "a", "b")
    for worker in ("spammer", "a"):
        for task in tasks:
            assert await claim(deps, worker) == task.task_id
            await submit(deps, worker, task.task_id, "small" if worker == "spammer" else "big")
    assert await claim(deps, "b") == tasks[0].task_id

    answered = asyncio.Event()

    async def honest_answers() -> None:
        for n, task in enumerate(tasks):
            if n:
                assert await claim(deps, "b") == task.task_id
            await submit(deps, "b", task.task_id, "big")
            if n == 3:
                answered.set()  # the block starts now, while the next answers go on

    async def block() -> None:
        await answered.wait()
        await deps.quality.block("cust-a", "spammer", utcnow())
        event = WorkerBlocked(
            customer_id="cust-a", worker_id="spammer", gold_answers=3, gold_correct=0, accuracy=0.4
        )
        await quality_handlers.on_worker_blocked(event, deps)

    await asyncio.gather(honest_answers(), block())
    states: Counter[str] = Counter()
    for task in tasks:
        stored = await deps.tasks.get(task.task_id)
        assert stored is not None
        counted = {answer.worker_id for answer in stored.counted_answers}
        if stored.status == "completed":
            assert stored.response is not None and stored.response.votes is not None
            assert counted == {"spammer", "a", "b"}
            assert sum(stored.response.votes.values()) == 3
            assert len(completions(deps, task.task_id)) == 1
            states["completed before the block"] += 1
        else:
            assert counted == {"a", "b"} and stored.answered_by("spammer")
            assert completions(deps, task.task_id) == []
            states["waits for another answer"] += 1
    assert sum(states.values()) == 12
    assert states["completed before the block"] >= 4
    # Once the block has gone round, no open task counts the spammer.
    assert await deps.tasks.open_answered_by("cust-a", "spammer") == []
    # And the spammer gets none of the customer's tasks any more.
    assert await claim(deps, "spammer") is None


async def test_a_redelivered_event_is_counted_once_even_when_heard_at_once(
    deps: Dependencies,
) -> None:
    increments = quality.Increments(workers={"w1": quality.WorkerIncrement(answers=1)})
    applied = await asyncio.gather(
        *(deps.quality.apply_worker("cust-a", "w1", "answer:t1", increments) for _ in range(6))
    )
    assert sum(1 for a in applied if a.written) == 1
    (view,) = await deps.quality.workers_of("cust-a")
    assert view.answers == 1


async def test_a_10000_task_backlog_holds_another_customers_new_task_back_one_claim(
    db: AsyncDatabase, deps: Dependencies
) -> None:
    """The fair pool (docs/reference/contract.md §6): with one customer's 10,000 tasks
    waiting, another customer's new task is served within one claim per customer
    waiting, not after the backlog."""
    now = utcnow()
    backlog = []
    for n in range(10_000):
        record, _ = domain.create_task(
            new_task_id(), "big", CreateTaskRequest.model_validate(SEED), now
        )
        backlog.append(
            task_document(replace(record, created_at=now - timedelta(hours=1, seconds=-n)))
        )
    for start in range(0, len(backlog), 1000):
        await db[TASKS].insert_many(backlog[start : start + 1000], ordered=False)
    await deps.pool.touch(["big"])
    served = [await claim(deps, f"early-{n}") for n in range(3)]
    assert {(await deps.tasks.get(t)).customer_id for t in served if t} == {"big"}  # type: ignore[union-attr]
    new = await create(deps, "small")
    claims = [await claim(deps, f"late-{n}") for n in range(2)]
    assert new.task_id in claims
    # And the backlog is served oldest first meanwhile.
    assert [t for t in served] == [str(doc["_id"]) for doc in backlog[:3]]


class Commands(monitoring.CommandListener):
    """The database commands issued, by name, in order (the shape of a request's work)."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.listening = False

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.listening:
            self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def _database_work_of_a_claim_and_submit(mongodb_url: str, gold: bool) -> list[str]:
    """The commands a started worker's claim and submit send to the database, when the
    claim serves a gold task and when it serves a regular one (GOLD_RATE's draw)."""
    listener = Commands()
    client: AsyncMongoClient[Any] = AsyncMongoClient(
        mongodb_url, event_listeners=[listener], tz_aware=True
    )
    database = client[f"quality_timing_{new_task_id()}"]
    try:
        await ensure_indexes(database)
        deps = Dependencies(
            tasks=TaskRepository(database),
            accounts=AccountRepository(database),
            outbox=RecordingOutbox(),
            announce=RecordingAnnouncer(),
            work_lease_seconds=600,
            pool=PoolRepository(database),
            quality=QualityRepository(database),
            publish=RecordingPublisher(),
            list_tokens=CursorSigner(bytes(32)),
            **scale_ports(database),
            quality_settings=QualitySettings(gold_rate=0.5),
            draw=lambda: 0.1 if gold else 0.9,
        )
        await create(deps, gold_category="big", callback_url=None)
        await create(deps, max_workers=3)
        await started(deps, "a")
        # Another worker first, through both pools: each pool's floor (looked up every
        # half minute, for gold and regular work alike) and the connections are warm.
        for _ in range(2):
            warm = await claim(deps, "warm")
            assert warm is not None
            await submit(deps, "warm", warm, "big")
        listener.listening = True
        task_id = await claim(deps, "a")
        assert task_id is not None
        await submit(deps, "a", task_id, "big")
        listener.listening = False
        stored = await deps.tasks.get(task_id)
        assert stored is not None and stored.is_gold == gold
        return listener.names
    finally:
        await client.drop_database(database.name)
        await client.close()


async def test_a_gold_claim_and_submit_do_the_database_work_of_a_regular_one(
    mongodb_url: str,
) -> None:
    """A worker cannot time gold: the same commands, in the same order, on the path that
    answers it (docs/reference/contract.md §10; the scoring comes later, from the event)."""
    gold = await _database_work_of_a_claim_and_submit(mongodb_url, gold=True)
    regular = await _database_work_of_a_claim_and_submit(mongodb_url, gold=False)
    assert gold == regular, (gold, regular)


async def test_tasks_of_the_version_before_are_moved_into_the_pool_at_start(
    db: AsyncDatabase, deps: Dependencies
) -> None:
    """A pending task written before several workers per task (no `pool`, a lease of the
    old shape) is claimable after the task-store's start-up, its customer waiting."""
    record, _ = domain.create_task(
        new_task_id(), "old-customer", CreateTaskRequest.model_validate(SEED), utcnow()
    )
    old = task_document(record)
    del old["pool"]
    old.update(lease_worker_id="someone", lease_expires_at=utcnow() + timedelta(minutes=5))
    await db[TASKS].insert_one(old)
    assert await claim(deps, "new-worker") is None
    await prepare_database(db)
    await prepare_database(db)  # once is enough, and twice harmless
    assert await claim(deps, "new-worker") == record.task_id
    stored = await db[TASKS].find_one({"_id": old["_id"]})
    assert stored is not None and "lease_worker_id" not in stored
