"""What the tasks collection says about the system's health: gauges for `/metrics`.

Every `TASK_GAUGES_SECONDS` the task-store reads, through the indexes the hot paths
already have (`repository.ensure_indexes`):

- `humantask_outbox_backlog_tasks`: tasks holding events not yet published (the sparse
  `outbox_at` index); `humantask_outbox_oldest_event_age_seconds`: how long the oldest
  of those events has waited, from the `occurred_at` of the first event of each of the
  first `OUTBOX_SCAN_LIMIT` such tasks (the relay moves `outbox_at` forward each time it
  retries, so `outbox_at` alone would hide a stuck event); 0 when the outbox is empty;
- `humantask_pending_tasks` and `humantask_oldest_pending_task_age_seconds`: the worker
  pool (`status`, `created_at`), 0 when it is empty;
- `humantask_expired_leases`: pending tasks whose worker's lease ran out and that no
  worker has claimed since (the partial lease index).

Every task-store process reports the same values: aggregate them with `max`, not `sum`.
A round that fails (the database is away) keeps the last values.
"""

from __future__ import annotations

import functools
import logging
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from prometheus_client import Gauge
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from humantask_shared.core.timeutil import as_utc, parse_timestamp, utcnow
from humantask_shared.runtime.mongo import Document
from humantask_shared.runtime.periodic import refreshing

from . import repository
from .repository import LIST_FLOOR, TASKS

log = logging.getLogger(__name__)

TASK_GAUGES_SECONDS = 15.0
OUTBOX_SCAN_LIMIT = 100

OUTBOX_BACKLOG = Gauge(
    "humantask_outbox_backlog_tasks", "Tasks holding events not yet published (their outbox)"
)
OUTBOX_OLDEST_AGE = Gauge(
    "humantask_outbox_oldest_event_age_seconds",
    "How long the oldest event not yet published has waited (0: none waits)",
)
PENDING_TASKS = Gauge("humantask_pending_tasks", "Tasks waiting for a worker (status pending)")
OLDEST_PENDING_AGE = Gauge(
    "humantask_oldest_pending_task_age_seconds",
    "Age of the oldest pending task (0: none is pending)",
)
EXPIRED_LEASES = Gauge(
    "humantask_expired_leases",
    "Pending tasks whose worker's lease expired and that nobody has claimed since",
)

# Only tasks with unpublished events carry `outbox_at` (the sparse index); a range
# spelled like the relay's query, so both engines answer it from the index.
IN_OUTBOX: dict[str, Any] = {"outbox_at": {"$gte": LIST_FLOOR}}
PENDING = repository.PENDING
expired_lease = repository.expired_leases


@dataclass(frozen=True)
class TaskGauges:
    outbox_backlog_tasks: int
    outbox_oldest_event_age_seconds: float
    pending_tasks: int
    oldest_pending_task_age_seconds: float
    expired_leases: int


def _age(since: datetime | None, now: datetime) -> float:
    return 0.0 if since is None else max(0.0, (now - as_utc(since)).total_seconds())


def _first_event_time(doc: dict[str, Any]) -> datetime | None:
    """When the task's oldest unpublished event happened (its outbox is in order)."""
    outbox = doc.get("outbox") or []
    try:
        return parse_timestamp(orjson.loads(outbox[0])["occurred_at"]) if outbox else None
    except (ValueError, KeyError, TypeError):
        return None


async def read_task_gauges(db: AsyncDatabase[Document], now: datetime | None = None) -> TaskGauges:
    tasks = db[TASKS]
    now = now or utcnow()
    backlog = await tasks.count_documents(IN_OUTBOX)
    oldest_event: datetime | None = None
    if backlog:
        cursor = tasks.find(IN_OUTBOX, {"outbox": {"$slice": 1}, "outbox_at": 1}).limit(
            OUTBOX_SCAN_LIMIT
        )
        async for doc in cursor:
            for moment in (_first_event_time(doc), doc.get("outbox_at")):
                if moment is not None and (oldest_event is None or as_utc(moment) < oldest_event):
                    oldest_event = as_utc(moment)
    pending = await tasks.count_documents(PENDING)
    oldest_pending = await repository.oldest_pending_created_at(tasks) if pending else None
    return TaskGauges(
        outbox_backlog_tasks=backlog,
        outbox_oldest_event_age_seconds=_age(oldest_event, now),
        pending_tasks=pending,
        oldest_pending_task_age_seconds=_age(oldest_pending, now),
        expired_leases=await tasks.count_documents(expired_lease(now)),
    )


async def refresh_task_gauges(
    db: AsyncDatabase[Document], now: datetime | None = None
) -> TaskGauges:
    """Read the gauges and set them; returns what it read."""
    gauges = await read_task_gauges(db, now)
    OUTBOX_BACKLOG.set(gauges.outbox_backlog_tasks)
    OUTBOX_OLDEST_AGE.set(gauges.outbox_oldest_event_age_seconds)
    PENDING_TASKS.set(gauges.pending_tasks)
    OLDEST_PENDING_AGE.set(gauges.oldest_pending_task_age_seconds)
    EXPIRED_LEASES.set(gauges.expired_leases)
    return gauges


def task_gauges_watch(db: AsyncDatabase[Document]) -> AbstractAsyncContextManager[None]:
    """The task gauges, refreshed while the block runs."""
    return refreshing(
        functools.partial(refresh_task_gauges, db),
        TASK_GAUGES_SECONDS,
        "the task gauges",
        (PyMongoError,),
    )
