"""Each fake of tests/support/fakes.py keeps its real adapter's promises.

The handlers' unit tests run against the fakes; these cases run against both, the fake
and the real adapter (on the real database, broker or HTTP server), through the port
the handlers see. A case that passes for one and fails for the other is a fake that
drifted from its adapter (or the reverse): mend whichever broke the promise the port
states.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import orjson
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from pymongo.errors import DuplicateKeyError

from humantask_notifier import domain as notifier_domain
from humantask_notifier.domain import Attempt, Delivery
from humantask_notifier.ports import Deliveries, Retries, Sender, SendResult, SigningKeys
from humantask_notifier.repository import DeliveryRepository
from humantask_notifier.repository import ensure_indexes as ensure_notifier_indexes
from humantask_notifier.retries import RetryScheduler
from humantask_notifier.sender import CallbackSender, create_session
from humantask_notifier.signing_keys import CallbackSecrets
from humantask_shared.core.broker_access import BrokerIdentities
from humantask_shared.core.errors import QuotaExceeded, StorageQuotaExceeded, Unavailable
from humantask_shared.core.messages.commands import GetCallbackSecret
from humantask_shared.core.messages.events import BatchCompleted, CredentialChanged, TaskCompleted
from humantask_shared.core.messages.retries import RedeliveryDue, RetryDue
from humantask_shared.core.models import (
    CreateTaskRequest,
    Task,
    TaskListQuery,
    TaskResponse,
    new_task_id,
)
from humantask_shared.core.scale_models import (
    AuditRequest,
    Batch,
    BatchCounts,
    BatchListQuery,
    CreateBatchRequest,
    CreateProjectRequest,
    ProjectParams,
    ScaleTaskListQuery,
    TaskPlacement,
)
from humantask_shared.core.topology import EVENTS_EXCHANGE, Exchange, Queue
from humantask_shared.runtime.broker import open_channel
from humantask_shared.runtime.command_client import CommandClient
from humantask_shared.runtime.command_server import CommandServer
from humantask_shared.runtime.consumer import Consumer
from humantask_shared.runtime.declaring import declare, declare_exchange
from humantask_shared.runtime.publishing import publish_event, stamp_all
from humantask_taskstore import audit, domain, quality, task_edits
from humantask_taskstore import batches as batch_domain
from humantask_taskstore import projects as project_domain
from humantask_taskstore.cursors import CursorSigner
from humantask_taskstore.customer_handlers import get_callback_secret
from humantask_taskstore.domain import TaskRecord
from humantask_taskstore.outbox import OutboxPublisher
from humantask_taskstore.ports import (
    Accounts,
    AnnounceCredentialChange,
    Batches,
    BatchExists,
    Dependencies,
    Outbox,
    Pool,
    ProjectExists,
    Projects,
    Quality,
    TaskExists,
    Tasks,
    TaskSearch,
    WorkerHoldsLease,
)
from humantask_taskstore.repository import (
    AccountRepository,
    BatchRepository,
    OutboxStore,
    PoolRepository,
    ProjectRepository,
    QualityRepository,
    TaskRepository,
    ensure_indexes,
)
from humantask_taskstore.repository import TaskSearch as RealTaskSearch
from humantask_taskstore.repository.documents import task_bytes
from tests.support.callbacks import Answer, ScriptedReceiver
from tests.support.fakes import (
    FakeAccounts,
    FakeBatches,
    FakeDeliveries,
    FakePool,
    FakeProjects,
    FakeQuality,
    FakeRetries,
    FakeSender,
    FakeSigningKeys,
    FakeTasks,
    FakeTaskSearch,
    RecordingAnnouncer,
    RecordingOutbox,
    RecordingPublisher,
)
from tests.support.services import wait_for

WAIT = 15
T0 = datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)  # MongoDB keeps milliseconds
REQUEST: dict[str, Any] = {
    "callback_url": "http://www.example.com/test_callback",
    "instruction": "Would you say this item is big or small?",
    "attachment_type": "text",
    "attachment": "car",
    "categories": ["big", "small"],
}

implementations = pytest.mark.parametrize("kind", ["fake", "real"])


def unique(prefix: str) -> str:
    return f"test.{prefix}.{uuid.uuid4().hex}"


# -- the task-store: tasks ------------------------------------------------------------------


@pytest.fixture
async def tasks(kind: str, fresh_database: Any) -> AsyncIterator[Tasks]:
    if kind == "fake":
        yield FakeTasks()
        return
    async for db in fresh_database(ensure_indexes):
        yield TaskRepository(db)


def new_task(
    customer_id: str = "cust-a",
    created_at: datetime = T0,
    task_id: str | None = None,
    **request: Any,
) -> tuple[TaskRecord, list[Any]]:
    record, events = domain.create_task(
        task_id or new_task_id(),
        customer_id,
        CreateTaskRequest.model_validate({**REQUEST, **request}),
        created_at,
    )
    return record, stamp_all(events, created_at)


async def added(tasks: Tasks, **task: Any) -> TaskRecord:
    record, events = new_task(**task)
    await tasks.add(record, events, record.created_at)
    return record


@implementations
async def test_a_task_is_found_by_its_id_and_only_for_its_customer(tasks: Tasks) -> None:
    record = await added(tasks)
    assert await tasks.get(record.task_id) == record
    assert await tasks.get(record.task_id, "cust-a") == record
    assert await tasks.get(record.task_id, "cust-b") is None
    assert await tasks.get(new_task_id()) is None
    assert await tasks.get("not a task id") is None


@implementations
async def test_a_taken_task_id_or_unique_id_is_refused_with_the_task_that_has_it(
    tasks: Tasks,
) -> None:
    first = await added(tasks, unique_id="order-1")
    again, events = new_task(task_id=first.task_id)
    with pytest.raises(TaskExists) as same_id:
        await tasks.add(again, events, T0)
    assert same_id.value.existing == first
    other, events = new_task(unique_id="order-1")
    with pytest.raises(TaskExists) as same_unique_id:
        await tasks.add(other, events, T0)
    assert same_unique_id.value.existing == first
    # Another customer's unique_id is its own.
    await added(tasks, customer_id="cust-b", unique_id="order-1")


@implementations
async def test_a_save_lands_only_on_the_version_it_was_read_at(tasks: Tasks) -> None:
    record = await added(tasks)
    canceled, raised = domain.cancel_task(record, T0 + timedelta(minutes=1))
    saved = await tasks.save(canceled, stamp_all(raised, T0), T0)
    assert saved is not None and saved.version == record.version + 1
    assert saved.status == "canceled"
    assert await tasks.get(record.task_id) == saved
    # Decided on the version before: another writer got there first.
    assert await tasks.save(canceled, [], T0) is None
    assert await tasks.get(record.task_id) == saved


async def claim(
    tasks: Tasks, worker: str, now: datetime, until: datetime, customer: str = "cust-a"
) -> TaskRecord | None:
    """A claim of one customer's regular work, as the claim handler makes it."""
    held = await tasks.held_lease(worker, now)
    if held is not None:
        return held
    return await tasks.lease_oldest(worker, customer, "work", now, until)


