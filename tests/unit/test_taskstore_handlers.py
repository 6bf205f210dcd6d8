"""The task-store's handlers against in-memory fakes of its ports (tests/support/fakes.py):
what each command answers, stores and publishes. What the MongoDB adapter adds (indexes,
atomic writes under races) is tested in tests/integration/test_task_repository.py."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from humantask_shared.core.errors import (
    Conflict,
    InvalidRequest,
    NotFound,
    QuotaExceeded,
    StorageQuotaExceeded,
    Unavailable,
)
from humantask_shared.core.messages.commands import (
    ClaimWork,
    CreateTask,
    ListTasks,
)
from humantask_shared.core.messages.events import (
    TaskAnswered,
    TaskCanceled,
    TaskCompleted,
    TaskCreated,
)
from humantask_shared.core.models import ListCursor, TaskListQuery, new_task_id
from humantask_shared.core.timeutil import utcnow
from humantask_shared.core.topology import COMMANDS, NOTIFIER_COMMANDS_QUEUE
from humantask_taskstore import customer_handlers, work_handlers
from humantask_taskstore.cursors import CursorSigner
from humantask_taskstore.handler_table import HANDLERS
from humantask_taskstore.repository.usage import QuotaLimits
from tests.support.taskstore_world import LEASE_SECONDS, World, request


@pytest.fixture
def world() -> World:
    return World()


# -- create ------------------------------------------------------------------------------


async def test_create_stores_the_task_and_publishes_task_created(world: World) -> None:
    task = await world.create()
    assert task.status == "pending"
    assert await world.get(task.task_id) == task
    ((task_id, events),) = world.outbox.published
    assert task_id == task.task_id
    assert [type(stamped.event) for stamped in events] == [TaskCreated]
    assert isinstance(events[0].event, TaskCreated) and events[0].event.task == task
    assert world.tasks.outboxes[task.task_id] == events  # written with the task


async def test_a_redelivered_create_returns_the_task_it_made_and_publishes_once(
    world: World,
) -> None:
    command = CreateTask(customer_id="cust-a", request=request())
    first = await customer_handlers.create_task(command, world.deps)
    again = await customer_handlers.create_task(command, world.deps)
    assert again == first
    assert await world.listed() == [first.task_id]
    assert world.outbox.event_types() == ["task.created"]


async def test_a_known_unique_id_returns_the_original_or_conflicts(world: World) -> None:
    first = await world.create(unique_id="u")
    assert await world.create(unique_id="u") == first  # the customer's retry
    with pytest.raises(Conflict) as info:
        await world.create(unique_id="u", attachment="truck")
    assert first.task_id in info.value.message
    assert await world.listed() == [first.task_id]
    assert world.outbox.event_types() == ["task.created"]
    # Per customer: another customer's task with the same unique_id is its own.
    theirs = await world.create("cust-b", unique_id="u")
    assert theirs.task_id != first.task_id


async def test_a_new_task_id_taken_by_another_customer_is_unavailable(world: World) -> None:
    theirs = await world.create("cust-b")
    taken = CreateTask(task_id=theirs.task_id, customer_id="cust-a", request=request())
    with pytest.raises(Unavailable):
        await customer_handlers.create_task(taken, world.deps)
    assert await world.listed("cust-a") == []


# -- get / list / cancel -----------------------------------------------------------------


async def test_another_customers_task_is_not_found(world: World) -> None:
    task = await world.create("cust-a")
    with pytest.raises(NotFound):
        await world.get(task.task_id, "cust-b")
    with pytest.raises(NotFound):
        await world.cancel(task.task_id, "cust-b")
    assert (await world.get(task.task_id)).status == "pending"
    assert await world.listed("cust-b") == []


@pytest.mark.parametrize("task_id", ["zzz", "0" * 24])
async def test_an_unknown_or_invalid_task_id_is_not_found(world: World, task_id: str) -> None:
    with pytest.raises(NotFound, match=task_id):
        await world.get(task_id)
    with pytest.raises(NotFound):
        await world.cancel(task_id)


async def test_list_is_the_customers_own_newest_first_with_a_next_token(world: World) -> None:
    created = [(await world.create()).task_id for _ in range(3)]
    await world.create("cust-b")
    page = await customer_handlers.list_tasks(
        ListTasks(customer_id="cust-a", query=TaskListQuery(limit=2)), world.deps
    )
    newest_first = sorted(
        created, key=lambda t: (world.tasks.records[t].created_at, t), reverse=True
    )
    assert [task.task_id for task in page.tasks] == newest_first[:2]
    assert page.next_token is not None
    rest = await world.listed(limit=2, next_token=page.next_token)
    assert rest == newest_first[2:]


async def test_a_forged_or_altered_next_token_is_400_naming_next_token(world: World) -> None:
    for _ in range(3):
        await world.create()
    page = await customer_handlers.list_tasks(
        ListTasks(customer_id="cust-a", query=TaskListQuery(limit=1, status="pending")),
        world.deps,
    )
    token = page.next_token
    assert token is not None
    payload, _, signature = token.rpartition(".")
    cursor = ListCursor.from_payload(payload)
    wide = cursor.model_copy(update={"span_seconds": 1e-3}).payload()  # ~30 queries a page
    forged = [
        f"{wide}.{signature}",  # the span altered, the signature kept
        f"{payload}.{'A' * 22}",  # a signature made up
        CursorSigner(b"another task-store's key, 32 bytes").sign(
            cursor, "cust-a", TaskListQuery(status="pending")
        ),
    ]
    for bad in forged:
        with pytest.raises(InvalidRequest, match=r"^next_token: "):
            await world.listed(limit=1, status="pending", next_token=bad)
    # Only with the customer and the filters it was given for.
    with pytest.raises(InvalidRequest, match=r"^next_token: "):
        await world.listed("cust-b", limit=1, status="pending", next_token=token)
    with pytest.raises(InvalidRequest, match=r"^next_token: "):
        await world.listed(limit=1, status="canceled", next_token=token)
    # The limit may change between pages; the token goes on where the page ended.
    assert len(await world.listed(limit=2, status="pending", next_token=token)) == 2


async def test_a_create_past_a_quota_stores_and_publishes_nothing(world: World) -> None:
    world.tasks.quotas = QuotaLimits(pending_tasks=2, stored_bytes=0)
    first = await world.create()
    await world.create()
    with pytest.raises(QuotaExceeded, match=r"^quota: "):
        await world.create()
    assert len(world.outbox.published) == 2 and len(world.tasks.records) == 2
    # Another customer, and the same customer once a task is no longer pending.
    await world.create("cust-b")
    await world.cancel(first.task_id)
    await world.create()
    world.tasks.quotas = QuotaLimits(pending_tasks=0, stored_bytes=10)
    with pytest.raises(StorageQuotaExceeded, match=r"^quota: "):
        await world.create("cust-c")


async def test_cancel_cancels_once_and_publishes_once(world: World) -> None:
    task = await world.create()
    canceled = await world.cancel(task.task_id)
    again = await world.cancel(task.task_id)
    assert canceled.status == "canceled" and canceled.canceled_at is not None
    assert again == canceled
    assert world.outbox.event_types() == ["task.created", "task.canceled"]
    assert isinstance(world.outbox.published[-1][1][0].event, TaskCanceled)
    assert await world.get(task.task_id) == canceled


async def test_a_completed_task_cannot_be_canceled(world: World) -> None:
    task = await world.create()
    assert await world.claim("alice") == task.task_id
    await world.submit("alice", task.task_id)
    with pytest.raises(Conflict):
        await world.cancel(task.task_id)
    assert (await world.get(task.task_id)).status == "completed"
    assert world.outbox.event_types() == ["task.created", "task.answered", "task.completed"]


async def test_a_change_that_lost_a_race_is_decided_again_on_the_fresh_task(
    world: World,
) -> None:
    """Between the cancel's read and its write a worker completes the task: the cancel
    runs again on the completed task and is refused, instead of overwriting it."""
    task = await world.create()
    assert await world.claim("alice") == task.task_id
    tasks, real_save = world.tasks, world.tasks.save
    completed_meanwhile = False

    async def save_after_a_completion(record: Any, events: Any, now: Any) -> Any:
        nonlocal completed_meanwhile
        if not completed_meanwhile:
            completed_meanwhile = True
            await world.submit("alice", task.task_id)
        return await real_save(record, events, now)

    tasks.save = save_after_a_completion  # type: ignore[method-assign]
    with pytest.raises(Conflict):
        await world.cancel(task.task_id)
    assert (await world.get(task.task_id)).status == "completed"


async def test_a_task_changing_too_often_is_unavailable(world: World) -> None:
    task = await world.create()

    async def always_lose(record: Any, events: Any, now: Any) -> None:
        return None

    world.tasks.save = always_lose  # type: ignore[method-assign]
    with pytest.raises(Unavailable):
        await world.cancel(task.task_id)
    assert world.outbox.event_types() == ["task.created"]


# -- claim / submit / release ------------------------------------------------------------


async def test_claims_lease_the_oldest_task_one_per_worker(world: World) -> None:
    first = await world.create()
    second = await world.create()
    assert await world.claim("alice") == first.task_id
    assert await world.claim("alice") == first.task_id  # the lease she holds, again
    assert await world.claim("bob") == second.task_id
    assert await world.claim("carol") is None


async def test_a_claim_shows_the_worker_view_with_the_lease_expiry(world: World) -> None:
    task = await world.create(metadata={"secret": "customer's"})
    before = utcnow()
    claimed = await work_handlers.claim_work(ClaimWork(worker_id="alice"), world.deps)
    item = claimed.item
    assert item is not None and item.task_id == task.task_id
    assert item.instruction == task.instruction and item.params == task.params
    assert before + timedelta(seconds=LEASE_SECONDS) <= item.lease_expires_at
    assert "metadata" not in item.model_dump() and "callback_url" not in item.model_dump()


async def test_submit_completes_the_task_and_publishes_task_completed(world: World) -> None:
    task = await world.create()
    await world.claim("alice")
    done = await world.submit("alice", task.task_id, "small")
    assert done.status == "completed" and done.response.category == "small"
    stored = await world.get(task.task_id)
    assert stored.status == "completed" and stored.response == done.response
    assert [a.worker_id for a in world.tasks.records[task.task_id].answers] == ["alice"]
    assert [type(e.event) for e in world.outbox.published[-1][1]] == [TaskAnswered, TaskCompleted]
    assert await world.claim("alice") is None  # her lease ended with the task


async def test_a_category_the_task_does_not_offer_is_invalid_and_keeps_the_lease(
    world: World,
) -> None:
    task = await world.create()
    await world.claim("alice")
    with pytest.raises(InvalidRequest, match="category"):
        await world.submit("alice", task.task_id, "medium")
    assert (await world.get(task.task_id)).status == "pending"
    assert await world.claim("alice") == task.task_id


async def test_acting_on_a_task_not_held_is_one_answer_whatever_the_task(world: World) -> None:
    """Unknown, invalid, someone else's, released, canceled, expired: all the same 409."""
    theirs = await world.create()
    canceled = await world.create()
    expired = await world.create()
    assert await world.claim("bob") == theirs.task_id
    now = utcnow()
    leased = await world.tasks.lease_oldest(
        "carol", "cust-a", "work", now, now + timedelta(seconds=LEASE_SECONDS)
    )
    assert leased is not None and leased.task_id == canceled.task_id
    await world.cancel(canceled.task_id)
    long_ago = now - timedelta(hours=1)
    await world.tasks.lease_oldest(
        "alice", "cust-a", "work", long_ago, long_ago + timedelta(seconds=1)
    )
    assert [x.worker_id for x in world.tasks.records[expired.task_id].leases] == ["alice"]

    for task_id in ("zzz", new_task_id(), theirs.task_id, canceled.task_id, expired.task_id):
        message = f"you do not hold a live lease on task {task_id}"
        with pytest.raises(Conflict, match=message):
            await world.submit("alice", task_id)
        with pytest.raises(Conflict, match=message):
            await world.release("alice", task_id)
    assert [r.status for r in world.tasks.records.values()] == ["pending", "canceled", "pending"]
    await world.submit("bob", theirs.task_id)  # the holder's lease is untouched


