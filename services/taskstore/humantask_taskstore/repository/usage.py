"""Each customer's usage (pending tasks, bytes of tasks stored) against its quotas, kept
race-safe without transactions (docs/operations/hardening.md, "Quotas").

One counter document per customer in `customer_usage`: `pending` and `bytes`, the
customer's own limits when the operator set them (`pending_limit`, `bytes_limit`), and
`seq`/`changed_at`, bumped by every change. A new task *reserves* before it is inserted:
one conditional `$inc` whose filter says there is room (`pending < limit`,
`bytes <= limit - size`), so concurrent creates can never pass a quota together. A
task that leaves `pending` (completed, canceled) and a task deleted by retention give
back what they held.

What a crash can leave is only ever too much counted (a reservation whose insert never
happened, a change whose give-back did not follow): a customer is refused early, never
let past its quota. `reconcile` corrects it from the tasks themselves, for customers
quiet for a while (no reservation can be in flight then) and changed since it last did.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from humantask_shared.core.errors import QuotaExceeded, StorageQuotaExceeded
from humantask_shared.core.messages.quotas import CustomerQuota, QuotaSetting
from humantask_shared.runtime.mongo import Document

from .documents import TASKS
from .indexes import LIST_BY_STATUS_INDEX, LIST_INDEX

USAGE = "customer_usage"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Tries of a reservation that meets a changing counter (limits set meanwhile).
RESERVE_ATTEMPTS = 3


@dataclass(frozen=True)
class QuotaLimits:
    """The defaults: what a customer without limits of its own may have; 0 is no limit."""

    pending_tasks: int = 1_000_000
    stored_bytes: int = 10 * 1024**3


def _own_limits(doc: dict[str, Any]) -> tuple[int | None, int | None]:
    """The customer's own limits (None: the default)."""
    return doc.get("pending_limit"), doc.get("bytes_limit")


def _limit(doc: dict[str, Any], field: str, default: int) -> int:
    value = doc.get(field)
    return default if value is None else int(value)


