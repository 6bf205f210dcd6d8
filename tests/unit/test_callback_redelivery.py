"""Redelivering a callback, and signing with both secrets during a rotation's overlap:
the notifier's handlers against in-memory fakes (as tests/unit/test_callback_handlers.py).

A redelivery is a new delivery of the same message (the same body and `webhook-id`),
numbered after the task's latest, with its own two attempts at most; the log shows its
attempts with their `delivery` number and leaves the original's as they always were.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from humantask_notifier import domain, handlers
from humantask_notifier.handlers import (
    list_callbacks,
    list_failed_callbacks,
    redeliver_callback,
)
from humantask_notifier.ports import SendResult
from humantask_shared.core.errors import Conflict, Unavailable
from humantask_shared.core.messages.commands import (
    ListCallbacks,
    ListFailedCallbacks,
    RedeliverCallback,
)
from humantask_shared.core.messages.events import TaskCompleted
from humantask_shared.core.messages.retries import RedeliveryDue, RetryDue
from humantask_shared.core.timeutil import utcnow
from humantask_shared.core.topology import CALLBACK_RETRY_QUEUE, NOTIFIER_BATCH_COMPLETIONS_QUEUE
from humantask_shared.runtime.publishing import stamp
from tests.support.fakes import FakeSender, FakeSigningKeys

from .test_callback_handlers import TASK_ID, World, batch_completion, completion, fail


async def redeliver(world: World, customer_id: str | None = "c1") -> int:
    answer = await redeliver_callback(
        RedeliverCallback(task_id=TASK_ID, customer_id=customer_id), world.deps
    )
    assert answer.task_id == TASK_ID
    return answer.delivery


async def redelivery_due(world: World, delivery: int) -> None:
    body = RedeliveryDue(task_id=TASK_ID, delivery=delivery).model_dump_json().encode()
    await world.deliver(CALLBACK_RETRY_QUEUE, "retry_due", "callback.redelivery_due", body)


async def retry_due(world: World, delivery: int) -> None:
    body = RetryDue(task_id=TASK_ID, delivery=delivery).model_dump_json().encode()
    await world.deliver(CALLBACK_RETRY_QUEUE, "retry_due", "callback.retry_due", body)


async def public_log(world: World) -> list[dict[str, object]]:
    log = await list_callbacks(ListCallbacks(customer_id="c1", task_id=TASK_ID), world.deps)
    return [{k: v for k, v in a.model_dump(mode="json").items() if k != "at"} for a in log.attempts]


async def test_a_failed_callback_redelivered_is_a_new_delivery_of_the_same_message() -> None:
    world = World(sender=FakeSender([fail(), fail()]))
    await world.completed()
    await retry_due(world, 1)
    assert await redeliver(world) == 2
    assert world.retries.started == [f"{TASK_ID}.2"]
    await redelivery_due(world, 2)
    first, _retry, again = world.sender.sent
    assert again["body"] == first["body"]
    assert again["headers"]["webhook-id"] == first["headers"]["webhook-id"] == TASK_ID
    assert (again["headers"]["X-Callback-Attempt"], again["headers"]["X-Callback-Delivery"]) == (
        "1",
        "2",
    )
    assert first["headers"]["X-Callback-Delivery"] == "1"
    # The original delivery's entries are exactly the contract's; the redelivery's say so.
    assert await public_log(world) == [
        {"attempt": 1, "status_code": 500, "error": "the receiver answered 500, not 200",
         "delivered": False},
        {"attempt": 2, "status_code": 500, "error": "the receiver answered 500, not 200",
         "delivered": False},
        {"attempt": 1, "status_code": 200, "error": None, "delivered": True, "delivery": 2},
    ]  # fmt: skip


async def test_a_redelivery_has_its_own_one_retry_and_never_a_third_attempt() -> None:
    world = World(sender=FakeSender([fail(), fail(), fail(), fail()]))
    await world.completed()
    await retry_due(world, 1)
    await redeliver(world)
    await redelivery_due(world, 2)
    await redelivery_due(world, 2)  # a duplicated start
    assert world.retries.scheduled == [TASK_ID, f"{TASK_ID}.2"]
    await retry_due(world, 2)
    await retry_due(world, 2)  # a duplicated retry
    await redelivery_due(world, 2)
    sent = [
        (s["headers"]["X-Callback-Delivery"], s["headers"]["X-Callback-Attempt"])
        for s in world.sender.sent
    ]
    assert sent == [("1", "1"), ("1", "2"), ("2", "1"), ("2", "2")]


async def test_a_delivered_callback_may_be_redelivered_too() -> None:
    world = World()
    await world.completed()
    assert await redeliver(world) == 2
    await redelivery_due(world, 2)
    assert await redeliver(world) == 3
    await redelivery_due(world, 3)
    assert [s["headers"]["X-Callback-Delivery"] for s in world.sender.sent] == ["1", "2", "3"]


async def test_no_redelivery_while_the_latest_delivery_is_under_way() -> None:
    world = World(sender=FakeSender([fail()]))
    await world.completed()  # attempt 1 failed: its retry is due later
    with pytest.raises(Conflict, match="still being delivered"):
        await redeliver(world)
    assert world.retries.started == []


async def test_asking_again_before_a_redelivery_started_restarts_it_without_a_new_one() -> None:
    world = World()
    await world.completed()
    assert await redeliver(world) == 2
    assert await redeliver(world) == 2  # its start message not acted on yet: sent again
    assert world.retries.started == [f"{TASK_ID}.2", f"{TASK_ID}.2"]
    await redelivery_due(world, 2)
    await redelivery_due(world, 2)
    assert [s["headers"]["X-Callback-Delivery"] for s in world.sender.sent] == ["1", "2"]


async def test_no_redelivery_without_a_delivery_on_record_or_of_another_customer() -> None:
    world = World()
    with pytest.raises(Conflict, match="no delivery"):
        await redeliver(world)  # not completed yet, as far as the notifier knows
    await world.completed()
    with pytest.raises(Conflict):
        await redeliver(world, customer_id="c2")
    assert await redeliver(world, customer_id=None) == 2  # the operator's: any customer


async def test_failed_deliveries_are_listed_until_a_redelivery_replaces_them() -> None:
    world = World(sender=FakeSender([fail(), fail()]))
    since = utcnow() - timedelta(seconds=1)
    await world.completed()
    listing = ListFailedCallbacks(since=since)
    assert (await list_failed_callbacks(listing, world.deps)).callbacks == []  # retry due
    await retry_due(world, 1)
    (failed,) = (await list_failed_callbacks(listing, world.deps)).callbacks
    assert (failed.task_id, failed.customer_id, failed.delivery) == (TASK_ID, "c1", 1)
    assert failed.status_code == 500 and failed.callback_url.startswith("http")
    later = ListFailedCallbacks(since=utcnow() + timedelta(seconds=1))
    assert (await list_failed_callbacks(later, world.deps)).callbacks == []
    other = ListFailedCallbacks(since=since, customer_id="c2")
    assert (await list_failed_callbacks(other, world.deps)).callbacks == []
    await redeliver(world)
    await redelivery_due(world, 2)  # delivered
    assert (await list_failed_callbacks(listing, world.deps)).callbacks == []


# -- a secret rotation's overlap window --------------------------------------------------


def verify(secret: str, sent: dict[str, object]) -> None:
    """What a receiver does with the official Standard Webhooks library."""
    headers = sent["headers"]
    assert isinstance(headers, dict) and isinstance(sent["body"], bytes)
    Webhook(secret).verify(sent["body"], headers, json_parse=False)


NEW, OLD = "whsec_" + "bmV3LXNlY3JldC1ieXRlcy0xMjM0NTY3ODkwMTIzNA==", "whsec_c1"


# -- one sequence: later completions (an audit rejected the task) and redeliveries ---------


def recompleted(number: int) -> TaskCompleted:
    """The task's `number`-th completion (after `number - 1` rejections in an audit)."""
    event = completion(response={"category": f"answer {number}", "status_code": 200})
    return event.model_copy(update={"completion": number})


