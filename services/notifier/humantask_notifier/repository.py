"""MongoDB adapter: the notifier's own delivery records.

- `callback_deliveries`, `_id` = task id: what to send (the task, kept as JSON text since
  customer `metadata` keys may hold `.` or `$`), to whom, and whether the retry is queued.
- `callback_attempts`, `_id` = `<task id>:<attempt>`: one per claimed attempt, with its
  outcome once known. Inserting it *is* the claim: a second insert of the same id fails,
  so one attempt number is sent by one process only. These records are the customer's
  callback log: they stay, for TASK_RETENTION_DAYS when it is set (`retention`).
"""

from __future__ import annotations

import contextlib
from typing import Any

import orjson
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from humantask_shared.core.timeutil import as_utc, utcnow
from humantask_shared.runtime.mongo import Document

from .domain import Attempt, Delivery

DELIVERIES = "callback_deliveries"
ATTEMPTS = "callback_attempts"


# A delivery record (a copy of the task to send) is only needed until its last attempt;
# a week is far past any retry. A redelivered event after that finds the attempts, which
# stay, and sends nothing.
DELIVERY_RECORD_TTL_SECONDS = 7 * 24 * 3600


async def ensure_indexes(db: AsyncDatabase[Document]) -> None:
    await db[ATTEMPTS].create_index([("task_id", ASCENDING), ("attempt", ASCENDING)])
    await db[DELIVERIES].create_index(
        [("created_at", ASCENDING)], expireAfterSeconds=DELIVERY_RECORD_TTL_SECONDS
    )


def _attempt_id(task_id: str, number: int) -> str:
    return f"{task_id}:{number}"


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
    )


def _document_to_delivery(doc: dict[str, Any], attempts: list[Attempt]) -> Delivery:
    return Delivery(
        task_id=doc["_id"],
        customer_id=doc["customer_id"],
        callback_format=doc["callback_format"],
        task=orjson.loads(doc["task_json"]),
        attempts=tuple(sorted(attempts, key=lambda attempt: attempt.number)),
        retry_scheduled=bool(doc.get("retry_scheduled")),
        request_id=doc.get("request_id"),
        created_at=as_utc(doc["created_at"]) if doc.get("created_at") else None,
    )


class DeliveryRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._deliveries = db[DELIVERIES]
        self._attempts = db[ATTEMPTS]

    async def get(self, task_id: str) -> Delivery | None:
        doc = await self._deliveries.find_one({"_id": task_id})
        if doc is None:
            return None
        return _document_to_delivery(doc, await self._claimed(task_id))

    async def _claimed(self, task_id: str) -> list[Attempt]:
        cursor = self._attempts.find({"task_id": task_id}).sort("attempt", ASCENDING)
        return [_document_to_attempt(doc) async for doc in cursor]

    async def create(self, delivery: Delivery) -> None:
        """Store a new delivery (its attempts are claimed separately); a second is a no-op."""
        with contextlib.suppress(DuplicateKeyError):
            await self._deliveries.insert_one(
                {
                    "_id": delivery.task_id,
                    "customer_id": delivery.customer_id,
                    "callback_url": delivery.callback_url,
                    "callback_format": delivery.callback_format,
                    "task_json": orjson.dumps(delivery.task).decode(),
                    "retry_scheduled": delivery.retry_scheduled,
                    "request_id": delivery.request_id,
                    "created_at": delivery.created_at or utcnow(),
                }
            )

    async def claim(self, delivery: Delivery, attempt: Attempt) -> bool:
        """Claim `attempt` of the delivery; False if another process already did."""
        try:
            await self._attempts.insert_one(
                {
                    "_id": _attempt_id(delivery.task_id, attempt.number),
                    "task_id": delivery.task_id,
                    "customer_id": delivery.customer_id,
                    "attempt": attempt.number,
                    "at": attempt.at,
                    **_outcome_fields(attempt),
                }
            )
        except DuplicateKeyError:
            return False
        return True

    async def finish(self, task_id: str, attempt: Attempt) -> bool:
        """Record a claimed attempt's outcome; False if it was recorded already."""
        result = await self._attempts.update_one(
            {"_id": _attempt_id(task_id, attempt.number), "finished": False},
            {"$set": {**_outcome_fields(attempt), "finished_at": utcnow()}},
        )
        return result.modified_count == 1

    async def mark_retry_scheduled(self, task_id: str) -> None:
        await self._deliveries.update_one({"_id": task_id}, {"$set": {"retry_scheduled": True}})

    async def log(self, task_id: str, customer_id: str) -> list[Attempt]:
        """The customer's log of a task: its finished attempts, oldest first."""
        cursor = self._attempts.find(
            {"task_id": task_id, "customer_id": customer_id, "finished": True}
        ).sort("attempt", ASCENDING)
        return [_document_to_attempt(doc) async for doc in cursor]