@implementations
async def test_claims_lease_the_oldest_pending_task_one_per_worker(tasks: Tasks) -> None:
    now = T0 + timedelta(hours=1)
    newer = await added(tasks, created_at=T0 + timedelta(minutes=2))
    oldest = await added(tasks, created_at=T0)
    canceled_record = await added(tasks, created_at=T0 - timedelta(minutes=1))
    canceled, raised = domain.cancel_task(canceled_record, now)
    assert await tasks.save(canceled, stamp_all(raised, now), now) is not None
    await added(tasks, customer_id="cust-b", created_at=T0 - timedelta(minutes=5))
    until = now + timedelta(minutes=10)

    alice = await claim(tasks, "alice", now, until)
    assert alice is not None and alice.task_id == oldest.task_id
    assert alice.leases == (domain.Lease("alice", until),) and alice.free_at == until
    again = await claim(tasks, "alice", now, until + timedelta(minutes=1))  # a reload
    assert again is not None and again.task_id == oldest.task_id
    bob = await claim(tasks, "bob", now, until)
    assert bob is not None and bob.task_id == newer.task_id
    assert await claim(tasks, "carol", now, until) is None  # cust-a's pool is empty
    # Alice's lease runs out: the task is claimable again, by anyone.
    later = until + timedelta(minutes=5)
    carol = await claim(tasks, "carol", later, later + timedelta(minutes=10))
    assert carol is not None and carol.task_id == oldest.task_id
    assert [lease.worker_id for lease in carol.leases] == ["carol"]
    # Alice's own look drops her lease that ran out (it would keep her from another).
    assert await tasks.held_lease("alice", later) is None


@implementations
async def test_a_task_takes_leases_up_to_its_free_slots_never_twice_one_worker(
    tasks: Tasks,
) -> None:
    now = T0 + timedelta(hours=1)
    until = now + timedelta(minutes=10)
    several = await added(tasks, created_at=T0, max_workers=2)
    single = await added(tasks, created_at=T0 + timedelta(seconds=1))
    a = await tasks.lease_oldest("a", "cust-a", "work", now, until)
    b = await tasks.lease_oldest("b", "cust-a", "work", now, until + timedelta(seconds=1))
    assert a is not None and b is not None and a.task_id == b.task_id == several.task_id
    assert b.free_at == until  # full: free when a's lease ends
    c = await tasks.lease_oldest("c", "cust-a", "work", now, until)
    assert c is not None and c.task_id == single.task_id
    # A worker with a lease leases nothing else (the unique lease index).
    await added(tasks, created_at=T0 + timedelta(seconds=2))
    with pytest.raises(WorkerHoldsLease):
        await tasks.lease_oldest("a", "cust-a", "work", now, until)
    # Answered: the worker is not served that task again.
    current = await tasks.get(several.task_id)
    assert current is not None
    answered, raised = domain.submit_work(current, "a", "big", now)
    saved = await tasks.save(answered, stamp_all(raised, now), now)
    assert saved is not None and saved.answered_by("a")
    later = until + timedelta(seconds=5)  # every lease ran out
    assert await tasks.held_lease("a", later) is None
    assert (
        await tasks.lease_oldest("a", "cust-a", "work", later, later + timedelta(minutes=1))
        is not None
    )


@implementations
async def test_an_answer_lands_whatever_leases_others_took_but_not_after_another_answer(
    tasks: Tasks,
) -> None:
    now = T0 + timedelta(hours=1)
    until = now + timedelta(minutes=10)
    task = await added(tasks, created_at=T0, max_workers=3, min_workers=3)
    for worker in ("a", "b"):
        assert await tasks.lease_oldest(worker, "cust-a", "work", now, until) is not None
    read_by_a = await tasks.get(task.task_id)
    read_by_b = await tasks.get(task.task_id)
    assert read_by_a is not None and read_by_b is not None
    # c leases it after a and b read it: their answers are not spoiled.
    assert await tasks.lease_oldest("c", "cust-a", "work", now, until) is not None
    answered, raised = domain.submit_work(read_by_a, "a", "big", now)
    saved = await tasks.save_answer(read_by_a, answered, "a", stamp_all(raised, now), now)
    assert saved is not None and saved.version == read_by_a.version + 2
    assert sorted(x.worker_id for x in saved.leases) == ["b", "c"]
    assert saved.free_at == until and saved.answered_by("a")
    # b read the answers before a's landed: decided on stale answers, refused.
    late, raised = domain.submit_work(read_by_b, "b", "small", now)
    assert await tasks.save_answer(read_by_b, late, "b", stamp_all(raised, now), now) is None
    # Read again, it lands.
    fresh = await tasks.get(task.task_id)
    assert fresh is not None
    again, raised = domain.submit_work(fresh, "b", "small", now)
    stored = await tasks.save_answer(fresh, again, "b", stamp_all(raised, now), now)
    assert stored is not None and [a.worker_id for a in stored.answers] == ["a", "b"]
    assert [x.worker_id for x in stored.leases] == ["c"] and stored.free_at == until
    # Without the lease, no answer lands.
    assert await tasks.save_answer(stored, again, "b", [], now) is None


@implementations
async def test_a_release_drops_the_workers_lease_only(tasks: Tasks) -> None:
    now = T0 + timedelta(hours=1)
    until = now + timedelta(minutes=10)
    task = await added(tasks, created_at=T0, max_workers=2)
    for worker in ("a", "b"):
        assert await tasks.lease_oldest(worker, "cust-a", "work", now, until) is not None
    released = await tasks.release("a", task.task_id, now)
    assert released is not None and [x.worker_id for x in released.leases] == ["b"]
    assert released.free_at is None
    assert await tasks.release("a", task.task_id, now) is None
    assert await tasks.release("a", new_task_id(), now) is None
    assert await tasks.release("b", task.task_id, until) is None  # run out


@implementations
async def test_gold_is_its_own_pool_and_a_customers_pool_is_known(tasks: Tasks) -> None:
    now = T0 + timedelta(hours=1)
    until = now + timedelta(minutes=10)
    gold = await added(tasks, created_at=T0, gold_category="big", callback_url=None)
    assert not await tasks.has_pool_work("cust-a")
    regular = await added(tasks, created_at=T0 + timedelta(seconds=1))
    assert await tasks.has_pool_work("cust-a") and not await tasks.has_pool_work("cust-b")
    got = await tasks.lease_oldest("a", "cust-a", "gold", now, until)
    assert got is not None and got.task_id == gold.task_id and got.free_at is None
    other = await tasks.lease_oldest("b", "cust-a", "gold", now, until)
    assert other is not None and other.task_id == gold.task_id  # gold has no slot limit
    work = await tasks.lease_oldest("c", "cust-a", "work", now, until)
    assert work is not None and work.task_id == regular.task_id


@implementations
async def test_the_open_tasks_a_worker_counts_on_are_found(tasks: Tasks) -> None:
    now = T0 + timedelta(hours=1)
    until = now + timedelta(minutes=10)
    open_task = await added(tasks, created_at=T0, max_workers=3, min_workers=3)
    done_task = await added(tasks, created_at=T0 + timedelta(seconds=1))
    for worker in ("s", "t"):
        leased = await tasks.lease_oldest(worker, "cust-a", "work", now, until)
        assert leased is not None
        answered, raised = domain.submit_work(leased, worker, "big", now)
        assert await tasks.save(answered, stamp_all(raised, now), now) is not None
    assert await tasks.open_answered_by("cust-a", "s") == [open_task.task_id]
    assert await tasks.open_answered_by("cust-b", "s") == []
    stored = await tasks.get(done_task.task_id)
    assert stored is not None and stored.status == "pending"


