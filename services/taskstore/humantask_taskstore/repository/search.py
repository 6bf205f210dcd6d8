"""`GET /scale/v1/tasks` (docs/reference/contract.md §11): a customer's tasks by Scale's
filters, newest first, read as `/v1`'s list is (`listing.TaskLists`: a span of creation
times at a time, each span through the index of its most selective filter, a page ending
early at LIST_PAGE_MAX_BYTES); the count of what the filters match, bounded in number;
both within one LIST_MAX_TIME_MS (past it, `Unavailable`); and a batch's counts.

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

from pymongo.asynchronous.database import AsyncDatabase

from humantask_shared.core.models import ListCursor, TaskListQuery
from humantask_shared.core.scale_models import BatchCounts, ScaleTaskListQuery
from humantask_shared.runtime.mongo import Document

from ..domain import TaskRecord
from .documents import TASKS
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
from .listing import ListLimits, TaskLists

# What `total` counts up to: past it, the count stops and says this many. A count reads
# the index entries of what the filters match: on FerretDB 2 with DocumentDB about 1.7 µs
# each, so 170 ms for a customer's 100,000 tasks, ten times a page; bounded here, it
# costs a first page at most about 20 ms more (bench/scale_list.py).
MAX_TASK_COUNT = 10_000

# A page of tasks, where the next one starts, and (when asked for) how many match.
SearchPage = tuple[builtins.list[TaskRecord], ListCursor | None, int | None]


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
    def __init__(self, db: AsyncDatabase[Document], limits: ListLimits | None = None) -> None:
        self._tasks = db[TASKS]
        self._lists = TaskLists(self._tasks, limits or ListLimits())

    async def page(
        self,
        customer_id: str,
        query: ScaleTaskListQuery,
        now: datetime,
        cursor: ListCursor | None = None,
        count: bool = False,
    ) -> SearchPage:
        """A page of the customer's tasks matching `query`, newest first, after `cursor`
        (where the page before ended), where the next page starts (None when no task
        follows), and, with `count`, how many match in all (up to MAX_TASK_COUNT). Its
        queries share one time budget. The count's index is named: left to itself,
        DocumentDB's planner reads the customer's whole bitmap of another index and then
        its tasks, three times the cost, whatever the bound."""
        criteria, index = search_criteria(customer_id, query)
        budget = self._lists.budget()
        if query.unique_id:
            records, next_cursor = await self._lists.few(
                criteria | _created(query), UNIQUE_ID_INDEX, query.limit, cursor, budget
            )
        else:
            spans = TaskListQuery(
                limit=query.limit, start_time=query.start_time, end_time=created_before(query)
            )
            records, next_cursor = await self._lists.page(
                criteria, index, spans, cursor, now, budget
            )
        total = None
        if count:
            total = await self._lists.count(
                criteria | _created(query), index, MAX_TASK_COUNT, budget
            )
        return records, next_cursor, total

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