async def test_each_completion_and_each_redelivery_is_one_delivery_in_one_sequence() -> None:
    world = World()
    await world.completed()  # the first completion: delivery 1, keyed by the task id
    second = recompleted(2)
    await world.completed(second)  # rejected in an audit, completed again: delivery 2
    assert await redeliver(world) == 3  # the customer asks again: delivery 3
    await redelivery_due(world, 3)
    for _ in range(2):  # the second completion's event, and the first's, delivered again
        await world.completed(second)
        await world.completed()
    sent = world.sender.sent
    assert [s["headers"]["X-Callback-Delivery"] for s in sent] == ["1", "2", "3"]
    # A new completion is a new message; a redelivery sends the latest one again.
    assert [s["headers"]["webhook-id"] for s in sent] == [TASK_ID, f"{TASK_ID}.2", f"{TASK_ID}.2"]
    assert sent[2]["body"] == sent[1]["body"] != sent[0]["body"]
    assert b"response[category]=answer+2" in sent[2]["body"]
    assert [(a["attempt"], a.get("delivery")) for a in await public_log(world)] == [
        (1, None),
        (1, 2),
        (1, 3),
    ]


async def test_a_later_completion_takes_the_number_after_any_redelivery() -> None:
    world = World()
    await world.completed()
    assert await redeliver(world) == 2
    await redelivery_due(world, 2)
    await world.completed(recompleted(2))  # after delivery 2, a redelivery: delivery 3
    await world.completed(recompleted(3))  # and the third completion: delivery 4
    sent = world.sender.sent
    assert [s["headers"]["X-Callback-Delivery"] for s in sent] == ["1", "2", "3", "4"]
    assert [s["headers"]["webhook-id"] for s in sent] == [
        TASK_ID,
        TASK_ID,
        f"{TASK_ID}.3",
        f"{TASK_ID}.4",
    ]
    delivery = await world.deliveries.of_completion(TASK_ID, 3)
    assert delivery is not None and (delivery.number, delivery.origin) == (4, "completion")


