"""The outbox's storage: the events each task's changes raised and nobody published yet,
kept in the task's own document (`outbox`, and `outbox_at` while it holds any), so that
a change and its events are one write. The task repository writes them with the task;
this takes them out once they are published, and hands the relay what was left behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from bson import ObjectId
from pymongo import ReturnDocument, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from humantask_shared.core.timeutil import as_utc, parse_timestamp
from humantask_shared.runtime.mongo import Document

from .documents import TASKS
from .spans import LIST_FLOOR

# How many of the tasks holding events are read for the age of the oldest event.
BACKLOG_SCAN_LIMIT = 100
# Only tasks with unpublished events carry `outbox_at` (the sparse index); a range
# spelled like the relay's query, so both engines answer it from the index.
IN_OUTBOX: dict[str, Any] = {"outbox_at": {"$gte": LIST_FLOOR}}


@dataclass(frozen=True)
class PendingOutbox:
    task_id: str
    events: list[str]


@dataclass(frozen=True)
class OutboxBacklog:
    tasks: int  # tasks holding events not yet published
    oldest_event_at: datetime | None  # when the oldest of those events happened


def _without_events(published: list[str]) -> list[dict[str, Any]]:
    """An update (pipeline) that removes `published` from the outbox, in order otherwise,
    and `outbox_at` with the last event: one write whatever else the outbox holds."""
    remaining = {
        "$filter": {"input": "$outbox", "cond": {"$not": [{"$in": ["$$this", published]}]}}
    }
    return [
        {"$set": {"outbox": remaining}},
        {
            "$set": {
                "outbox_at": {
                    "$cond": [{"$eq": [{"$size": "$outbox"}, 0]}, "$$REMOVE", "$outbox_at"]
                }
            }
        },
    ]


def first_event_time(doc: dict[str, Any]) -> datetime | None:
    """When the task's oldest unpublished event happened (its outbox is in order)."""
    outbox = doc.get("outbox") or []
    try:
        return parse_timestamp(orjson.loads(outbox[0])["occurred_at"]) if outbox else None
    except (ValueError, KeyError, TypeError):
        return None


class OutboxStore:
    """The outboxes of one collection's documents: the tasks' (the default), or the
    batches' (`indexes.BATCHES`), which hold theirs the same way."""

    def __init__(self, db: AsyncDatabase[Document], collection: str = TASKS) -> None:
        self._tasks = db[collection]

    async def events(self, task_id: str) -> list[str]:
        """The task's unpublished events, oldest first."""
        doc = await self._tasks.find_one({"_id": ObjectId(task_id)}, {"outbox": 1})
        return [] if doc is None else list(doc.get("outbox") or [])

    async def remove(self, published: list[tuple[str, list[str]]]) -> None:
        """Drop each task's published events, keeping any that a later change added; a
        task left with none leaves the relay's index. One round trip for all of them."""
        await self._tasks.bulk_write(
            [
                UpdateOne({"_id": ObjectId(task_id)}, _without_events(events))
                for task_id, events in published
            ],
            ordered=False,
        )

    async def take_stale(self, older_than: datetime, now: datetime) -> PendingOutbox | None:
        """One task whose events were not published in time, marked as taken just now
        so that other task-store processes relaying at the same moment skip it."""
        doc = await self._tasks.find_one_and_update(
            {"outbox_at": {"$lt": older_than}},
            {"$set": {"outbox_at": now}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            return None
        return PendingOutbox(task_id=str(doc["_id"]), events=list(doc.get("outbox") or []))

    async def backlog(self) -> OutboxBacklog:
        """How many tasks hold unpublished events, and when the oldest of them happened:
        from the first event of each of the first `BACKLOG_SCAN_LIMIT` such tasks (the
        relay moves `outbox_at` forward each time it retries, so `outbox_at` alone would
        hide a stuck event)."""
        count = await self._tasks.count_documents(IN_OUTBOX)
        oldest: datetime | None = None
        if count:
            cursor = self._tasks.find(IN_OUTBOX, {"outbox": {"$slice": 1}, "outbox_at": 1})
            async for doc in cursor.limit(BACKLOG_SCAN_LIMIT):
                for moment in (first_event_time(doc), doc.get("outbox_at")):
                    if moment is not None and (oldest is None or as_utc(moment) < oldest):
                        oldest = as_utc(moment)
        return OutboxBacklog(tasks=count, oldest_event_at=oldest)
