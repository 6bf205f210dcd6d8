"""Reading the tasks collection a span of creation times at a time, for lists and claims.

DocumentDB sorts in memory whatever a filter matched (even on `_id`), so a sorted query
over all of a large customer's tasks, or over the whole worker pool, would cost what the
collection holds, not what the answer needs. Lists and claims therefore read spans of
creation times: a list's first span covers `FIRST_LIST_SPAN_SECONDS` and each next one
grows with the density just seen, down to `LIST_FLOOR` (the oldest time a query may
name); a claim's spans start at the pool's floor (`PoolFloor`) and grow `SPAN_GROWTH`
times each. The queries themselves are the repository's; this module decides the spans.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from humantask_shared.core.models import MAX_LIST_SPAN_SECONDS, ListCursor, TaskListQuery

from ..domain import TaskRecord

FIRST_LIST_SPAN_SECONDS = 1.0
FIRST_CLAIM_SPAN_SECONDS = 60.0
MIN_CLAIM_SPAN_SECONDS = 0.01
SPAN_GROWTH = 16
LIST_FLOOR = datetime(1970, 1, 1, tzinfo=UTC)
# How far ahead of this task-store's clock another one's may be: a task it stamps is
# never older than the floor this one computed.
CLOCK_SKEW = timedelta(minutes=5)

# Up to `limit` of the tasks a filter on creation times (a span) matches, newest first.
FindNewest = Callable[[dict[str, Any], int], Awaitable[list[TaskRecord]]]
# When the oldest pending task was created (None: no task is pending).
OldestPending = Callable[[], Awaitable[datetime | None]]
# Lease the oldest claimable task created in [bottom, top); None if there is none.
LeaseOldest = Callable[[datetime, datetime], Awaitable[dict[str, Any] | None]]


async def newest_page(
    find: FindNewest, query: TaskListQuery, now: datetime
) -> tuple[list[TaskRecord], ListCursor | None]:
    """A page of tasks, newest first, and where the next page starts (None when no task
    follows), read span by span of creation times.

    Each span is as wide as the density just seen says the rest of the page needs (2 to
    16 times the last), until the page is full: spans keep a page's cost near the page's
    size at any depth; the cursor carries the span that filled the page, so the next one
    usually needs one query."""
    floor = query.start_time or LIST_FLOOR
    cursor = query.next_token
    # Without a cursor or an end_time the newest span is open above (clock skew).
    top = cursor.created_at if cursor else query.end_time
    span = cursor.span_seconds if cursor else FIRST_LIST_SPAN_SECONDS
    wanted = query.offset + query.limit + 1
    records: list[TaskRecord] = []
    while True:
        bottom = max(floor, (top or now) - timedelta(seconds=span))
        created: dict[str, Any] = {"$gte": bottom}
        if top is not None:
            created["$lt"] = top
        window: dict[str, Any] = {"created_at": created}
        if cursor is not None and top == cursor.created_at:  # after the cursor's task
            window = {
                "$or": [
                    window,
                    {"created_at": cursor.created_at, "_id": {"$lt": ObjectId(cursor.task_id)}},
                ]
            }
        found = await find(window, wanted - len(records))
        records += found
        if len(records) >= wanted or bottom <= floor:
            break
        # Wide enough for what is missing at the density just seen, within 2 to 16 times.
        guess = span * 1.5 * (wanted - len(records)) / max(len(found), 1)
        top, span = bottom, min(max(guess, span * 2), span * SPAN_GROWTH, MAX_LIST_SPAN_SECONDS)
    page = records[query.offset :][: query.limit]
    if len(records) < wanted or not page:
        return page, None
    last = page[-1]
    return page, ListCursor(created_at=last.created_at, task_id=last.task_id, span_seconds=span)


class PoolFloor:
    """A time no pending task is older than, kept a while by each task-store process:
    the oldest pending task's `created_at`, or `now - CLOCK_SKEW` if that is earlier (a
    task another process stamps later is never older than that). Finding the oldest
    pending task sorts the pool, so it is looked up again only every few seconds; a floor
    that went stale is merely low, which costs a claim a few empty spans."""

    def __init__(self, refresh: timedelta = timedelta(seconds=30)) -> None:
        self._refresh = refresh
        self._floor: datetime | None = None
        self._found_at: datetime | None = None

    async def get(self, oldest_pending: OldestPending, now: datetime) -> datetime:
        if self._floor is None or self._found_at is None or now - self._found_at > self._refresh:
            oldest = await oldest_pending()
            newest_possible = now - CLOCK_SKEW
            self._floor = newest_possible if oldest is None else min(oldest, newest_possible)
            self._found_at = now
        return self._floor


class ClaimSpans:
    """Where a claim looks: upwards from the pool's floor, first across the span that
    found a task last time (halved when the first span found one: the pool is dense
    there), each `lease` sorting only the pending tasks of its span."""

    def __init__(self) -> None:
        self._floor = PoolFloor()
        self._span = FIRST_CLAIM_SPAN_SECONDS

    async def lease_oldest(
        self, lease: LeaseOldest, oldest_pending: OldestPending, now: datetime
    ) -> dict[str, Any] | None:
        floor = await self._floor.get(oldest_pending, now)
        bottom, span = floor, self._span
        while bottom <= now + CLOCK_SKEW:
            top = bottom + timedelta(seconds=span)
            doc = await lease(bottom, top)
            if doc is not None:
                # Found in the first span: the pool is dense here, look at less next time.
                first = bottom == floor
                self._span = max(MIN_CLAIM_SPAN_SECONDS, span / 2) if first else span
                return doc
            bottom, span = top, span * SPAN_GROWTH
        return None