# -- the task-store: the fair pool --------------------------------------------------------


@pytest.fixture
async def pooled(kind: str, fresh_database: Any) -> AsyncIterator[tuple[Tasks, Pool]]:
    """Tasks and the pool their inserts mark customers waiting in."""
    if kind == "fake":
        pool = FakePool()
        yield FakeTasks(pool=pool), pool
        return
    async for db in fresh_database(ensure_indexes):
        yield TaskRepository(db), PoolRepository(db)


@implementations
async def test_a_customer_waits_in_the_pool_from_its_first_regular_task(
    pooled: tuple[Tasks, Pool],
) -> None:
    tasks, pool = pooled
    assert await pool.waiting() == []
    await added(tasks, gold_category="big", callback_url=None)
    assert await pool.waiting() == []  # gold alone is served only in place of work
    await added(tasks)
    (waiting,) = await pool.waiting()
    assert (waiting.customer_id, waiting.weight) == ("cust-a", 1.0)
    await pool.set_weight("cust-a", 2.5)
    (weighted,) = await pool.waiting()
    assert weighted.weight == 2.5
    assert await pool.customer("cust-a") == weighted and await pool.customer("cust-b") is None
    # Idle only if nothing touched it since it was read.
    await added(tasks)
    assert not await pool.set_idle(waiting)
    (fresh,) = await pool.waiting()
    assert await pool.set_idle(fresh)
    assert await pool.waiting() == []
    await added(tasks)
    assert [c.customer_id for c in await pool.waiting()] == ["cust-a"]


@implementations
async def test_the_pool_gives_the_customers_in_turn(pooled: tuple[Tasks, Pool]) -> None:
    tasks, pool = pooled
    for customer in ("cust-a", "cust-b"):
        await added(tasks, customer_id=customer)
    waiting = await pool.waiting()
    first = pool.take_turn(waiting)
    second = pool.take_turn(waiting)
    assert first is not None and second is not None
    assert {first.customer_id, second.customer_id} == {"cust-a", "cust-b"}
    pool.give_back_turn(second)
    assert pool.take_turn(waiting) == second
    assert pool.take_turn([]) is None


# -- the task-store: what customers know of workers ---------------------------------------


@pytest.fixture
async def qualities(kind: str, fresh_database: Any) -> AsyncIterator[Quality]:
    if kind == "fake":
        yield FakeQuality()
        return
    async for db in fresh_database(ensure_indexes):
        yield QualityRepository(db)


ODD = "a.b$c%2E"  # a category that is no field name as it stands


@implementations
async def test_a_workers_increments_are_written_once_per_key(qualities: Quality) -> None:
    scored = quality.gold_answer_increments("w1", ODD, "big")
    first = await qualities.apply_worker("cust-a", "w1", "answer:t1", scored)
    assert first.written and (first.worker.gold_answers, first.worker.gold_correct) == (1, 0)
    again = await qualities.apply_worker("cust-a", "w1", "answer:t1", scored)
    assert not again.written and again.worker == first.worker
    right = quality.gold_answer_increments("w1", ODD, ODD)
    second = await qualities.apply_worker("cust-a", "w1", "answer:t2", right)
    assert second.written and (second.worker.gold_answers, second.worker.gold_correct) == (2, 1)
    assert await qualities.apply_customer("cust-a", scored) == 1
    context = await qualities.context("cust-a", ["w1", "w2"])
    w1 = context.standing("w1").state
    assert w1.counts == {ODD: {"big": 1.0, ODD: 1.0}} and w1.row_totals == {ODD: 2.0}
    assert context.customer.counts == {ODD: {"big": 1.0}} and context.customer.gold_answers == 1
    assert context.standing("w2") == domain.WorkerStanding()
    assert context.calibration == quality.IDENTITY


@implementations
async def test_standings_blocks_and_the_customers_view(qualities: Quality) -> None:
    assert await qualities.standings("w1") == {}
    await qualities.mark_started("cust-a", "w1")
    assert await qualities.standings("w1") == {"cust-a": domain.Standing(started=True)}
    assert await qualities.workers_of("cust-a") == []  # started, never answered
    answered = quality.Increments(workers={"w1": quality.WorkerIncrement(answers=1)})
    await qualities.apply_worker("cust-a", "w1", "answer:t1", answered)
    await qualities.apply_worker("cust-b", "w1", "answer:t2", answered)
    assert await qualities.block("cust-a", "w1", T0)
    assert not await qualities.block("cust-a", "w1", T0)
    assert await qualities.standings("w1") == {
        "cust-a": domain.Standing(blocked=True, started=True),
        "cust-b": domain.Standing(),
    }
    assert (await qualities.context("cust-a", ["w1"])).standing("w1").blocked
    (view,) = await qualities.workers_of("cust-a")
    assert (view.worker_id, view.answers, view.blocked) == ("w1", 1, True)
    key = await qualities.pseudonym_key("cust-a")
    assert await qualities.pseudonym_key("cust-a") == key != await qualities.pseudonym_key("cust-b")
    fitted = quality.Calibration(slope=0.5, intercept=0.1)
    await qualities.save_calibration("cust-a", fitted)
    assert (await qualities.context("cust-a", [])).calibration == fitted


@implementations
async def test_quotas_count_pending_tasks_and_bytes_and_refuse_past_them(tasks: Tasks) -> None:
    record = await added(tasks)
    size = task_bytes(record)
    quota = await tasks.set_quota("cust-a", 2, 3 * size)
    assert (quota.pending_tasks, quota.stored_bytes) == (1, size)
    assert (quota.pending_tasks_limit_is, quota.stored_bytes_limit_is) == ("customer", "customer")
    second = await added(tasks)
    with pytest.raises(QuotaExceeded):
        await added(tasks)
    canceled, raised = domain.cancel_task(second, T0)
    assert await tasks.save(canceled, stamp_all(raised, T0), T0) is not None
    assert (await tasks.quota("cust-a")).pending_tasks == 1  # a task out of pending
    await added(tasks)
    await tasks.set_quota("cust-a", 0, None)  # pending: no limit
    with pytest.raises(StorageQuotaExceeded):  # a fourth: bytes stay when a task is finished
        await added(tasks)
    other = await tasks.quota("cust-b")
    assert (other.pending_tasks, other.stored_bytes, other.pending_tasks_limit_is) == (
        0,
        0,
        "default",
    )
    reset = await tasks.set_quota("cust-a", "default", "default")
    assert (reset.pending_tasks_limit_is, reset.stored_bytes_limit_is) == ("default", "default")