async def test_a_later_completion_whose_event_comes_first_never_takes_the_first_number() -> None:
    world = World()
    await world.completed(recompleted(2))
    await world.completed()  # the first completion's event, late
    assert [s["headers"]["webhook-id"] for s in world.sender.sent] == [f"{TASK_ID}.2", TASK_ID]
    assert [s["headers"]["X-Callback-Delivery"] for s in world.sender.sent] == ["2", "1"]


async def test_a_completion_numbered_by_a_notifier_that_stopped_keeps_its_number() -> None:
    """The record was written, nothing was sent (the task-store did not answer for the
    secret, or the process died): the event, delivered again, finds the record and sends
    that delivery, not a new one."""
    world = World()
    await world.completed()
    world.secrets.error = Unavailable("task-store down")
    with pytest.raises(Unavailable):
        await world.completed(recompleted(2))
    assert await world.deliveries.last_number(TASK_ID) == 2
    world.secrets.error = None
    await world.completed(recompleted(2))
    assert await world.deliveries.last_number(TASK_ID) == 2
    assert [s["headers"]["X-Callback-Delivery"] for s in world.sender.sent] == ["1", "2"]


async def test_two_notifiers_numbering_one_completion_at_once_make_one_delivery() -> None:
    """Both read the same highest number; the second's insert of the next loses, and it
    finds the first's record."""
    world = World()
    await world.completed()
    deliveries = world.deliveries
    real_of_completion = deliveries.of_completion
    looked = 0

    async def late_look(task_id: str, completion_number: int) -> domain.Delivery | None:
        nonlocal looked
        looked += 1
        if looked == 1:  # the other notifier numbers it between our read and our look
            await handlers.completion_delivery(recompleted(2), world.deps)
        return await real_of_completion(task_id, completion_number)

    deliveries.of_completion = late_look  # type: ignore[method-assign]
    assert await handlers.completion_delivery(recompleted(2), world.deps) == f"{TASK_ID}.2"
    assert sorted(deliveries.deliveries) == [TASK_ID, f"{TASK_ID}.2"]


