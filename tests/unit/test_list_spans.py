"""How a list reads spans of creation times (`repository.spans.newest_page`), with the
database's two queries played by functions: a far `end_time` grows the spans to the
floor without any date arithmetic leaving the calendar."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from humantask_shared.core.models import TaskListQuery
from humantask_taskstore.repository.spans import LIST_FLOOR, PageKey, newest_page


async def test_a_far_end_time_reads_down_to_the_floor_and_finds_nothing() -> None:
    windows: list[dict[str, Any]] = []

    async def count(window: dict[str, Any], limit: int) -> int:
        return 0

    async def keys_in(window: dict[str, Any], skip: int, limit: int) -> list[PageKey]:
        windows.append(window)
        return []

    query = TaskListQuery.model_validate({"limit": 64, "end_time": "7173-11-20T04:05:34Z"})
    page, cursor = await newest_page(count, keys_in, query, None, datetime.now(UTC), 2**20)
    assert (page, cursor) == ([], None)
    assert windows[-1]["created_at"]["$gte"] == LIST_FLOOR
    assert windows[0]["created_at"]["$lt"] == query.end_time