@implementations
async def test_quotas_count_a_task_an_audit_reopened_and_a_tasks_new_size(tasks: Tasks) -> None:
    """What the counters say is what the tasks say (as the fake counts them from its
    records): a task back to `pending` counts again, a task whose metadata or unique_id
    changed counts its new size."""
    await added(tasks)
    record = await tasks.get((await added(tasks)).task_id)  # as stored: its size known
    assert record is not None
    leased = domain.lease_to(record, "w1", T0, T0 + timedelta(hours=1))
    leased = await tasks.save(leased, [], T0)
    assert leased is not None
    done, raised = domain.submit_work(leased, "w1", "big", T0)
    done = await tasks.save(done, stamp_all(raised, T0), T0)
    assert done is not None
    before = await tasks.quota("cust-a")
    assert before.pending_tasks == 1
    reopened, raised = audit.audit_task(done, AuditRequest(accepted=False), T0)
    reopened = await tasks.save(reopened, stamp_all(raised, T0), T0)
    assert reopened is not None
    assert (await tasks.quota("cust-a")).pending_tasks == 2
    bigger = task_edits.set_metadata(reopened, {"note": "x" * 1_000})
    bigger = await tasks.save(bigger, [], T0)
    assert bigger is not None
    grown = await tasks.quota("cust-a")
    assert grown.stored_bytes == before.stored_bytes + task_bytes(bigger) - task_bytes(record)
    assert grown.stored_bytes > before.stored_bytes + 1_000
    smaller = await tasks.save(task_edits.set_metadata(bigger, {}), [], T0)
    assert smaller is not None
    assert (await tasks.quota("cust-a")).stored_bytes < grown.stored_bytes


async def every_page(tasks: Tasks, customer_id: str, **query: Any) -> list[str]:
    """The task ids of every page of a list, following `next_token`."""
    ids: list[str] = []
    page_query = TaskListQuery.model_validate(query)
    cursor = None
    while True:
        records, cursor = await tasks.list(customer_id, page_query, T0 + timedelta(days=1), cursor)
        ids += [record.task_id for record in records]
        if cursor is None:
            return ids
        page_query = page_query.model_copy(update={"offset": 0})


@implementations
async def test_a_list_is_the_customers_tasks_newest_first_page_by_page(tasks: Tasks) -> None:
    made = [
        await added(tasks, created_at=T0 + timedelta(seconds=offset))
        for offset in (5, 0, 3600, 60, 1, 86000)
    ]
    await added(tasks, customer_id="cust-b")
    newest_first = [r.task_id for r in sorted(made, key=lambda r: r.created_at, reverse=True)]
    assert await every_page(tasks, "cust-a") == newest_first
    assert await every_page(tasks, "cust-a", limit=2) == newest_first
    assert await every_page(tasks, "cust-a", limit=2, offset=1) == newest_first[1:]
    since = (T0 + timedelta(seconds=1)).isoformat()
    until = (T0 + timedelta(seconds=3600)).isoformat()
    assert await every_page(tasks, "cust-a", start_time=since, end_time=until) == [
        made[3].task_id,
        made[0].task_id,
        made[4].task_id,
    ]


@implementations
async def test_a_list_filters_by_status_and_unique_id(tasks: Tasks) -> None:
    pending = await added(tasks, unique_id="u-1")
    other = await added(tasks, created_at=T0 + timedelta(seconds=1))
    canceled, raised = domain.cancel_task(other, T0)
    assert await tasks.save(canceled, stamp_all(raised, T0), T0) is not None
    assert await every_page(tasks, "cust-a", status="pending") == [pending.task_id]
    assert await every_page(tasks, "cust-a", status="canceled") == [other.task_id]
    assert await every_page(tasks, "cust-a", unique_id="u-1") == [pending.task_id]
    assert await every_page(tasks, "cust-a", unique_id="u-2") == []


# -- the task-store: accounts ---------------------------------------------------------------


@pytest.fixture
async def accounts(kind: str, fresh_database: Any) -> AsyncIterator[Accounts]:
    if kind == "fake":
        yield FakeAccounts()
        return
    async for db in fresh_database(ensure_indexes):
        yield AccountRepository(db)


@implementations
async def test_a_credential_names_its_principal_in_its_role(accounts: Accounts) -> None:
    customer = await accounts.add_customer("acme", "hash-c", "whsec_c", T0)
    worker = await accounts.add_worker("alice", "hash-w", T0)
    assert await accounts.authenticate("hash-c", "customer") == customer
    assert await accounts.authenticate("hash-w", "worker") == worker
    assert await accounts.authenticate("hash-c", "worker") is None
    assert await accounts.authenticate("hash-x", "customer") is None
    assert await accounts.owner_of("hash-w", "worker") == worker
    assert await accounts.callback_secret(customer.principal_id) == "whsec_c"
    assert await accounts.callback_secret("nobody") is None
    # A credential belongs to one principal for good, as the unique `_id` makes it.
    with pytest.raises(DuplicateKeyError):
        await accounts.add_worker("bob", "hash-c", T0)


@implementations
async def test_ensuring_a_customer_creates_it_once_and_never_after_a_revocation(
    accounts: Accounts,
) -> None:
    first = await accounts.ensure_customer("demo", "hash-d", "whsec_1", T0)
    assert first is not None
    assert await accounts.ensure_customer("demo", "hash-d", "whsec_2", T0) == first
    assert await accounts.callback_secret(first.principal_id) == "whsec_1"
    assert await accounts.revoke("customer", first.principal_id, T0) is not None
    assert await accounts.ensure_customer("demo", "hash-d", "whsec_3", T0) is None


@implementations
async def test_accounts_are_listed_oldest_first_and_revoked_for_good(accounts: Accounts) -> None:
    later = await accounts.add_customer("later", "hash-2", "whsec_2", T0 + timedelta(seconds=1))
    first = await accounts.add_customer("first", "hash-1", "whsec_1", T0)
    listed = await accounts.accounts("customer")
    assert [a.principal_id for a in listed] == [first.principal_id, later.principal_id]
    assert [(a.name, a.created_at, a.revoked_at) for a in listed] == [
        ("first", T0, None),
        ("later", T0 + timedelta(seconds=1), None),
    ]
    assert await accounts.accounts("worker") == []

    revoked = await accounts.revoke("customer", first.principal_id, T0 + timedelta(minutes=1))
    assert revoked is not None and revoked.revoked_at == T0 + timedelta(minutes=1)
    assert await accounts.authenticate("hash-1", "customer") is None
    assert await accounts.owner_of("hash-1", "customer") == first  # whose it was stays
    again = await accounts.revoke("customer", first.principal_id, T0 + timedelta(minutes=2))
    assert again == revoked
    assert await accounts.revoke("customer", "nobody", T0) is None
    assert await accounts.account("customer", later.principal_id) == listed[1]


@implementations
async def test_a_rotated_credential_replaces_every_other(accounts: Accounts) -> None:
    worker = await accounts.add_worker("alice", "hash-old", T0)
    rotated = await accounts.rotate_credential("worker", worker.principal_id, "hash-new", T0)
    assert rotated == await accounts.account("worker", worker.principal_id)
    assert await accounts.authenticate("hash-new", "worker") == worker
    assert await accounts.authenticate("hash-old", "worker") is None
    # A redelivered rotation is a no-op.
    assert await accounts.rotate_credential("worker", worker.principal_id, "hash-new", T0)
    assert await accounts.authenticate("hash-new", "worker") == worker


@implementations
async def test_a_rotated_callback_secret_is_kept_for_a_known_customer_only(
    accounts: Accounts,
) -> None:
    customer = await accounts.add_customer("acme", "hash-c", "whsec_old", T0)
    assert await accounts.rotate_callback_secret(customer.principal_id, "whsec_new")
    assert await accounts.callback_secret(customer.principal_id) == "whsec_new"
    assert not await accounts.rotate_callback_secret("nobody", "whsec_x")


# -- the task-store: the outbox and the credential announcer --------------------------------


@dataclass
class Published:
    """What reached a test queue bound to the events exchange for `routing_keys`."""

    messages: list[AbstractIncomingMessage] = field(default_factory=list)

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        self.messages.append(message)