async def test_a_redelivery_is_refused_while_a_later_completion_is_being_delivered() -> None:
    world = World(sender=FakeSender([SendResult(status_code=200), fail()]))
    await world.completed()
    await world.completed(recompleted(2))  # its first attempt failed: its retry waits
    with pytest.raises(Conflict, match="still being delivered"):
        await redeliver(world)


async def test_the_operator_redelivers_a_batchs_failed_callback() -> None:
    world = World(sender=FakeSender([fail(), fail()]))
    key = "batch-" + "ab" * 12
    stamped = stamp(batch_completion(), utcnow())
    await world.deliver(
        NOTIFIER_BATCH_COMPLETIONS_QUEUE, "completed", "batch.completed", stamped.body.encode()
    )
    body = RetryDue(task_id=key, delivery=1).model_dump_json().encode()
    await world.deliver(CALLBACK_RETRY_QUEUE, "retry_due", "callback.retry_due", body)
    failed = await list_failed_callbacks(
        ListFailedCallbacks(since=utcnow() - timedelta(minutes=1)), world.deps
    )
    assert [(f.task_id, f.delivery) for f in failed.callbacks] == [(key, 1)]
    answer = await redeliver_callback(RedeliverCallback(task_id=key), world.deps)
    assert answer.delivery == 2
    body = RedeliveryDue(task_id=key, delivery=2).model_dump_json().encode()
    await world.deliver(CALLBACK_RETRY_QUEUE, "retry_due", "callback.redelivery_due", body)
    *_, again = world.sender.sent
    assert again["headers"]["webhook-id"] == key and again["headers"]["X-Callback-Batch"] == "b 1"
    assert (
        again["headers"]["X-Callback-Delivery"] == "2"
        and again["body"] == world.sender.sent[0]["body"]
    )


async def test_during_the_overlap_a_receiver_with_either_secret_verifies_the_callback() -> None:
    secrets = FakeSigningKeys(overlapping={"c1": (NEW, utcnow() + timedelta(hours=1))})
    world = World(secrets=secrets)
    await world.completed()
    (sent,) = world.sender.sent
    assert len(sent["headers"]["webhook-signature"].split(" ")) == 2
    verify(OLD, sent)  # the current secret (the fake's `whsec_<customer>`)
    verify(NEW, sent)  # the replaced one, still signing


async def test_after_the_overlap_only_the_current_secret_verifies() -> None:
    secrets = FakeSigningKeys(overlapping={"c1": (NEW, utcnow() - timedelta(seconds=1))})
    world = World(secrets=secrets)
    await world.completed()
    (sent,) = world.sender.sent
    assert " " not in sent["headers"]["webhook-signature"]
    verify(OLD, sent)
    with pytest.raises(WebhookVerificationError):
        verify(NEW, sent)


def test_signing_secrets_drop_the_replaced_one_when_its_window_ends() -> None:
    now = utcnow()
    secrets = domain.SigningSecrets("whsec_a", "whsec_b", now + timedelta(seconds=5))
    assert secrets.at(now) == ("whsec_a", "whsec_b")
    assert secrets.at(now + timedelta(seconds=5)) == ("whsec_a",)
    assert domain.SigningSecrets("whsec_a").at(now) == ("whsec_a",)


def test_a_delivery_is_keyed_by_its_task_and_number() -> None:
    assert domain.delivery_id("t", 1) == "t"  # as every record made before redeliveries
    assert domain.delivery_id("t", 3) == "t.3"


def test_a_redelivery_needs_the_latest_delivery_finished() -> None:
    now = utcnow()
    fresh = domain.new_delivery(completion(), now)
    with pytest.raises(domain.NotRedeliverable):
        domain.redelivery(fresh, now, None)
    delivered = domain.finish(domain.next_attempt(fresh, now), 200, None)
    again = domain.redelivery(replace(fresh, attempts=(delivered,)), now, "req-1")
    assert (again.number, again.attempts, again.retry_scheduled) == (2, (), False)
    assert (again.delivery_id, again.task) == (f"{fresh.task_id}.2", fresh.task)
    assert again.request_id == "req-1"
    assert domain.next_attempt(again, now).delivery == 2
