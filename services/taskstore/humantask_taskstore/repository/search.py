"""`GET /scale/v1/tasks` (docs/reference/api.md §11): a customer's tasks by Scale's
filters, newest first, read a span of creation times at a time as `/v1`'s list is
(`spans.newest_page`), each span through the index of its most selective filter; the
count of what the filters match, bounded; and a batch's counts.

Which index a query reads (named with `hint`: DocumentDB's planner may pick another
that cannot use the span): a list of unique ids holds at most that many tasks and needs
no span (UNIQUE_ID_INDEX); otherwise the batch's, the project's, a tag's, the audit
result's (partial indexes holding only the tasks that have the field), the status's, or
the customer's. The other filters apply to what that index finds. `completed_at` only
exists on completed tasks, and never before `created_at`: `completed_after` and
`completed_before` read the completed tasks, created before `completed_before`.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

from pymongo import DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from humantask_shared.core.models import ListCursor, TaskListQuery
from humantask_shared.core.scale_models import BatchCounts, ScaleTaskListQuery
from humantask_shared.runtime.mongo import Document

from ..domain import TaskRecord
from .documents import TASKS, task_record
from .indexes import (
    BATCH_INDEX,
    LIST_BY_STATUS_INDEX,
    LIST_INDEX,
    PROJECT_INDEX,
    REVIEW_INDEX,
    TAGS_INDEX,
    UNIQUE_ID_INDEX,
    holding,
)
from .spans import newest_page

# What `total` counts up to: past it, the count stops and says this many. A count reads
# the index entries of what the filters match: on FerretDB 2 with DocumentDB about 1.7 µs
# each, so 170 ms for a customer's 100,000 tasks, ten times a page; bounded here, it
# costs a first page at most about 20 ms more (bench/scale_list.py).
MAX_TASK_COUNT = 10_000

_NEWEST_FIRST = [("created_at", DESCENDING), ("_id", DESCENDING)]


def search_criteria(customer_id: str, query: ScaleTaskListQuery) -> tuple[dict[str, Any], str]:
    """The filter of `query` (without its creation times) and the index to read it by."""
    criteria: dict[str, Any] = {"customer_id": customer_id}
    index = LIST_INDEX
    if query.status is not None:
        criteria["status"] = query.status
        index = LIST_BY_STATUS_INDEX
    if query.completed_after is not None or query.completed_before is not None:
        completed: dict[str, Any] = {"$type": "date"}
        if query.completed_after is not None:
            completed["$gte"] = query.completed_after
        if query.completed_before is not None:
            completed["$lt"] = query.completed_before
        criteria["completed_at"] = completed
        criteria.setdefault("status", "completed")  # the only tasks with a completed_at
        index = LIST_BY_STATUS_INDEX
    if query.customer_review_status:
        criteria |= holding("customer_review_status", {"$in": query.customer_review_status})
        index = REVIEW_INDEX
    if query.tags:
        criteria |= holding("tags", {"$all": query.tags})
        index = TAGS_INDEX
    if query.project is not None:
        criteria |= holding("project", {"$eq": query.project})
        index = PROJECT_INDEX
    if query.batch is not None:
        criteria |= holding("batch", {"$eq": query.batch})
        index = BATCH_INDEX
    if query.unique_id:
        criteria |= holding("unique_id", {"$in": query.unique_id})
        index = UNIQUE_ID_INDEX
    return criteria, index


def created_before(query: ScaleTaskListQuery) -> datetime | None:
    """The end of the creation times to read: `end_time`, or `completed_before` if that
    is earlier (a task is never completed before it is created)."""
    ends = [moment for moment in (query.end_time, query.completed_before) if moment is not None]
    return min(ends) if ends else None


def _created(query: ScaleTaskListQuery) -> dict[str, Any]:
    created: dict[str, Any] = {}
    if query.start_time is not None:
        created["$gte"] = query.start_time
    end = created_before(query)
    if end is not None:
        created["$lt"] = end
    return {"created_at": created} if created else {}


class TaskSearch:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._tasks = db[TASKS]

    async def page(
        self, customer_id: str, query: ScaleTaskListQuery, now: datetime
    ) -> tuple[builtins.list[TaskRecord], ListCursor | None]:
        """A page of the customer's tasks matching `query`, newest first, and where the
        next page starts (None when no task follows)."""
        criteria, index = search_criteria(customer_id, query)
        after = query.next_token.cursor if query.next_token is not None else None
        if query.unique_id:
            return await self._few(criteria | _created(query), query.limit, after)
        spans = TaskListQuery(
            limit=query.limit,
            start_time=query.start_time,
            end_time=created_before(query),
            next_token=after,
        )

        async def find(window: dict[str, Any], limit: int) -> builtins.list[TaskRecord]:
            cursor = self._tasks.find(criteria | window).sort(_NEWEST_FIRST).limit(limit)
            return [task_record(doc) async for doc in cursor.hint(index)]

        return await newest_page(find, spans, now)

    async def _few(
        self, criteria: dict[str, Any], limit: int, after: ListCursor | None
    ) -> tuple[builtins.list[TaskRecord], ListCursor | None]:
        """The tasks of a list of unique ids (at most one each), sorted here."""
        cursor = self._tasks.find(criteria).hint(UNIQUE_ID_INDEX)
        found = sorted(
            [task_record(doc) async for doc in cursor],
            key=lambda record: (record.created_at, record.task_id),
            reverse=True,
        )
        if after is not None:
            found = [
                r for r in found if (r.created_at, r.task_id) < (after.created_at, after.task_id)
            ]
        page = found[:limit]
        if len(found) <= limit or not page:
            return page, None
        last = page[-1]
        return page, ListCursor(created_at=last.created_at, task_id=last.task_id, span_seconds=1)

    async def count(self, customer_id: str, query: ScaleTaskListQuery) -> int:
        """How many of the customer's tasks match `query`, up to MAX_TASK_COUNT. The index
        is named: left to itself, DocumentDB's planner reads the customer's whole bitmap of
        another index and then its tasks, three times the cost, whatever the bound."""
        criteria, index = search_criteria(customer_id, query)
        return await self._tasks.count_documents(
            criteria | _created(query), limit=MAX_TASK_COUNT, hint=index
        )

    async def batch_counts(self, customer_id: str, batch: str) -> BatchCounts:
        """How many of the batch's tasks are in each status (its index,
        `indexes.BATCH_STATUS_INDEX`, answers each count)."""
        counts = {
            status: await self._tasks.count_documents(self._of_batch(customer_id, batch, status))
            for status in ("pending", "completed", "canceled")
        }
        return BatchCounts(**counts)

    async def batch_has_pending(self, customer_id: str, batch: str) -> bool:
        found = await self._tasks.find_one(
            self._of_batch(customer_id, batch, "pending"), {"_id": 1}
        )
        return found is not None

    @staticmethod
    def _of_batch(customer_id: str, batch: str, status: str) -> dict[str, Any]:
        return {"customer_id": customer_id, **holding("batch", {"$eq": batch}), "status": status}
