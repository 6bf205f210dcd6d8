"""The notifier's delivery records against a real MongoDB-protocol server (FerretDB or
MongoDB): claims are exclusive even when processes race for them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import orjson
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from humantask_notifier import domain
from humantask_notifier.domain import Attempt, Delivery
from humantask_notifier.repository import (
    ATTEMPTS,
    DELIVERIES,
    DELIVERY_RECORD_TTL_SECONDS,
    DeliveryRepository,
    ensure_indexes,
)
from humantask_shared.core.messages.events import TaskCompleted
from humantask_shared.core.models import Task
from tests.support.callbacks import SEED_TASK

T0 = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


@pytest.fixture
async def db(fresh_database) -> AsyncIterator[AsyncDatabase]:
    async for database in fresh_database(ensure_indexes):
        yield database


@pytest.fixture
def repo(db: AsyncDatabase) -> DeliveryRepository:
    return DeliveryRepository(db)


def new_delivery(task_id: str | None = None, customer_id: str = "c1") -> Delivery:
    task = Task.model_validate(
        {
            **SEED_TASK,
            "task_id": task_id or uuid.uuid4().hex[:24],
            # Keys MongoDB-likes refuse as field names: kept as JSON text, they survive.
            "metadata": {"a.b": {"$c": [1, None, {"d": True}]}},
        }
    )
    event = TaskCompleted(
        customer_id=customer_id, callback_format="json", task=task, request_id="req-1"
    )
    return domain.new_delivery(event, T0)


async def test_a_delivery_round_trips_with_its_task(repo: DeliveryRepository) -> None:
    delivery = new_delivery()
    assert await repo.get(delivery.task_id) is None
    await repo.create(delivery)
    await repo.create(new_delivery(delivery.task_id, customer_id="someone else"))  # no-op
    stored = await repo.get(delivery.task_id)
    assert stored == delivery
    assert stored is not None and stored.request_id == "req-1" and stored.created_at == T0


async def test_an_attempt_is_claimed_once_even_by_racing_processes(
    repo: DeliveryRepository,
) -> None:
    delivery = new_delivery()
    await repo.create(delivery)
    wins = await asyncio.gather(*[repo.claim(delivery, Attempt(1, T0)) for _ in range(20)])
    assert wins.count(True) == 1
    assert await repo.claim(delivery, Attempt(2, T0)) is True
    assert await repo.claim(delivery, Attempt(2, T0)) is False


async def test_outcomes_make_the_customers_log(repo: DeliveryRepository) -> None:
    delivery = new_delivery()
    await repo.create(delivery)
    first = Attempt(1, T0)
    await repo.claim(delivery, first)
    assert await repo.log(delivery.task_id, "c1") == []  # in progress: not logged yet
    assert (await repo.get(delivery.task_id)).state == "attempting"  # type: ignore[union-attr]

    failed = domain.finish(first, 503, None)
    assert await repo.finish(delivery.task_id, failed) is True
    assert await repo.finish(delivery.task_id, domain.interrupted(first)) is False  # once
    second = Attempt(2, T0.replace(second=9))
    await repo.claim(delivery, second)
    await repo.finish(delivery.task_id, domain.finish(second, None, "timed out after 1 s"))

    assert await repo.log(delivery.task_id, "c1") == [
        failed,
        domain.finish(second, None, "timed out after 1 s"),
    ]
    assert await repo.log(delivery.task_id, "another customer") == []
    stored = await repo.get(delivery.task_id)
    assert stored is not None and stored.state == "failed"


async def test_the_retry_flag_sticks(repo: DeliveryRepository) -> None:
    delivery = new_delivery()
    await repo.create(delivery)
    await repo.mark_retry_scheduled(delivery.task_id)
    stored = await repo.get(delivery.task_id)
    assert stored is not None and stored.retry_scheduled


async def test_delivery_records_expire_and_the_attempt_log_stays(db: AsyncDatabase) -> None:
    """A delivery (a copy of the task to send) lives a week through a TTL index; the
    attempts, the customer's callback log, have none."""
    deliveries = await db[DELIVERIES].index_information()
    ttls = {
        tuple(spec["key"]): spec["expireAfterSeconds"]
        for spec in deliveries.values()
        if "expireAfterSeconds" in spec
    }
    assert ttls == {(("created_at", 1),): DELIVERY_RECORD_TTL_SECONDS}
    attempts = await db[ATTEMPTS].index_information()
    assert not any("expireAfterSeconds" in spec for spec in attempts.values())


async def test_records_made_before_redeliveries_read_as_the_first_delivery(
    db: AsyncDatabase, repo: DeliveryRepository
) -> None:
    """A delivery record keyed by its task id alone, and attempts without a `delivery`, as
    every notifier before redeliveries wrote them: read, logged and redelivered alike."""
    delivery = new_delivery()
    task_id = delivery.task_id
    await db[DELIVERIES].insert_one(
        {
            "_id": task_id,
            "customer_id": "c1",
            "callback_url": delivery.callback_url,
            "callback_format": "json",
            "task_json": orjson.dumps(delivery.task).decode(),
            "retry_scheduled": True,
            "request_id": None,
            "created_at": T0,
        }
    )
    for number in (1, 2):
        await db[ATTEMPTS].insert_one(
            {
                "_id": f"{task_id}:{number}",
                "task_id": task_id,
                "customer_id": "c1",
                "attempt": number,
                "at": T0,
                "finished": True,
                "status_code": 500,
                "error": "the receiver answered 500, not 200",
                "delivered": False,
            }
        )
    latest = await repo.latest(task_id)
    assert latest is not None and (latest.number, latest.state) == (1, "failed")
    assert [a.delivery for a in await repo.log(task_id, "c1")] == [1, 1]
    [(failed, _)] = await repo.failed(T0, None, 10)
    assert failed.delivery_id == task_id
    second = domain.redelivery(latest, T0, None)
    assert await repo.create(second)
    newest = await repo.latest(task_id)
    assert newest is not None and newest.number == 2