async def test_an_expired_lease_is_refused_even_if_nobody_claimed_the_task() -> None:
    world = World(lease_seconds=-1)  # every lease is over as soon as it is taken
    task = await world.create()
    assert await world.claim("alice") == task.task_id
    with pytest.raises(Conflict, match=f"you do not hold a live lease on task {task.task_id}"):
        await world.submit("alice", task.task_id)
    assert (await world.get(task.task_id)).status == "pending"
    assert world.outbox.event_types() == ["task.created"]


async def test_release_returns_the_task_to_the_pool_at_once(world: World) -> None:
    first = await world.create()
    second = await world.create()
    await world.claim("alice")
    assert await world.claim("bob") == second.task_id
    released = await world.release("bob", second.task_id)
    assert released.task_id == second.task_id
    with pytest.raises(Conflict):
        await world.release("bob", second.task_id)
    await world.submit("alice", first.task_id)
    assert await world.claim("alice") == second.task_id
    assert world.outbox.event_types() == [
        "task.created",
        "task.created",
        "task.answered",
        "task.completed",
    ]


async def test_cancel_ends_the_lease(world: World) -> None:
    task = await world.create()
    await world.claim("alice")
    await world.cancel(task.task_id)
    with pytest.raises(Conflict):
        await world.submit("alice", task.task_id)
    assert await world.claim("alice") is None
    stored = world.tasks.records[task.task_id]
    assert stored.leases == () and stored.free_at is None


def test_every_command_but_the_notifiers_has_a_task_store_handler() -> None:
    assert set(HANDLERS) == set(COMMANDS) - set(NOTIFIER_COMMANDS_QUEUE.commands)
