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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from humantask_shared.core.models import MAX_LIST_SPAN_SECONDS, ListCursor, TaskListQuery

FIRST_LIST_SPAN_SECONDS = 1.0
FIRST_CLAIM_SPAN_SECONDS = 60.0
MIN_CLAIM_SPAN_SECONDS = 0.01
SPAN_GROWTH = 16
LIST_FLOOR = datetime(1970, 1, 1, tzinfo=UTC)
# How far ahead of this task-store's clock another one's may be: a task it stamps is
# never older than the floor this one computed.
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class PageKey:
    """A task of a list as its page is being decided: where it sorts, and its size as
    stored (BSON bytes), before anything heavier is read."""

    task_id: str
    created_at: datetime
    size: int


# How many tasks a filter on creation times (a span) matches, counting at most `limit`:
# counted in the database, nothing is read.
CountIn = Callable[[dict[str, Any], int], Awaitable[int]]
# The keys of up to `limit` of the tasks a span matches, newest first, after the
# database has skipped `skip` of them.
KeysIn = Callable[[dict[str, Any], int, int], Awaitable[list[PageKey]]]
# When the oldest pending task was created (None: no task is pending).
OldestPending = Callable[[], Awaitable[datetime | None]]
# Lease the oldest claimable task created in [bottom, top); None if there is none.
LeaseOldest = Callable[[datetime, datetime], Awaitable[dict[str, Any] | None]]


async def newest_page(
    count: CountIn,
    keys_in: KeysIn,
    query: TaskListQuery,
    cursor: ListCursor | None,
    now: datetime,
    max_bytes: int,
) -> tuple[list[PageKey], ListCursor | None]:
    """The keys of a page of tasks, newest first, and where the next page starts (None
    when no task follows), read span by span of creation times.

    Each span is as wide as the density just seen says the rest of the page needs (2 to
    16 times the last), until the page is full: spans keep a page's cost near the page's
    size at any depth; the cursor carries the span that filled the page, so the next one
    usually needs one query. An offset is skipped by the database: a span wholly above
    the page is only counted, and the span the page starts in skips the rest. The page
    ends early at `max_bytes` (it always holds one task), and the cursor goes on from
    there."""
    floor = query.start_time or LIST_FLOOR
    # Without a cursor or an end_time the newest span is open above (clock skew).
    top = cursor.created_at if cursor else query.end_time
    span = cursor.span_seconds if cursor else FIRST_LIST_SPAN_SECONDS
    to_skip = query.offset
    wanted = query.limit + 1  # one more than the page says whether another follows
    keys: list[PageKey] = []
    while True:
        upper = top or now
        # A span reaching past the floor stops at it (computed so, not by subtracting: a
        # far `end_time` less the widest span would fall before year 1).
        reaches_floor = (upper - floor).total_seconds() <= span
        bottom = floor if reaches_floor else upper - timedelta(seconds=span)
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
        missing = wanted - len(keys)
        if to_skip:
            found = await count(window, to_skip + missing)
            if found > to_skip:  # the page starts in this span
                keys += await keys_in(window, to_skip, missing)
                to_skip = 0
            else:
                to_skip -= found
        else:
            found_keys = await keys_in(window, 0, missing)
            keys += found_keys
            found = len(found_keys)
        if len(keys) >= wanted or bottom <= floor:
            break
        # Wide enough for what is missing at the density just seen, within 2 to 16 times.
        guess = span * 1.5 * (to_skip + wanted - len(keys)) / max(found, 1)
        top, span = bottom, min(max(guess, span * 2), span * SPAN_GROWTH, MAX_LIST_SPAN_SECONDS)
    page = within_bytes(keys[: query.limit], max_bytes)
    if not page or (len(keys) < wanted and len(page) == len(keys)):
        return page, None
    last = page[-1]
    return page, ListCursor(created_at=last.created_at, task_id=last.task_id, span_seconds=span)


def within_bytes(keys: list[PageKey], max_bytes: int) -> list[PageKey]:
    """The first of `keys` whose sizes add up to at most `max_bytes` (at least one)."""
    total = 0
    for taken, key in enumerate(keys):
        total += key.size
        if total > max_bytes and taken:
            return keys[:taken]
    return keys


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