async def bound_queue(
    connection: AbstractRobustConnection, routing_keys: list[str]
) -> tuple[Published, Callable[[], Awaitable[None]]]:
    channel = await connection.channel()
    queue = await channel.declare_queue(unique("contract"), exclusive=True)
    for key in routing_keys:
        await queue.bind(EVENTS_EXCHANGE.name, routing_key=key)
    published = Published()
    await queue.consume(published.on_message, no_ack=True)
    return published, channel.close


@dataclass
class OutboxHarness:
    outbox: Outbox
    write: Callable[[TaskRecord, list[Any]], Awaitable[None]]  # the task, as the handler does
    published: Callable[[int], Awaitable[list[tuple[str, str]]]]  # (task id, event type)


@pytest.fixture
async def outbox(
    kind: str, fresh_database: Any, connection: AbstractRobustConnection
) -> AsyncIterator[OutboxHarness]:
    if kind == "fake":
        fake = RecordingOutbox()

        async def nothing(record: TaskRecord, events: list[Any]) -> None:
            pass

        async def recorded(count: int) -> list[tuple[str, str]]:
            return [(task_id, e.routing_key) for task_id, events in fake.published for e in events]

        yield OutboxHarness(fake, nothing, recorded)
        return
    async for db in fresh_database(ensure_indexes):
        async for harness in real_outbox(db, connection):
            yield harness


async def real_outbox(
    db: Any, connection: AbstractRobustConnection
) -> AsyncIterator[OutboxHarness]:
    channel = await open_channel(connection)
    events = await declare_exchange(channel, EVENTS_EXCHANGE)
    publisher = OutboxPublisher(OutboxStore(db), events)
    received, close = await bound_queue(connection, ["task.*"])
    repository = TaskRepository(db)

    async def write(record: TaskRecord, events: list[Any]) -> None:
        await repository.add(record, events, record.created_at)

    async def arrived(count: int) -> list[tuple[str, str]]:
        await publisher.drain(WAIT)
        messages = await wait_for(
            lambda: received.messages if len(received.messages) >= count else None,
            timeout=WAIT,
            message=f"{count} events",
        )
        return [(orjson.loads(m.body)["task"]["task_id"], str(m.type)) for m in messages]

    try:
        yield OutboxHarness(publisher, write, arrived)
    finally:
        await close()
        await channel.close()


@implementations
async def test_events_handed_to_the_outbox_are_published_in_order(outbox: OutboxHarness) -> None:
    record, created = new_task()
    await outbox.write(record, created)
    outbox.outbox.publish_after_reply(record.task_id, created)
    _, raised = domain.cancel_task(record, T0)
    outbox.outbox.publish_after_reply(record.task_id, stamp_all(raised, T0))
    assert await outbox.published(2) == [
        (record.task_id, "task.created"),
        (record.task_id, "task.canceled"),
    ]


@pytest.fixture
async def announcer(
    kind: str, connection: AbstractRobustConnection
) -> AsyncIterator[tuple[AnnounceCredentialChange, Callable[[], Awaitable[list[Any]]]]]:
    if kind == "fake":
        fake = RecordingAnnouncer()

        async def recorded() -> list[Any]:
            return fake.changes()

        yield fake, recorded
        return
    channel = await open_channel(connection)
    received, close = await bound_queue(connection, ["credential.changed"])

    async def arrived() -> list[Any]:
        messages = await wait_for(
            lambda: received.messages, timeout=WAIT, message="credential.changed"
        )
        changes = [CredentialChanged.model_validate_json(m.body) for m in messages]
        return [(change.role, change.principal_id, change.change) for change in changes]

    try:
        yield partial(publish_event, await declare_exchange(channel, EVENTS_EXCHANGE)), arrived
    finally:
        await close()
        await channel.close()


@implementations
async def test_an_announced_credential_change_is_published(
    announcer: tuple[AnnounceCredentialChange, Callable[[], Awaitable[list[Any]]]],
) -> None:
    announce, announced = announcer
    await announce(CredentialChanged(role="customer", principal_id="c1", change="revoked"))
    assert await announced() == [("customer", "c1", "revoked")]


# -- the notifier: deliveries ---------------------------------------------------------------


@pytest.fixture
async def deliveries(kind: str, fresh_database: Any) -> AsyncIterator[Deliveries]:
    if kind == "fake":
        yield FakeDeliveries()
        return
    async for db in fresh_database(ensure_notifier_indexes):
        yield DeliveryRepository(db)


def new_delivery(task_id: str = "576c41bf13e36b0600b02b34", customer_id: str = "c1") -> Delivery:
    task = Task.model_validate(
        {
            "task_id": task_id,
            "created_at": "2016-06-23T20:08:31.573Z",
            "completed_at": "2016-06-23T21:54:44.904Z",
            "callback_url": "http://www.example.com/test_callback",
            "status": "completed",
            "instruction": "Is this object red or blue?",
            "params": {"attachment_type": "text", "attachment": "t", "categories": ["a", "b"]},
            "response": {"category": "a"},
            "metadata": {"a.b": {"$c": [1, None]}},
        }
    )
    event = TaskCompleted(customer_id=customer_id, callback_format="json", task=task)
    return notifier_domain.new_delivery(event, T0)


@implementations
async def test_a_delivery_is_stored_once_per_task(deliveries: Deliveries) -> None:
    delivery = new_delivery()
    assert await deliveries.get(delivery.task_id) is None
    assert await deliveries.latest(delivery.task_id) is None
    assert await deliveries.create(delivery)
    assert not await deliveries.create(replace(new_delivery(), customer_id="someone else"))
    assert await deliveries.latest(delivery.task_id) == delivery
    assert await deliveries.get(delivery.task_id) == delivery
    await deliveries.mark_retry_scheduled(delivery.task_id)
    stored = await deliveries.get(delivery.task_id)
    assert stored == replace(delivery, retry_scheduled=True)


@implementations
async def test_each_attempt_is_claimed_once_and_finished_once(deliveries: Deliveries) -> None:
    delivery = new_delivery()
    await deliveries.create(delivery)
    first = Attempt(number=1, at=T0)
    assert await deliveries.claim(delivery, first)
    assert not await deliveries.claim(delivery, first)
    stored = await deliveries.get(delivery.task_id)
    assert stored is not None and stored.attempts == (first,)
    assert await deliveries.log(delivery.task_id, "c1") == []  # not finished yet

    failed = notifier_domain.finish(first, 500, None)
    assert await deliveries.finish(delivery.task_id, failed)
    assert not await deliveries.finish(delivery.task_id, notifier_domain.finish(first, 200, None))
    second = Attempt(number=2, at=T0 + timedelta(minutes=1))
    assert await deliveries.claim(delivery, second)
    assert await deliveries.finish(delivery.task_id, notifier_domain.finish(second, 200, None))

    stored = await deliveries.get(delivery.task_id)
    assert stored is not None and [a.number for a in stored.attempts] == [1, 2]
    log = await deliveries.log(delivery.task_id, "c1")
    assert [(a.number, a.status_code, a.delivered) for a in log] == [
        (1, 500, False),
        (2, 200, True),
    ]
    assert await deliveries.log(delivery.task_id, "c2") == []


