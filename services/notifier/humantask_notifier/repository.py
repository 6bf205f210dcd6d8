"""MongoDB adapter: the notifier's own delivery records, one document per task.

Collection `callback_deliveries`, `_id` = task id. A record is created once (the claim of
attempt 1: a second insert fails on `_id`) and then changed only by compare-and-set on
its `version`, so two notifier processes can never both make the same transition.
The task is kept as JSON text: customer `metadata` keys may hold `.` or `$`.
FerretDB v1 is a supported backend: no projection in find-and-modify, no transactions.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from humantask_shared.timeutil import as_utc, utcnow

from .domain import Delivery, Outcome

DELIVERIES = "callback_deliveries"


def _outcome_to_document(outcome: Outcome) -> dict[str, Any]:
    return {
        "attempt": outcome.attempt,
        "at": outcome.at,
        "status_code": outcome.status_code,
        "error": outcome.error,
        "delivered": outcome.delivered,
    }


def _document_to_outcome(doc: dict[str, Any]) -> Outcome:
    return Outcome(
        attempt=doc["attempt"],
        at=as_utc(doc["at"]),
        status_code=doc.get("status_code"),
        error=doc.get("error"),
    )


def _changing_fields(delivery: Delivery) -> dict[str, Any]:
    return {
        "state": delivery.state,
        "attempt": delivery.attempt,
        "claimed_at": delivery.claimed_at,
        "retry_scheduled": delivery.retry_scheduled,
        "log": [_outcome_to_document(outcome) for outcome in delivery.log],
    }


def _delivery_to_document(delivery: Delivery) -> dict[str, Any]:
    return {
        "_id": delivery.task_id,
        "customer_id": delivery.customer_id,
        "callback_url": delivery.callback_url,
        "callback_format": delivery.callback_format,
        "task_json": orjson.dumps(delivery.task).decode(),
        "request_id": delivery.request_id,
        "created_at": delivery.created_at,
        "updated_at": delivery.claimed_at,
        "version": delivery.version,
        **_changing_fields(delivery),
    }


def _document_to_delivery(doc: dict[str, Any]) -> Delivery:
    return Delivery(
        task_id=doc["_id"],
        customer_id=doc["customer_id"],
        callback_format=doc["callback_format"],
        task=orjson.loads(doc["task_json"]),
        state=doc["state"],
        attempt=doc["attempt"],
        claimed_at=as_utc(doc["claimed_at"]),
        log=tuple(_document_to_outcome(entry) for entry in doc.get("log") or []),
        retry_scheduled=bool(doc.get("retry_scheduled")),
        version=doc.get("version", 0),
        request_id=doc.get("request_id"),
        created_at=as_utc(doc["created_at"]) if doc.get("created_at") else None,
    )


class DeliveryRepository:
    def __init__(self, db: AsyncDatabase) -> None:
        self._deliveries = db[DELIVERIES]

    async def get(self, task_id: str) -> Delivery | None:
        doc = await self._deliveries.find_one({"_id": task_id})
        return None if doc is None else _document_to_delivery(doc)

    async def create(self, delivery: Delivery) -> bool:
        """Store a new delivery; False if the task has one already (someone claimed it)."""
        try:
            await self._deliveries.insert_one(_delivery_to_document(delivery))
        except DuplicateKeyError:
            return False
        return True

    async def save(self, before: Delivery, after: Delivery) -> Delivery | None:
        """Write `after` if the record is still `before`; the stored delivery, or None if
        another process changed it first (then nothing is written)."""
        version = before.version + 1
        result = await self._deliveries.update_one(
            {"_id": before.task_id, "version": before.version},
            {"$set": {**_changing_fields(after), "version": version, "updated_at": utcnow()}},
        )
        return replace(after, version=version) if result.modified_count == 1 else None

    async def attempts(self, task_id: str, customer_id: str) -> list[Outcome]:
        """The customer's log of a task, oldest first; empty without a delivery."""
        doc = await self._deliveries.find_one({"_id": task_id, "customer_id": customer_id})
        if doc is None:
            return []
        return sorted(_document_to_delivery(doc).log, key=lambda outcome: outcome.attempt)
