"""The notifier's handlers with in-memory fakes: at most two attempts, whatever arrives.

Messages reach the handlers as they do in the service: as AMQP bodies through the
queue's `EventDispatcher` and the notifier's handler table. The fake repository claims
attempts the way MongoDB does (a second insert of one id fails; tests/support/fakes.py);
everything else is plain dictionaries.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from humantask_notifier import domain
from humantask_notifier.domain import Attempt
from humantask_notifier.handler_table import bind_message_handlers
from humantask_notifier.handlers import AttemptInProgress, list_callbacks
from humantask_notifier.hosts import HostSlots
from humantask_notifier.ports import Dependencies, SendResult
from humantask_shared.core.errors import NotFound, Unavailable
from humantask_shared.core.messages.commands import ListCallbacks
from humantask_shared.core.messages.events import BatchCompleted, TaskCompleted
from humantask_shared.core.messages.retries import RetryDue
from humantask_shared.core.models import Task
from humantask_shared.core.scale_models import Batch, BatchCounts
from humantask_shared.core.timeutil import utcnow
from humantask_shared.core.topology import (
    CALLBACK_RETRY_QUEUE,
    NOTIFIER_BATCH_COMPLETIONS_QUEUE,
    NOTIFIER_COMPLETIONS_QUEUE,
    Queue,
)
from humantask_shared.runtime.consumer import PoisonMessage
from humantask_shared.runtime.event_dispatcher import EventDispatcher
from humantask_shared.runtime.publishing import stamp
from tests.support.fakes import (
    FakeDeferrals,
    FakeDeliveries,
    FakeRetries,
    FakeSender,
    FakeSigningKeys,
)

from .test_callback_domain import TASK

TASK_ID = TASK["task_id"]


@dataclass
class World:
    deliveries: FakeDeliveries = field(default_factory=FakeDeliveries)
    sender: FakeSender = field(default_factory=FakeSender)
    retries: FakeRetries = field(default_factory=FakeRetries)
    secrets: FakeSigningKeys = field(default_factory=FakeSigningKeys)
    hosts: HostSlots = field(default_factory=lambda: HostSlots(0))
    deferrals: FakeDeferrals = field(default_factory=FakeDeferrals)

    @property
    def deps(self) -> Dependencies:
        return Dependencies(
            deliveries=self.deliveries,
            secrets=self.secrets,
            retries=self.retries,
            sender=self.sender,
            claim_ttl=timedelta(seconds=11),
            hosts=self.hosts,
        )

    async def deliver(self, queue: Queue, trigger: str, message_type: str, body: bytes) -> None:
        put_back = partial(self.deferrals.defer, trigger=trigger)
        dispatcher = EventDispatcher(queue, bind_message_handlers(queue, self.deps), put_back)
        await dispatcher(SimpleNamespace(type=message_type, body=body))  # type: ignore[arg-type]

    async def completed(self, event: TaskCompleted | None = None) -> None:
        stamped = stamp(event or completion(), utcnow())
        await self.deliver(
            NOTIFIER_COMPLETIONS_QUEUE, "completed", "task.completed", stamped.body.encode()
        )

    async def retry_due(self) -> None:
        body = RetryDue(task_id=TASK_ID).model_dump_json().encode()
        await self.deliver(CALLBACK_RETRY_QUEUE, "retry_due", "callback.retry_due", body)

    def attempts_sent(self) -> list[str]:
        return [sent["headers"]["X-Callback-Attempt"] for sent in self.sender.sent]

    async def log(self) -> list[tuple[int, int | None, bool]]:
        result = await list_callbacks(ListCallbacks(customer_id="c1", task_id=TASK_ID), self.deps)
        return [(a.attempt, a.status_code, a.delivered) for a in result.attempts]


def completion(**task_changes: Any) -> TaskCompleted:
    return TaskCompleted(
        customer_id="c1", callback_format="form", task=Task.model_validate({**TASK, **task_changes})
    )


def fail() -> SendResult:
    return SendResult(status_code=500)


async def test_a_200_is_one_signed_attempt_and_no_retry() -> None:
    world = World()
    await world.completed()
    (sent,) = world.sender.sent
    assert sent["url"] == TASK["callback_url"]
    assert sent["headers"]["X-Callback-Attempt"] == "1"
    assert sent["headers"]["webhook-signature"].startswith("v1,")
    assert sent["headers"]["webhook-id"] == TASK["task_id"]
    assert world.retries.scheduled == []
    assert await world.log() == [(1, 200, True)]


async def test_a_failure_schedules_one_retry_which_is_the_last_attempt() -> None:
    world = World(sender=FakeSender([fail(), fail(), fail()]))
    await world.completed()
    assert world.retries.scheduled == [TASK_ID]
    await world.retry_due()
    await world.retry_due()  # a duplicated retry message
    await world.completed()  # a duplicated event
    assert world.attempts_sent() == ["1", "2"]
    assert world.retries.scheduled == [TASK_ID]
    assert await world.log() == [(1, 500, False), (2, 500, False)]


async def test_duplicate_events_send_once() -> None:
    world = World()
    event = completion()
    for _ in range(3):
        await world.completed(event)
    await world.completed()  # another event id, same task
    assert world.attempts_sent() == ["1"]


async def test_an_attempt_in_progress_elsewhere_makes_the_message_wait() -> None:
    world = World()
    await world.deliveries.create(domain.new_delivery(completion(), utcnow()))
    await world.deliveries.claim(world.deliveries.deliveries[TASK_ID], Attempt(1, utcnow()))
    with pytest.raises(AttemptInProgress):
        await world.completed()
    assert world.sender.sent == []


async def test_a_claimer_that_died_mid_attempt_is_logged_and_the_retry_still_happens() -> None:
    world = World()
    await world.deliveries.create(domain.new_delivery(completion(), utcnow()))
    long_ago = utcnow() - timedelta(minutes=5)
    await world.deliveries.claim(world.deliveries.deliveries[TASK_ID], Attempt(1, long_ago))

    await world.completed()  # the event, redelivered after the crash
    assert world.sender.sent == []
    assert world.retries.scheduled == [TASK_ID]
    await world.retry_due()
    assert world.attempts_sent() == ["2"]
    log = await list_callbacks(ListCallbacks(customer_id="c1", task_id=TASK_ID), world.deps)
    first, second = log.attempts
    assert first.error == domain.INTERRUPTED and first.at == long_ago
    assert second.delivered


async def test_a_crash_before_the_retry_was_queued_queues_it_on_redelivery() -> None:
    world = World(sender=FakeSender([fail()]))
    real_schedule = world.retries.schedule

    async def crash(task_id: str, delivery: int, request_id: str | None) -> None:
        raise ConnectionError("broker gone")

    world.retries.schedule = crash  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        await world.completed()
    world.retries.schedule = real_schedule  # type: ignore[method-assign]
    await world.completed()  # the redelivered event
    assert world.attempts_sent() == ["1"]
    assert world.retries.scheduled == [TASK_ID]


async def test_no_attempt_is_spent_while_the_secret_is_unavailable() -> None:
    world = World(secrets=FakeSigningKeys(Unavailable("task-store down")))
    with pytest.raises(Unavailable):
        await world.completed()
    assert world.sender.sent == [] and world.deliveries.attempts == {}
    world.secrets.error = None
    await world.completed()
    assert world.attempts_sent() == ["1"]


@pytest.mark.parametrize(
    "problem", ["unknown customer", "not completed", "not an event", "of another type"]
)
async def test_undeliverable_events_are_poison(problem: str) -> None:
    world = World()
    if problem == "unknown customer":
        world.secrets.error = NotFound("no customer")
        call = world.completed()
    elif problem == "not completed":
        call = world.completed(completion(status="pending", response=None, completed_at=None))
    elif problem == "not an event":
        call = world.deliver(NOTIFIER_COMPLETIONS_QUEUE, "completed", "task.completed", b"{}")
    else:
        body = stamp(completion(), utcnow()).body.encode()
        call = world.deliver(NOTIFIER_COMPLETIONS_QUEUE, "completed", "task.canceled", body)
    with pytest.raises(PoisonMessage):
        await call
    assert world.sender.sent == []


async def test_the_log_is_the_customers_only() -> None:
    world = World()
    await world.completed()
    other = await list_callbacks(ListCallbacks(customer_id="c2", task_id=TASK_ID), world.deps)
    assert other.attempts == []


async def test_any_order_of_any_number_of_messages_never_makes_a_third_attempt() -> None:
    rng = random.Random(7)
    for _ in range(200):
        world = World(sender=FakeSender([fail()] * 5))
        await world.completed()
        for _ in range(rng.randrange(1, 8)):
            with contextlib.suppress(AttemptInProgress):
                await (world.retry_due() if rng.random() < 0.6 else world.completed())
        assert len(world.sender.sent) <= domain.MAX_ATTEMPTS
        assert world.attempts_sent() in (["1"], ["1", "2"])


# -- a host with CALLBACK_MAX_PER_HOST callbacks in progress ------------------------------

HOST = "www.example.com"  # TASK's callback host


async def test_a_callback_to_a_busy_host_is_put_back_without_spending_an_attempt() -> None:
    world = World(hosts=HostSlots(1))
    with world.hosts.slot(HOST):  # another callback to the host is in progress
        await world.completed()
    assert world.sender.sent == [] and await world.log() == []
    assert world.deferrals.deferred == ["completed"]
    # When the message comes back and the host has room, attempt 1 is made.
    await world.completed()
    assert world.attempts_sent() == ["1"] and await world.log() == [(1, 200, True)]
    assert world.deferrals.deferred == ["completed"]


async def test_a_retry_to_a_busy_host_is_put_back_too() -> None:
    world = World(sender=FakeSender([fail()]), hosts=HostSlots(1))
    await world.completed()
    with world.hosts.slot(HOST):
        await world.retry_due()
    assert world.attempts_sent() == ["1"] and world.deferrals.deferred == ["retry_due"]
    await world.retry_due()
    assert world.attempts_sent() == ["1", "2"]
    assert await world.log() == [(1, 500, False), (2, 200, True)]


async def test_a_busy_host_does_not_hold_up_another() -> None:
    world = World(hosts=HostSlots(1))
    with world.hosts.slot("tarpit.example"):
        await world.completed()
    assert world.attempts_sent() == ["1"] and world.deferrals.deferred == []


async def test_the_slot_is_held_while_sending_and_given_back_after() -> None:
    hosts = HostSlots(2)
    seen: list[int] = []

    class CountingSender(FakeSender):
        async def post(self, url: str, body: bytes, headers: dict[str, str]) -> SendResult:
            seen.append(hosts.in_progress(HOST))
            return await super().post(url, body, headers)

    world = World(sender=CountingSender(), hosts=hosts)
    await world.completed()
    assert seen == [1] and hosts.in_progress(HOST) == 0


def test_host_slots_count_per_host_and_forget_idle_hosts() -> None:
    hosts = HostSlots(2)
    assert hosts.take("a") and hosts.take("a") and not hosts.take("a")
    assert hosts.take("b")
    hosts.give_back("a")
    assert hosts.take("a")
    for host in ("a", "a", "b"):
        hosts.give_back(host)
    assert hosts.in_progress("a") == 0 and hosts._in_progress == {}
    unlimited = HostSlots(0)
    assert all(unlimited.take("a") for _ in range(1000))


# -- later completions and batches (docs/reference/contract.md §11) ------------------------------


async def test_a_second_completion_is_a_delivery_of_its_own_with_its_own_retry() -> None:
    world = World()
    await world.completed()
    world.sender.answers = [fail()]
    second = completion(response={"category": "small", "status_code": 200})
    second = second.model_copy(update={"completion": 2})
    await world.completed(second)
    await world.completed(second)  # redelivered: nothing more
    assert [s["headers"]["webhook-id"] for s in world.sender.sent] == [TASK_ID, f"{TASK_ID}.2"]
    assert [s["headers"]["X-Callback-Delivery"] for s in world.sender.sent] == ["1", "2"]
    assert world.retries.scheduled == [f"{TASK_ID}.2"]
    body = RetryDue(task_id=TASK_ID, delivery=2).model_dump_json().encode()
    await world.deliver(CALLBACK_RETRY_QUEUE, "retry_due", "callback.retry_due", body)
    assert world.attempts_sent() == ["1", "1", "2"]
    assert world.sender.sent[2]["headers"]["webhook-id"] == f"{TASK_ID}.2"
    assert world.sender.sent[2]["headers"]["X-Callback-Task-Id"] == TASK_ID
    assert await world.log() == [(1, 200, True), (1, 500, False), (2, 200, True)]


def batch_completion(callback: str = "https://batches.example/done") -> BatchCompleted:
    batch = Batch(
        name="b 1",
        project="p",
        status="completed",
        callback=callback,
        created_at=utcnow(),
        completed_at=utcnow(),
    )
    return BatchCompleted(
        customer_id="c1", batch_id="ab" * 12, batch=batch, counts=BatchCounts(completed=3)
    )


async def test_a_completed_batch_is_called_back_once_as_json_and_retried_once() -> None:
    world = World()
    world.sender.answers = [fail()]
    stamped = stamp(batch_completion(), utcnow())
    for _ in range(2):  # the event again: nothing more
        await world.deliver(
            NOTIFIER_BATCH_COMPLETIONS_QUEUE, "completed", "batch.completed", stamped.body.encode()
        )
    key = "batch-" + "ab" * 12
    assert world.retries.scheduled == [key]
    body = RetryDue(task_id=key, delivery=1).model_dump_json().encode()
    await world.deliver(CALLBACK_RETRY_QUEUE, "retry_due", "callback.retry_due", body)
    await world.deliver(CALLBACK_RETRY_QUEUE, "retry_due", "callback.retry_due", body)
    first, second = world.sender.sent
    assert first["url"] == "https://batches.example/done"
    assert [s["headers"]["X-Callback-Attempt"] for s in (first, second)] == ["1", "2"]
    assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"] == key
    assert first["headers"]["X-Callback-Batch"] == "b 1"
    assert first["headers"]["X-Callback-Delivery"] == "1"
    assert "X-Callback-Task-Id" not in first["headers"]
    assert first["headers"]["Content-Type"] == "application/json"
    sent = orjson.loads(first["body"])
    assert sent["batch"]["status"] == "completed" and sent["counts"]["completed"] == 3


async def test_a_batch_without_a_callback_calls_nobody() -> None:
    world = World()
    stamped = stamp(batch_completion(callback=""), utcnow())
    await world.deliver(
        NOTIFIER_BATCH_COMPLETIONS_QUEUE, "completed", "batch.completed", stamped.body.encode()
    )
    assert world.sender.sent == [] and world.deliveries.deliveries == {}