@implementations
async def test_redeliveries_are_numbered_deliveries_of_their_task(deliveries: Deliveries) -> None:
    first = new_delivery()
    task_id = first.task_id
    assert await deliveries.create(first)
    for number, status in ((1, 500), (2, 502)):
        claimed = Attempt(number=number, at=T0 + timedelta(minutes=number))  # type: ignore[arg-type]
        assert await deliveries.claim(first, claimed)
        assert await deliveries.finish(
            first.delivery_id, notifier_domain.finish(claimed, status, None)
        )
    latest = await deliveries.latest(task_id)
    assert latest is not None and (latest.number, latest.state) == (1, "failed")
    [(failed, last)] = await deliveries.failed(T0, None, 10)
    assert (failed.delivery_id, last.number, last.status_code) == (task_id, 2, 502)
    assert await deliveries.failed(T0 + timedelta(minutes=3), None, 10) == []
    assert await deliveries.failed(T0, "c2", 10) == []

    second = notifier_domain.redelivery(latest, T0 + timedelta(hours=1), "req-2")
    assert await deliveries.create(second)
    assert not await deliveries.create(second)  # one redelivery of that number, ever
    again = await deliveries.latest(task_id)
    assert again is not None and (again.number, again.attempts, again.state) == (2, (), "new")
    assert await deliveries.failed(T0, None, 10) == []  # replaced by the redelivery
    attempt = notifier_domain.next_attempt(again, T0 + timedelta(hours=1))
    assert attempt.delivery == 2 and await deliveries.claim(again, attempt)
    assert await deliveries.finish(again.delivery_id, notifier_domain.finish(attempt, 200, None))

    log = await deliveries.log(task_id, "c1")
    assert [(a.delivery, a.number, a.status_code) for a in log] == [
        (1, 1, 500),
        (1, 2, 502),
        (2, 1, 200),
    ]
    original = await deliveries.get(first.delivery_id)
    assert original is not None and len(original.attempts) == 2
    redelivered = await deliveries.get(second.delivery_id)
    assert redelivered is not None and [a.status_code for a in redelivered.attempts] == [200]


# -- the notifier: retries, callbacks, signing keys -----------------------------------------


@pytest.fixture
async def retries(
    kind: str, connection: AbstractRobustConnection
) -> AsyncIterator[tuple[Retries, Callable[[int], Awaitable[list[str]]]]]:
    if kind == "fake":
        fake = FakeRetries()

        async def scheduled(count: int) -> list[str]:
            return fake.scheduled + fake.started

        yield fake, scheduled
        return
    channel = await open_channel(connection)
    name = unique("retries")
    queue = Queue(name, "a test's", (RetryDue, RedeliveryDue), ("notifier",), (), dead_letters=True)
    scheduler = RetryScheduler(channel, 0, "classic", retries=queue)  # due at once
    await scheduler.declare()
    came_due = await declare(channel, queue)
    due: list[str] = []

    async def on_message(message: AbstractIncomingMessage) -> None:
        kind = RetryDue if message.type == RetryDue.routing_key else RedeliveryDue
        came = kind.model_validate_json(message.body)
        due.append(notifier_domain.delivery_id(came.task_id, came.delivery))

    await came_due.consume(on_message, no_ack=True)

    async def arrived(count: int) -> list[str]:
        return await wait_for(
            lambda: due if len(due) >= count else None, timeout=WAIT, message="due retries"
        )

    try:
        yield scheduler, arrived
    finally:
        for leftover in (name, f"{name}.dead-letter", scheduler.delay_queue.name):
            await channel.queue_delete(leftover)
        await channel.close()


@implementations
async def test_a_scheduled_retry_comes_due_for_its_task(
    retries: tuple[Retries, Callable[[int], Awaitable[list[str]]]],
) -> None:
    scheduler, due = retries
    await scheduler.schedule("t1", 1, "req-1")
    await scheduler.schedule("t2", 3, None)
    await scheduler.start("t3", 2, None)  # a redelivery's first attempt, due at once
    assert sorted(await due(3)) == ["t1", "t2.3", "t3.2"]


@dataclass
class SenderHarness:
    sender: Sender
    answer: Callable[[int], None]  # the receiver's next answer
    received: Callable[[], list[tuple[bytes, str]]]  # body and webhook-id of each request
    url: str


@pytest.fixture
async def callbacks(kind: str) -> AsyncIterator[SenderHarness]:
    path = "/hook"
    if kind == "fake":
        fake = FakeSender()

        def answer(status: int) -> None:
            fake.answers.append(SendResult(status_code=status))

        def sent() -> list[tuple[bytes, str]]:
            return [(request["body"], request["headers"]["webhook-id"]) for request in fake.sent]

        yield SenderHarness(fake, answer, sent, f"http://127.0.0.1:1{path}")
        return
    receiver = await ScriptedReceiver().start()
    statuses: list[Answer] = []
    session = create_session(5, True)

    def script(status: int) -> None:
        statuses.append(Answer(status))
        receiver.script(path, *statuses)

    def arrived() -> list[tuple[bytes, str]]:
        return [(r.body, r.headers["webhook-id"]) for r in receiver.received(path)]

    try:
        yield SenderHarness(CallbackSender(session, 5, True), script, arrived, receiver.url(path))
    finally:
        await session.close()
        await receiver.stop()


@implementations
async def test_a_callback_post_says_what_the_receiver_answered(callbacks: SenderHarness) -> None:
    callbacks.answer(500)
    failed = await callbacks.sender.post(callbacks.url, b"first", {"webhook-id": "t1"})
    assert (failed.status_code, failed.kind) == (500, "status_5xx")
    delivered = await callbacks.sender.post(callbacks.url, b"second", {"webhook-id": "t1"})
    assert (delivered.status_code, delivered.kind) == (200, "status_2xx")
    assert callbacks.received() == [(b"first", "t1"), (b"second", "t1")]


@dataclass
class SecretsHarness:
    secrets: SigningKeys
    customer: Callable[[], Awaitable[str]]  # a known customer's id
    go_away: Callable[[], Awaitable[None]]  # the task-store stops answering


@pytest.fixture
async def signing_keys(
    kind: str, fresh_database: Any, connection: AbstractRobustConnection
) -> AsyncIterator[SecretsHarness]:
    if kind == "fake":
        fake = FakeSigningKeys()

        async def anyone() -> str:
            return "c1"

        async def away() -> None:
            fake.error = Unavailable("the task-store did not answer")

        yield SecretsHarness(fake, anyone, away)
        return
    async for db in fresh_database(ensure_indexes):
        async for harness in real_signing_keys(db, connection):
            yield harness


