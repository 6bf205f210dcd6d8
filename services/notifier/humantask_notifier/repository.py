"""MongoDB adapter: the notifier's own delivery records.

- `callback_deliveries`, `_id` = delivery id (`domain.delivery_id`: the task id for a
  task's first delivery, `<task id>.<n>` for delivery n: a later completion's or a
  redelivery; `batch-<batch id>` for a batch's): what to send (the task, kept as JSON
  text since customer `metadata` keys may hold `.` or `$`), to whom, whether the retry is
  queued, which completion it carries and what started it (`origin`), and its message's
  `webhook-id` when not its own key. Records made before redeliveries have no `task_id`
  or `number` field: their `_id` is the task id and they are delivery 1; redeliveries
  recorded before later completions have no `origin` and keep the task id as their
  message's id.
- `callback_attempts`, `_id` = `<delivery id>:<attempt>`: one per claimed attempt, with
  its outcome once known (and `delivery`, its delivery's number: 1 when absent).
  Inserting it *is* the claim: a second insert of the same id fails, so one attempt
  number is sent by one process only. These records are the customer's callback log:
  they stay, for TASK_RETENTION_DAYS when it is set (`retention`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from humantask_shared.core.timeutil import as_utc, utcnow
from humantask_shared.runtime.mongo import Document

from .domain import MAX_ATTEMPTS, Attempt, Delivery

DELIVERIES = "callback_deliveries"
ATTEMPTS = "callback_attempts"


# A delivery record (a copy of the task to send) is needed until its last attempt, and
# for redeliveries after it: a task's callback can be redelivered for a week after its
# latest delivery. A redelivered event after that finds the attempts, which stay, and
# sends nothing.
DELIVERY_RECORD_TTL_SECONDS = 7 * 24 * 3600


async def ensure_indexes(db: AsyncDatabase[Document]) -> None:
    await db[ATTEMPTS].create_index([("task_id", ASCENDING), ("attempt", ASCENDING)])
    # `callbacks failed --since`: the failed last attempts, by time.
    await db[ATTEMPTS].create_index(
        [("attempt", ASCENDING), ("delivered", ASCENDING), ("at", ASCENDING)]
    )
    await db[DELIVERIES].create_index(
        [("created_at", ASCENDING)], expireAfterSeconds=DELIVERY_RECORD_TTL_SECONDS
    )
    await db[DELIVERIES].create_index([("task_id", ASCENDING), ("number", ASCENDING)])


def _attempt_id(delivery_id: str, number: int) -> str:
    return f"{delivery_id}:{number}"


def _outcome_fields(attempt: Attempt) -> dict[str, Any]:
    return {
        "finished": attempt.finished,
        "status_code": attempt.status_code,
        "error": attempt.error,
        "delivered": attempt.delivered,
    }


def _document_to_attempt(doc: dict[str, Any]) -> Attempt:
    return Attempt(
        number=doc["attempt"],
        at=as_utc(doc["at"]),
        finished=bool(doc.get("finished")),
        status_code=doc.get("status_code"),
        error=doc.get("error"),
        delivery=int(doc.get("delivery", 1)),
    )


def _document_to_delivery(doc: dict[str, Any], attempts: list[Attempt]) -> Delivery:
    task_id = doc.get("task_id", doc["_id"])
    number = int(doc.get("number", 1))
    if "origin" in doc:
        origin, message_id = doc["origin"], doc.get("message_id")
    else:  # recorded before later completions: a delivery after the first redelivered it
        origin = "completion" if number == 1 else "redelivery"
        message_id = None if number == 1 else task_id
    return Delivery(
        task_id=task_id,
        number=number,
        origin=origin,
        message_id=message_id,
        customer_id=doc["customer_id"],
        callback_format=doc["callback_format"],
        task=orjson.loads(doc["task_json"]),
        attempts=tuple(sorted(attempts, key=lambda attempt: attempt.number)),
        retry_scheduled=bool(doc.get("retry_scheduled")),
        request_id=doc.get("request_id"),
        created_at=as_utc(doc["created_at"]) if doc.get("created_at") else None,
        completion=doc.get("completion", 1),
        subject=doc.get("subject", "task"),
    )


def _log_order(attempt: Attempt) -> tuple[int, int]:
    return attempt.delivery, attempt.number


class DeliveryRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._deliveries = db[DELIVERIES]
        self._attempts = db[ATTEMPTS]

    async def get(self, delivery_id: str) -> Delivery | None:
        doc = await self._deliveries.find_one({"_id": delivery_id})
        if doc is None:
            return None
        return _document_to_delivery(doc, await self._claimed(delivery_id))

    async def latest(self, task_id: str) -> Delivery | None:
        """The task's delivery of the highest number: a redelivery's record names its
        task, the first delivery's is keyed by it (and older ones name nothing else)."""
        newest = await self._deliveries.find_one(
            {"task_id": task_id}, sort=[("number", DESCENDING)]
        )
        if newest is None:
            return await self.get(task_id)
        return _document_to_delivery(newest, await self._claimed(newest["_id"]))

    async def last_number(self, task_id: str) -> int:
        """The highest delivery number of the task on record: its delivery records' (a
        first delivery's made before numbers were is 1), or its attempts', which outlive
        the records (DELIVERY_RECORD_TTL_SECONDS)."""
        numbers = [0]
        newest = await self._deliveries.find_one(
            {"task_id": task_id}, {"number": 1}, sort=[("number", DESCENDING)]
        )
        if newest is not None:
            numbers.append(int(newest.get("number", 1)))
        elif await self._deliveries.find_one({"_id": task_id}, {"_id": 1}) is not None:
            numbers.append(1)
        async for doc in self._attempts.find({"task_id": task_id}, {"delivery": 1}):
            numbers.append(int(doc.get("delivery", 1)))
        return max(numbers)

    async def of_completion(self, task_id: str, completion: int) -> Delivery | None:
        if completion <= 1:
            return await self.get(task_id)
        doc = await self._deliveries.find_one(
            {"task_id": task_id, "completion": completion, "origin": "completion"}
        )
        if doc is None:
            return None
        return _document_to_delivery(doc, await self._claimed(doc["_id"]))

    async def _claimed(self, delivery_id: str) -> list[Attempt]:
        ids = [_attempt_id(delivery_id, number) for number in range(1, MAX_ATTEMPTS + 1)]
        cursor = self._attempts.find({"_id": {"$in": ids}})
        return [_document_to_attempt(doc) async for doc in cursor]

    async def create(self, delivery: Delivery) -> bool:
        """Store a new delivery (its attempts are claimed separately); False, and nothing
        written, when its id is taken."""
        try:
            await self._deliveries.insert_one(
                {
                    "_id": delivery.delivery_id,
                    "task_id": delivery.task_id,
                    "number": delivery.number,
                    "completion": delivery.completion,
                    "origin": delivery.origin,
                    "subject": delivery.subject,
                    "message_id": delivery.message_id,
                    "customer_id": delivery.customer_id,
                    "callback_url": delivery.callback_url,
                    "callback_format": delivery.callback_format,
                    "task_json": orjson.dumps(delivery.task).decode(),
                    "retry_scheduled": delivery.retry_scheduled,
                    "request_id": delivery.request_id,
                    "created_at": delivery.created_at or utcnow(),
                }
            )
        except DuplicateKeyError:
            return False
        return True

    async def claim(self, delivery: Delivery, attempt: Attempt) -> bool:
        """Claim `attempt` of the delivery; False if another process already did."""
        try:
            await self._attempts.insert_one(
                {
                    "_id": _attempt_id(delivery.delivery_id, attempt.number),
                    "task_id": delivery.task_id,
                    "delivery": delivery.number,
                    "completion": delivery.completion,
                    "customer_id": delivery.customer_id,
                    "attempt": attempt.number,
                    "at": attempt.at,
                    **_outcome_fields(attempt),
                }
            )
        except DuplicateKeyError:
            return False
        return True

    async def finish(self, delivery_id: str, attempt: Attempt) -> bool:
        """Record a claimed attempt's outcome; False if it was recorded already."""
        result = await self._attempts.update_one(
            {"_id": _attempt_id(delivery_id, attempt.number), "finished": False},
            {"$set": {**_outcome_fields(attempt), "finished_at": utcnow()}},
        )
        return result.modified_count == 1

    async def mark_retry_scheduled(self, delivery_id: str) -> None:
        await self._deliveries.update_one({"_id": delivery_id}, {"$set": {"retry_scheduled": True}})

    async def log(self, task_id: str, customer_id: str) -> list[Attempt]:
        """The customer's log of a task: the finished attempts of all its deliveries,
        oldest first."""
        cursor = self._attempts.find(
            {"task_id": task_id, "customer_id": customer_id, "finished": True}
        )
        return sorted([_document_to_attempt(doc) async for doc in cursor], key=_log_order)

    async def failed(
        self, since: datetime, customer_id: str | None, limit: int
    ) -> list[tuple[Delivery, Attempt]]:
        """Deliveries whose second attempt failed at `since` or later and that are still
        their task's latest (a redelivery since replaced them otherwise), oldest first."""
        query: dict[str, Any] = {
            "attempt": MAX_ATTEMPTS,
            "delivered": False,
            "finished": True,
            "at": {"$gte": since},
        }
        if customer_id is not None:
            query["customer_id"] = customer_id
        found: list[tuple[Delivery, Attempt]] = []
        cursor = self._attempts.find(query).sort("at", ASCENDING)
        async for doc in cursor:
            attempt = _document_to_attempt(doc)
            latest = await self.latest(doc["task_id"])
            if latest is None or latest.number != attempt.delivery:
                continue  # redelivered since, or its record expired (nothing to resend)
            found.append((latest, attempt))
            if len(found) >= limit:
                break
        return found
