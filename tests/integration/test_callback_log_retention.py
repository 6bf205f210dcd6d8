"""Callback logs are kept `TASK_RETENTION_DAYS` (docs/operations/hardening.md,
"Retention"): a TTL index on each attempt's start, which both engines honour (MongoDB's
TTL monitor, DocumentDB's TTL job under FerretDB 2), made, changed and dropped as the
setting says at each start of the notifier."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from humantask_notifier.repository import ATTEMPTS, ensure_indexes
from humantask_notifier.retention import LOG_RETENTION_INDEX, keep_callback_logs
from tests.support.services import wait_for


@pytest.fixture
async def db(fresh_database) -> AsyncIterator[AsyncDatabase]:
    async for database in fresh_database(ensure_indexes):
        yield database


async def retention_seconds(db: AsyncDatabase) -> int | None:
    index = (await db[ATTEMPTS].index_information()).get(LOG_RETENTION_INDEX)
    return None if index is None else int(index["expireAfterSeconds"])


async def test_the_setting_makes_changes_and_drops_the_ttl_index(db: AsyncDatabase) -> None:
    assert await retention_seconds(db) is None  # off by default: logs stay
    await keep_callback_logs(db, 30)
    assert await retention_seconds(db) == 30 * 86400
    await keep_callback_logs(db, 30)  # every start: idempotent
    await keep_callback_logs(db, 0.5)
    assert await retention_seconds(db) == 43200
    await keep_callback_logs(db, 0)
    assert await retention_seconds(db) is None
    await keep_callback_logs(db, 0)


async def test_the_engine_deletes_attempts_past_the_retention(db: AsyncDatabase) -> None:
    """The engines' TTL jobs run about once a minute: waited for, with a deadline."""
    now = datetime.now(UTC)
    await db[ATTEMPTS].insert_many(
        [
            {"_id": "old:1", "task_id": "old", "attempt": 1, "at": now - timedelta(days=40)},
            {"_id": "new:1", "task_id": "new", "attempt": 1, "at": now - timedelta(days=1)},
        ]
    )
    await keep_callback_logs(db, 30)

    async def kept() -> list[str] | None:
        ids = sorted([doc["_id"] async for doc in db[ATTEMPTS].find({}, {"_id": 1})])
        return ids if ids == ["new:1"] else None

    found = await wait_for(kept, timeout=150, interval=1, message="the TTL job to delete old:1")
    assert found == ["new:1"]