async def real_signing_keys(
    db: Any, connection: AbstractRobustConnection
) -> AsyncIterator[SecretsHarness]:
    accounts = AccountRepository(db)
    channel = await open_channel(connection)
    # An exchange and a queue of the test's own, so that no other command reaches it.
    commands = Exchange(unique("commands"), "direct", "a test's")
    queue = Queue(unique("secrets"), "a test's", (GetCallbackSecret,), ("taskstore",), (), commands)
    deps = Dependencies(
        tasks=TaskRepository(db),
        accounts=accounts,
        outbox=RecordingOutbox(),
        announce=RecordingAnnouncer(),
        work_lease_seconds=60,
        pool=PoolRepository(db),
        quality=QualityRepository(db),
        publish=RecordingPublisher(),
        search=RealTaskSearch(db),
        projects=ProjectRepository(db),
        batches=BatchRepository(db),
        batch_outbox=RecordingOutbox(),
        list_tokens=CursorSigner(bytes(32)),
    )
    user = "guest"
    server = CommandServer(
        queue,
        {GetCallbackSecret: partial(get_callback_secret, deps=deps)},
        BrokerIdentities({"gateway": user, "notifier": user, "admin": user}, user),
        channel,
    )
    consumer = Consumer(await declare(channel, queue), server)
    await consumer.start()
    exchange = await declare_exchange(channel, commands)
    client = CommandClient(channel, exchange, user, timeout_seconds=2)
    await client.start("notifier")

    async def customer() -> str:
        principal = await accounts.add_customer("acme", uuid.uuid4().hex, "whsec_c", T0)
        return principal.principal_id

    async def away() -> None:
        await consumer.stop(grace_seconds=1)

    try:
        yield SecretsHarness(CallbackSecrets(client, cache_seconds=0), customer, away)
    finally:
        await consumer.stop(grace_seconds=1)
        await channel.queue_delete(queue.name)
        await channel.exchange_delete(commands.name)
        await channel.close()


@implementations
async def test_a_customers_secret_is_its_own_until_the_task_store_goes_away(
    signing_keys: SecretsHarness,
) -> None:
    customer_id = await signing_keys.customer()
    secret = await signing_keys.secrets.get(customer_id)
    assert secret.current.startswith("whsec_") and secret.previous is None
    assert await signing_keys.secrets.get(customer_id) == secret
    await signing_keys.go_away()
    with pytest.raises(Unavailable):
        await asyncio.wait_for(signing_keys.secrets.get(customer_id), timeout=WAIT)


# -- the task-store: `/scale/v1`'s ports (docs/reference/contract.md §11) --------------------------


def placed_task(
    customer_id: str = "cust-a",
    created_at: datetime = T0,
    placement: dict[str, Any] | None = None,
    **request: Any,
) -> tuple[TaskRecord, list[Any]]:
    record, events = domain.create_task(
        new_task_id(),
        customer_id,
        CreateTaskRequest.model_validate({**REQUEST, **request}),
        created_at,
        placement=TaskPlacement.model_validate(placement or {}),
    )
    return record, stamp_all(events, created_at)


@implementations
async def test_a_save_that_takes_a_taken_unique_id_is_refused_and_one_let_go_is_free(
    tasks: Tasks,
) -> None:
    holder = await added(tasks, unique_id="u-1")
    other = await added(tasks)
    with pytest.raises(TaskExists) as taken:
        await tasks.save(replace(other, unique_id="u-1"), [], T0)
    assert taken.value.existing == holder
    freed = await tasks.save(replace(holder, unique_id=None, fingerprint=None), [], T0)
    assert freed is not None and freed.unique_id is None
    moved = await tasks.save(replace(other, unique_id="u-1"), [], T0)
    assert moved is not None and moved.unique_id == "u-1"
    assert await tasks.get(holder.task_id) == freed


@implementations
async def test_a_claim_skips_the_tasks_its_worker_answered_before_an_audit(tasks: Tasks) -> None:
    """A task an audit reopened keeps its answers, uncounted: their workers are not served
    it again, anyone else is."""
    now = T0 + timedelta(hours=1)
    older = await added(tasks, created_at=T0)
    newer = await added(tasks, created_at=T0 + timedelta(minutes=1))
    stored = await tasks.get(older.task_id)
    assert stored is not None
    leased = await tasks.save(
        domain.lease_to(stored, "alice", T0, T0 + timedelta(minutes=5)), [], T0
    )
    assert leased is not None
    done, raised = domain.submit_work(leased, "alice", "big", T0)
    done = await tasks.save(done, stamp_all(raised, T0), T0)
    assert done is not None and done.status == "completed"
    reopened, raised = audit.audit_task(done, AuditRequest(accepted=False), T0)
    assert await tasks.save(reopened, stamp_all(raised, T0), T0) is not None
    alice = await tasks.lease_oldest("alice", "cust-a", "work", now, now + timedelta(minutes=10))
    assert alice is not None and alice.task_id == newer.task_id
    bob = await tasks.lease_oldest("bob", "cust-a", "work", now, now + timedelta(minutes=10))
    assert bob is not None and bob.task_id == older.task_id
    assert [(a.worker_id, a.counted) for a in bob.answers] == [("alice", False)]


@pytest.fixture
async def scale_ports_of(
    kind: str, fresh_database: Any
) -> AsyncIterator[tuple[Tasks, TaskSearch, Projects, Batches]]:
    if kind == "fake":
        fake = FakeTasks()
        yield fake, FakeTaskSearch(fake), FakeProjects(), FakeBatches()
        return
    async for db in fresh_database(ensure_indexes):
        yield TaskRepository(db), RealTaskSearch(db), ProjectRepository(db), BatchRepository(db)


async def search_all(search: TaskSearch, customer_id: str, **query: Any) -> list[str]:
    """Every page of a search, following its cursor."""
    ids: list[str] = []
    page_query = ScaleTaskListQuery.model_validate(query)
    cursor = None
    while True:
        records, cursor, _ = await search.page(
            customer_id, page_query, T0 + timedelta(days=1), cursor
        )
        ids += [record.task_id for record in records]
        if cursor is None:
            return ids


async def count(search: TaskSearch, customer_id: str, query: ScaleTaskListQuery) -> int | None:
    return (await search.page(customer_id, query, T0 + timedelta(days=1), count=True))[2]


@implementations
async def test_a_search_filters_by_scales_fields_newest_first_and_counts(
    scale_ports_of: tuple[Tasks, TaskSearch, Projects, Batches],
) -> None:
    tasks, search, _, _ = scale_ports_of

    async def place(offset: int, **placement: Any) -> TaskRecord:
        record, events = placed_task(created_at=T0 + timedelta(seconds=offset), placement=placement)
        await tasks.add(record, events, record.created_at)
        return record

    a = await place(0, project="p", batch="b", tags=["x"])
    b = await place(1, project="p", tags=["x", "y"])
    c = await place(2, project="q")
    d = await place(3)
    other, events = placed_task(customer_id="cust-b", placement={"project": "p"})
    await tasks.add(other, events, T0)
    reviewed = await tasks.save(replace(c, customer_review_status="accepted"), [], T0)
    assert reviewed is not None
    completed_at = T0 + timedelta(hours=1)
    done = replace(
        b, status="completed", completed_at=completed_at, response=TaskResponse(category="big")
    )
    assert await tasks.save(done, [], T0) is not None

    assert await search_all(search, "cust-a") == [d.task_id, c.task_id, b.task_id, a.task_id]
    assert await search_all(search, "cust-a", limit=1) == [
        d.task_id,
        c.task_id,
        b.task_id,
        a.task_id,
    ]
    assert await search_all(search, "cust-a", project="p") == [b.task_id, a.task_id]
    assert await search_all(search, "cust-a", batch="b") == [a.task_id]
    assert await search_all(search, "cust-a", tags=["x"]) == [b.task_id, a.task_id]
    assert await search_all(search, "cust-a", tags=["x", "y"]) == [b.task_id]
    assert await search_all(search, "cust-a", customer_review_status="accepted,rejected") == [
        c.task_id
    ]
    assert await search_all(search, "cust-a", status="completed") == [b.task_id]
    after = (completed_at - timedelta(seconds=1)).isoformat()
    assert await search_all(search, "cust-a", completed_after=after) == [b.task_id]
    assert await search_all(search, "cust-a", completed_before=after) == []
    assert await search_all(search, "cust-a", project="p", status="pending") == [a.task_id]
    since = (T0 + timedelta(seconds=1)).isoformat()
    assert await search_all(search, "cust-a", start_time=since, project="p") == [b.task_id]
    assert await count(search, "cust-a", ScaleTaskListQuery(project="p", limit=1)) == 2
    assert await count(search, "cust-a", ScaleTaskListQuery()) == 4
    assert await count(search, "cust-b", ScaleTaskListQuery(project="p")) == 1
    assert (await search.page("cust-a", ScaleTaskListQuery(), T0))[2] is None  # not asked
    assert await search.batch_counts("cust-a", "b") == BatchCounts(pending=1)
    assert await search.batch_has_pending("cust-a", "b")
    assert not await search.batch_has_pending("cust-b", "b")


