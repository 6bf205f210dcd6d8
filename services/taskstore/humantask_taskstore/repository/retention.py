"""Retention: completed and canceled tasks are deleted `TASK_RETENTION_DAYS` after they
ended (docs/operations/hardening.md, "Retention"), in bounded batches, by a periodic job
of each task-store copy. Never a pending task, and never one whose outbox still holds an
event nobody published (its callback would be lost). What a deleted task counted
against its customer's stored-bytes quota is given back (`usage`).

Copies running it at the same moment split the work: each task is deleted by one
`find_one_and_delete`, and only the copy that deleted it gives its bytes back.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from humantask_shared.runtime.mongo import Document

from .documents import TASKS
from .indexes import ENDED, RETENTION_INDEXES, expired
from .usage import CustomerUsage

# Deletes in flight at once within a batch.
CONCURRENT_DELETES = 16


class TaskRetention:
    def __init__(self, db: AsyncDatabase[Document], usage: CustomerUsage) -> None:
        self._tasks = db[TASKS]
        self._usage = usage

    async def delete_expired(self, before: datetime, batch_size: int, now: datetime) -> int:
        """Delete up to `batch_size` tasks of each finished status that ended before
        `before`; how many this call deleted."""
        freed: dict[str, int] = defaultdict(int)
        gate = asyncio.Semaphore(CONCURRENT_DELETES)

        async def delete(status: str, task_id: Any) -> dict[str, Any] | None:
            async with gate:  # the conditions again: nothing changed it meanwhile
                return await self._tasks.find_one_and_delete(
                    {"_id": task_id, **expired(status, before)},
                    {"customer_id": 1, "size_bytes": 1},
                )

        deleted = 0
        for status in ENDED:
            found = (
                self._tasks.find(expired(status, before), {"_id": 1})
                .hint(RETENTION_INDEXES[status])
                .limit(batch_size)
            )
            candidates = [doc["_id"] async for doc in found]
            for gone in await asyncio.gather(*(delete(status, i) for i in candidates)):
                if gone is not None:
                    deleted += 1
                    freed[gone["customer_id"]] += int(gone.get("size_bytes") or 0)
        for customer_id, size in freed.items():
            await self._usage.give_back(customer_id, 0, size, now)
        return deleted