class CustomerUsage:
    def __init__(self, db: AsyncDatabase[Document], defaults: QuotaLimits) -> None:
        self._usage = db[USAGE]
        self._tasks = db[TASKS]
        self._defaults = defaults
        # Each customer's own limits as last read: the usual reservation is one write
        # (a limit set since makes it miss, and it is read again).
        self._seen: dict[str, tuple[int | None, int | None]] = {}

    async def reserve(self, customer_id: str, now: datetime, count: int, size: int) -> None:
        """Count `count` new pending tasks of `size` bytes together, or raise
        `QuotaExceeded` (pending tasks) or `StorageQuotaExceeded` (bytes) and count
        nothing."""
        own = self._seen.get(customer_id)
        if own is None:
            own = _own_limits(await self._current(customer_id))
        for _ in range(RESERVE_ATTEMPTS):
            pending_limit, bytes_limit = self._effective(own)
            # Room for them under the limits decided on (set meanwhile: no match).
            room: dict[str, Any] = {
                "_id": customer_id,
                "pending_limit": own[0],
                "bytes_limit": own[1],
            }
            if pending_limit:
                room["pending"] = {"$lte": pending_limit - count}
            if bytes_limit:
                room["bytes"] = {"$lte": bytes_limit - size}
            reserved = await self._usage.update_one(room, self._change(count, size, now))
            if reserved.matched_count:
                self._seen[customer_id] = own
                return
            doc = await self._current(customer_id)
            if _own_limits(doc) != own:  # the limits changed: try again with them
                own = _own_limits(doc)
                continue
            if pending_limit and doc["pending"] + count > pending_limit:
                raise QuotaExceeded(
                    f"quota: this customer has {doc['pending']} pending tasks and its "
                    f"pending-tasks quota is {pending_limit}; retry once some are completed "
                    "or canceled"
                )
            if bytes_limit and doc["bytes"] + size > bytes_limit:
                raise StorageQuotaExceeded(
                    f"quota: this customer's tasks take {doc['bytes']} bytes and would take "
                    f"{size} more, past its stored-bytes quota of {bytes_limit}"
                )
            # Room again (a task finished meanwhile): try again.
        raise QuotaExceeded("quota: the customer's usage is changing fast; retry in a moment")

    def _effective(self, own: tuple[int | None, int | None]) -> tuple[int, int]:
        pending, stored = own
        return (
            self._defaults.pending_tasks if pending is None else pending,
            self._defaults.stored_bytes if stored is None else stored,
        )

    async def give_back(self, customer_id: str, pending: int, size: int, now: datetime) -> None:
        """Count `pending` fewer pending tasks and `size` fewer bytes."""
        await self._usage.update_one({"_id": customer_id}, self._change(-pending, -size, now))

    async def quota(self, customer_id: str) -> CustomerQuota:
        return self._quota(customer_id, await self._current(customer_id))

    async def set_quota(
        self, customer_id: str, pending_tasks: QuotaSetting, stored_bytes: QuotaSetting
    ) -> CustomerQuota:
        await self._current(customer_id)
        changes: dict[str, Any] = {}
        for setting, field in ((pending_tasks, "pending_limit"), (stored_bytes, "bytes_limit")):
            if setting is not None:
                changes[field] = None if setting == "default" else setting
        if changes:
            await self._usage.update_one({"_id": customer_id}, {"$set": changes})
        return await self.quota(customer_id)

    async def reconcile(self, now: datetime, quiet: timedelta) -> int:
        """Set each counter that changed since it was last reconciled, and not within
        `quiet`, to what its customer's tasks say; how many were wrong. A change
        meanwhile (`seq`) leaves a counter for the next round."""
        corrected = 0
        cursor = self._usage.find({"changed_at": {"$lt": now - quiet}})
        async for doc in cursor:
            if doc.get("reconciled_at") is not None and doc["reconciled_at"] >= doc["changed_at"]:
                continue
            pending, stored = await self._measure(doc["_id"])
            result = await self._usage.update_one(
                {"_id": doc["_id"], "seq": doc["seq"]},
                {"$set": {"pending": pending, "bytes": stored, "reconciled_at": now}},
            )
            if result.modified_count and (pending, stored) != (doc["pending"], doc["bytes"]):
                corrected += 1
        return corrected

    async def _current(self, customer_id: str) -> dict[str, Any]:
        """The customer's counter, started from its tasks the first time: its pending
        tasks counted; bytes from 0, since tasks stored before quotas existed count none
        (reconcile sums what the others hold)."""
        doc = await self._usage.find_one({"_id": customer_id})
        if doc is not None:
            return doc
        pending = await self._tasks.count_documents(
            {"customer_id": customer_id, "status": "pending"}, hint=LIST_BY_STATUS_INDEX
        )
        start = {
            "_id": customer_id,
            "pending": pending,
            "bytes": 0,
            "seq": 0,
            "changed_at": EPOCH,
            "pending_limit": None,
            "bytes_limit": None,
        }
        try:
            await self._usage.insert_one(start)
        except DuplicateKeyError:  # another create started it at the same moment
            found = await self._usage.find_one({"_id": customer_id})
            assert found is not None
            return found
        return start

    async def _measure(self, customer_id: str) -> tuple[int, int]:
        pending = await self._tasks.count_documents(
            {"customer_id": customer_id, "status": "pending"}, hint=LIST_BY_STATUS_INDEX
        )
        total = 0
        sums = await self._tasks.aggregate(
            [
                {"$match": {"customer_id": customer_id}},
                {"$group": {"_id": None, "bytes": {"$sum": "$size_bytes"}}},
            ],
            hint=LIST_INDEX,
        )
        async for row in sums:
            total = int(row["bytes"])
        return pending, total

    def _quota(self, customer_id: str, doc: dict[str, Any]) -> CustomerQuota:
        pending_own, bytes_own = doc.get("pending_limit"), doc.get("bytes_limit")
        return CustomerQuota(
            customer_id=customer_id,
            pending_tasks=int(doc["pending"]),
            pending_tasks_limit=_limit(doc, "pending_limit", self._defaults.pending_tasks),
            pending_tasks_limit_is="default" if pending_own is None else "customer",
            stored_bytes=int(doc["bytes"]),
            stored_bytes_limit=_limit(doc, "bytes_limit", self._defaults.stored_bytes),
            stored_bytes_limit_is="default" if bytes_own is None else "customer",
        )

    @staticmethod
    def _change(pending: int, size: int, now: datetime) -> dict[str, Any]:
        return {
            "$inc": {"pending": pending, "bytes": size, "seq": 1},
            "$set": {"changed_at": now},
        }