@implementations
async def test_a_search_by_unique_ids_finds_each_once(
    scale_ports_of: tuple[Tasks, TaskSearch, Projects, Batches],
) -> None:
    tasks, search, _, _ = scale_ports_of
    made = [
        await added(tasks, unique_id=f"u-{n}", created_at=T0 + timedelta(seconds=n))
        for n in range(3)
    ]
    assert await search_all(search, "cust-a", unique_id=["u-0", "u-2", "u-9"]) == [
        made[2].task_id,
        made[0].task_id,
    ]
    assert await search_all(search, "cust-a", unique_id=["u-0", "u-1", "u-2"], limit=2) == [
        r.task_id for r in reversed(made)
    ]


@implementations
async def test_a_project_has_one_name_per_customer_and_versions_on_the_last_read(
    scale_ports_of: tuple[Tasks, TaskSearch, Projects, Batches],
) -> None:
    _, _, projects, _ = scale_ports_of
    request = CreateProjectRequest(
        type="categorization", name="p", params=ProjectParams(instruction="i")
    )
    project = project_domain.new_project(new_task_id(), "cust-a", request, T0)
    await projects.add(project)
    assert await projects.get("cust-a", "p") == project
    assert await projects.get("cust-b", "p") is None
    with pytest.raises(ProjectExists) as same_id:
        await projects.add(project)
    assert same_id.value.existing == project
    with pytest.raises(ProjectExists) as same_name:
        await projects.add(project_domain.new_project(new_task_id(), "cust-a", request, T0))
    assert same_name.value.existing == project
    theirs = project_domain.new_project(new_task_id(), "cust-b", request, T0 + timedelta(seconds=1))
    await projects.add(theirs)

    version = project_domain.ParamsVersion(
        version=1, params={"categories": ["a", "b"]}, created_at=T0
    )
    saved = await projects.add_version(project, version, T0)
    assert saved is not None and [v.version for v in saved.history] == [0, 1]
    assert saved.current.params == {"categories": ["a", "b"]}
    assert await projects.add_version(project, version, T0) is None  # read before the last
    assert await projects.get("cust-a", "p") == saved
    listed = await projects.list("cust-a")  # each with its current params only
    assert [(p.name, [v.version for v in p.history]) for p in listed] == [("p", [1])]


@implementations
async def test_a_batch_has_one_name_per_customer_and_saves_on_the_version_it_read(
    scale_ports_of: tuple[Tasks, TaskSearch, Projects, Batches],
) -> None:
    _, _, _, batches = scale_ports_of
    made = []
    for n in range(3):
        request = CreateBatchRequest(project="p", name=f"b{n}", metadata={"a.b": n})
        batch = batch_domain.new_batch(new_task_id(), "cust-a", request, T0 + timedelta(seconds=n))
        await batches.add(batch)
        made.append(batch)
    assert await batches.get("cust-a", "b0") == made[0]
    assert await batches.get("cust-b", "b0") is None
    with pytest.raises(BatchExists) as same_name:
        await batches.add(replace(made[0], batch_id=new_task_id()))
    assert same_name.value.existing == made[0]

    finalized, raised = batch_domain.finalize(made[0], T0)
    saved = await batches.save(finalized, stamp_all(raised, T0), T0)
    assert saved is not None and (saved.status, saved.version) == ("in_progress", 1)
    assert await batches.save(finalized, [], T0) is None  # decided on the version before
    page, total = await batches.list("cust-a", BatchListQuery(limit=2))
    assert ([b.name for b in page], total) == (["b2", "b1"], 3)
    page, total = await batches.list("cust-a", BatchListQuery(status="in_progress"))
    assert ([b.name for b in page], total) == (["b0"], 1)


@implementations
async def test_each_completion_of_a_task_is_a_delivery_of_its_own(deliveries: Deliveries) -> None:
    first = new_delivery()
    task_id = first.task_id
    assert await deliveries.last_number(task_id) == 0
    second = replace(
        first, number=2, completion=2, task={**first.task, "response": {"category": "b"}}
    )
    assert second.delivery_id == second.webhook_id == f"{task_id}.2"
    for delivery in (first, second):
        assert await deliveries.create(delivery)
        attempt = Attempt(number=1, at=T0, delivery=delivery.number)
        assert await deliveries.claim(delivery, attempt)
        assert await deliveries.finish(
            delivery.delivery_id, notifier_domain.finish(attempt, 200, None)
        )
    assert not await deliveries.create(replace(second, completion=3))  # its number is taken
    stored = await deliveries.get(second.delivery_id)
    assert stored is not None and (stored.completion, stored.origin) == (2, "completion")
    assert len(stored.attempts) == 1 and stored.task["response"] == {"category": "b"}
    assert await deliveries.of_completion(task_id, 2) == stored
    assert await deliveries.of_completion(task_id, 1) == await deliveries.get(task_id)
    assert await deliveries.of_completion(task_id, 3) is None
    assert await deliveries.last_number(task_id) == 2
    log = await deliveries.log(task_id, "c1")
    assert [(a.delivery, a.number, a.delivered) for a in log] == [(1, 1, True), (2, 1, True)]

    # A redelivery of the second completion: the same message, not a completion's own.
    again = notifier_domain.redelivery(stored, T0, None)
    assert await deliveries.create(again)
    assert (again.number, again.webhook_id) == (3, f"{task_id}.2")
    assert await deliveries.get(again.delivery_id) == again
    assert await deliveries.of_completion(task_id, 2) == stored
    latest = await deliveries.latest(task_id)
    assert latest is not None and (latest.number, latest.origin) == (3, "redelivery")
    assert await deliveries.last_number(task_id) == 3


@implementations
async def test_a_batchs_delivery_is_keyed_by_the_batch(deliveries: Deliveries) -> None:
    batch = Batch(
        name="b", project="p", status="completed", callback="https://x.example/b", created_at=T0
    )
    event = BatchCompleted(
        customer_id="c1", batch_id="b1" * 12, batch=batch, counts=BatchCounts(completed=2)
    )
    delivery = notifier_domain.new_delivery(event, T0)
    key = "batch-" + "b1" * 12
    assert (delivery.delivery_id, delivery.webhook_id) == (key, key)
    assert delivery.callback_url == "https://x.example/b"
    await deliveries.create(delivery)
    assert await deliveries.get(key) == delivery
    assert await deliveries.claim(delivery, Attempt(number=1, at=T0))
    assert not await deliveries.claim(delivery, Attempt(number=1, at=T0))
