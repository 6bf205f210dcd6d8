"""What the tasks collection says about the system's health: gauges for `/metrics`.

Every `TASK_GAUGES_SECONDS` the task-store reads, through the repository (and the indexes
the hot paths already have):

- `humantask_outbox_backlog_tasks`: tasks holding events not yet published;
  `humantask_outbox_oldest_event_age_seconds`: how long the oldest of those events has
  waited (`OutboxStore.backlog`); 0 when the outbox is empty;
- `humantask_pending_tasks` and `humantask_oldest_pending_task_age_seconds`: the worker
  pool, 0 when it is empty;
- `humantask_expired_leases`: pending tasks holding a lease that ran out and that no
  worker has claimed since;
- `humantask_tasks_waiting_for_answers`: regular pending tasks with counted answers that
  wait for more (docs/reference/contract.md §10);
- `humantask_blocked_workers`: workers blocked for a customer (a worker blocked by two
  customers counts twice).

Beside them, counters each process keeps of what it did (sum them over processes):
`humantask_answers_per_completed_task` (work_handlers), `humantask_gold_answers_scored_total`
and `humantask_workers_blocked_total` (quality_handlers).

Every task-store process reports the same values: aggregate them with `max`, not `sum`.
A look that fails (the database is away) keeps the last values.
"""

from __future__ import annotations

import functools
import logging
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import Gauge
from pymongo.errors import PyMongoError

from humantask_shared.core.timeutil import utcnow
from humantask_shared.runtime.periodic import refreshing

from .repository import OutboxStore, QualityRepository, TaskRepository

log = logging.getLogger(__name__)

TASK_GAUGES_SECONDS = 15.0

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
    "Pending tasks holding a lease that expired and that nobody has claimed since",
)
WAITING_FOR_ANSWERS = Gauge(
    "humantask_tasks_waiting_for_answers",
    "Pending tasks with counted answers that wait for more (several workers per task)",
)
BLOCKED_WORKERS = Gauge(
    "humantask_blocked_workers", "Workers blocked for a customer by their gold answers"
)


@dataclass(frozen=True)
class TaskGauges:
    outbox_backlog_tasks: int
    outbox_oldest_event_age_seconds: float
    pending_tasks: int
    oldest_pending_task_age_seconds: float
    expired_leases: int
    tasks_waiting_for_answers: int = 0
    blocked_workers: int = 0


def _age(since: datetime | None, now: datetime) -> float:
    return 0.0 if since is None else max(0.0, (now - since).total_seconds())


async def read_task_gauges(
    tasks: TaskRepository,
    outboxes: OutboxStore,
    qualities: QualityRepository | None = None,
    now: datetime | None = None,
) -> TaskGauges:
    now = now or utcnow()
    backlog = await outboxes.backlog()
    pool = await tasks.pool(now)
    return TaskGauges(
        outbox_backlog_tasks=backlog.tasks,
        outbox_oldest_event_age_seconds=_age(backlog.oldest_event_at, now),
        pending_tasks=pool.pending,
        oldest_pending_task_age_seconds=_age(pool.oldest_created_at, now),
        expired_leases=pool.expired_leases,
        tasks_waiting_for_answers=pool.waiting_for_answers,
        blocked_workers=0 if qualities is None else await qualities.blocked_workers(),
    )


async def refresh_task_gauges(
    tasks: TaskRepository,
    outboxes: OutboxStore,
    qualities: QualityRepository | None = None,
    now: datetime | None = None,
) -> TaskGauges:
    """Read the gauges and set them; returns what it read."""
    gauges = await read_task_gauges(tasks, outboxes, qualities, now)
    OUTBOX_BACKLOG.set(gauges.outbox_backlog_tasks)
    OUTBOX_OLDEST_AGE.set(gauges.outbox_oldest_event_age_seconds)
    PENDING_TASKS.set(gauges.pending_tasks)
    OLDEST_PENDING_AGE.set(gauges.oldest_pending_task_age_seconds)
    EXPIRED_LEASES.set(gauges.expired_leases)
    WAITING_FOR_ANSWERS.set(gauges.tasks_waiting_for_answers)
    BLOCKED_WORKERS.set(gauges.blocked_workers)
    return gauges


def task_gauges_watch(
    tasks: TaskRepository, outboxes: OutboxStore, qualities: QualityRepository
) -> AbstractAsyncContextManager[None]:
    """The task gauges, refreshed while the block runs."""
    return refreshing(
        functools.partial(refresh_task_gauges, tasks, outboxes, qualities),
        TASK_GAUGES_SECONDS,
        "the task gauges",
        (PyMongoError,),
    )
