"""Reading a page of a customer's tasks (`GET /v1/tasks`) at the cost of a page, whatever
the offset, the cursor or the size of the tasks (docs/operations/hardening.md, "Lists"):

1. the page is placed span by span (`spans.newest_page`): spans above it are counted in
   the database, and the span it starts in is skipped there (`skip`), so nothing above
   the page crosses the wire;
2. the page's keys come with each task's stored size (`$bsonSize`), and the page ends
   where its tasks would pass `ListLimits.page_max_bytes`;
3. only then are its tasks read whole, by `_id`, without their outbox.

Every query of one list shares one time budget (`ListLimits.max_time_ms`, each query's
`maxTimeMS` is what is left of it): past it the list is `Unavailable` (a `503` that says
so), never a query left running behind a caller that stopped waiting.
"""

from __future__ import annotations

import builtins
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import ExecutionTimeout

from humantask_shared.core.errors import Unavailable
from humantask_shared.core.models import ListCursor, TaskListQuery
from humantask_shared.core.timeutil import as_utc
from humantask_shared.runtime.mongo import Document

from ..domain import TaskRecord
from .documents import task_record
from .spans import PageKey, newest_page, within_bytes

NEWEST_FIRST = [("created_at", DESCENDING), ("_id", DESCENDING)]
# What a list never reads: the events waiting to be published.
NOT_LISTED = {"outbox": 0}
# A page's keys: where each task sorts and what it takes as stored.
KEY_FIELDS = {"created_at": 1, "size": {"$bsonSize": "$$ROOT"}}


@dataclass(frozen=True)
class ListLimits:
    # At most this many bytes of tasks (as stored) in one page; the page ends early,
    # with a next_token, rather than pass it. One task larger than this is a page alone.
    page_max_bytes: int = 2 * 1024 * 1024
    # The database time one list may take, all its queries together (each query's
    # maxTimeMS is what is left).
    max_time_ms: int = 5_000


class ListTimeLimit:
    """One list's time budget: what each of its queries may still take, in ms."""

    def __init__(self, max_time_ms: int) -> None:
        self.max_time_ms = max_time_ms
        self._deadline = time.monotonic() + max_time_ms / 1000

    def left_ms(self) -> int:
        left = int((self._deadline - time.monotonic()) * 1000)
        if left < 1:
            raise self.exceeded()
        return left

    def exceeded(self) -> Unavailable:
        return Unavailable(
            f"the list ran past its time limit ({self.max_time_ms} ms in the database); "
            "narrow it with start_time and end_time, or a status, or try again"
        )


class TaskLists:
    """Pages of tasks, read from `tasks` under `limits`."""

    def __init__(self, tasks: AsyncCollection[Document], limits: ListLimits) -> None:
        self._tasks = tasks
        self._limits = limits

    async def page(
        self,
        criteria: dict[str, Any],
        index: str,
        query: TaskListQuery,
        cursor: ListCursor | None,
        now: datetime,
        budget: ListTimeLimit | None = None,
    ) -> tuple[builtins.list[TaskRecord], ListCursor | None]:
        """A page of the tasks `criteria` matches, newest first, read span by span with
        `index` (named: DocumentDB's planner may pick one that cannot use the span), within
        `budget` (a list's own, or the one it shares with its other queries)."""
        budget = budget or self.budget()

        async def count(window: dict[str, Any], limit: int) -> int:
            return await self._tasks.count_documents(
                criteria | window, limit=limit, hint=index, maxTimeMS=budget.left_ms()
            )

        async def keys_in(window: dict[str, Any], skip: int, limit: int) -> list[PageKey]:
            return await self._keys(criteria | window, skip, limit, index, budget)

        try:
            keys, next_cursor = await newest_page(
                count, keys_in, query, cursor, now, self._limits.page_max_bytes
            )
            return await self._read(keys, budget), next_cursor
        except ExecutionTimeout:
            raise budget.exceeded() from None

    def budget(self) -> ListTimeLimit:
        """A new list's time budget."""
        return ListTimeLimit(self._limits.max_time_ms)

    async def few(
        self,
        criteria: dict[str, Any],
        index: str,
        limit: int,
        cursor: ListCursor | None,
        budget: ListTimeLimit,
    ) -> tuple[builtins.list[TaskRecord], ListCursor | None]:
        """A page of a filter that matches few tasks (a list of unique ids: at most one
        task each), newest first after `cursor`, with no span: what it matches is sorted
        at once. Bounded in bytes as any page."""
        if cursor is not None:
            criteria = criteria | {
                "$or": [
                    {"created_at": {"$lt": cursor.created_at}},
                    {"created_at": cursor.created_at, "_id": {"$lt": ObjectId(cursor.task_id)}},
                ]
            }
        try:
            keys = await self._keys(criteria, 0, limit + 1, index, budget)
            page = within_bytes(keys[:limit], self._limits.page_max_bytes)
            records = await self._read(page, budget)
        except ExecutionTimeout:
            raise budget.exceeded() from None
        if len(page) == len(keys) or not page:
            return records, None
        last = page[-1]
        return records, ListCursor(created_at=last.created_at, task_id=last.task_id, span_seconds=1)

    async def count(
        self, criteria: dict[str, Any], index: str, limit: int, budget: ListTimeLimit
    ) -> int:
        """How many tasks `criteria` matches, up to `limit`, within `budget`."""
        try:
            return await self._tasks.count_documents(
                criteria, limit=limit, hint=index, maxTimeMS=budget.left_ms()
            )
        except ExecutionTimeout:
            raise budget.exceeded() from None

    async def at_most_one(
        self, criteria: dict[str, Any], index: str, query: TaskListQuery
    ) -> builtins.list[TaskRecord]:
        """The page of a filter that matches one task at most (a `unique_id`)."""
        budget = ListTimeLimit(self._limits.max_time_ms)
        try:
            keys = await self._keys(criteria, query.offset, query.limit, index, budget)
            page = within_bytes(keys, self._limits.page_max_bytes)
            return await self._read(page, budget)
        except ExecutionTimeout:
            raise budget.exceeded() from None

    async def _keys(
        self,
        criteria: dict[str, Any],
        skip: int,
        limit: int,
        index: str,
        budget: ListTimeLimit,
    ) -> list[PageKey]:
        cursor = (
            self._tasks.find(criteria, KEY_FIELDS)
            .sort(NEWEST_FIRST)
            .skip(skip)
            .limit(limit)
            .hint(index)
            .max_time_ms(budget.left_ms())
        )
        return [
            PageKey(str(doc["_id"]), as_utc(doc["created_at"]), doc["size"]) async for doc in cursor
        ]

    async def _read(self, keys: list[PageKey], budget: ListTimeLimit) -> list[TaskRecord]:
        """The tasks of a page, whole but for their outbox, in the page's order."""
        if not keys:
            return []
        ids = [ObjectId(key.task_id) for key in keys]
        cursor = self._tasks.find({"_id": {"$in": ids}}, NOT_LISTED).max_time_ms(budget.left_ms())
        found = {str(doc["_id"]): task_record(doc) async for doc in cursor}
        # A task deleted between the two reads (retention) is left out of its page.
        return [found[key.task_id] for key in keys if key.task_id in found]
