"""The task-store's periodic jobs, in every copy (docs/operations/hardening.md):

- reconciling each quiet customer's usage counter with its tasks (`repository.usage`),
  every QUOTA_RECONCILE_INTERVAL_SECONDS;
- with TASK_RETENTION_DAYS set, deleting the completed and canceled tasks that ended
  longer ago than that, in batches of TASK_RETENTION_BATCH_SIZE, every
  TASK_RETENTION_INTERVAL_SECONDS (`repository.retention`).

A run that fails (the database away) is logged and tried again at the next interval.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from prometheus_client import Counter
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from humantask_shared.core.timeutil import utcnow
from humantask_shared.runtime.mongo import Document
from humantask_shared.runtime.periodic import refreshing

from .repository.retention import TaskRetention
from .repository.usage import CustomerUsage
from .settings import TaskStoreSettings

log = logging.getLogger(__name__)

RETENTION_DELETED = Counter(
    "humantask_retention_deleted_tasks_total",
    "Completed and canceled tasks deleted past TASK_RETENTION_DAYS",
)
USAGE_RECONCILED = Counter(
    "humantask_usage_reconciled_total",
    "Customer usage counters found wrong and set again from their tasks",
)
# Batches one retention run deletes at most, so that a run ends and the next one starts
# from a fresh look (a first run on a large backlog takes several).
MAX_BATCHES_PER_RUN = 100


@contextlib.asynccontextmanager
async def housekeeping(
    db: AsyncDatabase[Document], settings: TaskStoreSettings
) -> AsyncIterator[None]:
    usage = CustomerUsage(db, settings.quota_limits())
    quiet = timedelta(seconds=settings.quota_reconcile_quiet_seconds)

    async def reconcile() -> None:
        USAGE_RECONCILED.inc(await usage.reconcile(utcnow(), quiet))

    retention = TaskRetention(db, usage)
    days = settings.task_retention_days

    async def delete_expired() -> None:
        for _ in range(MAX_BATCHES_PER_RUN):
            now = utcnow()
            deleted = await retention.delete_expired(
                now - timedelta(days=days), settings.task_retention_batch_size, now
            )
            RETENTION_DELETED.inc(deleted)
            if deleted:
                log.info("expired tasks deleted", extra={"tasks": deleted})
            if deleted < settings.task_retention_batch_size:
                return

    async with contextlib.AsyncExitStack() as jobs:
        await jobs.enter_async_context(
            refreshing(
                reconcile,
                settings.quota_reconcile_interval_seconds,
                "customer usage",
                (PyMongoError,),
            )
        )
        if days:
            await jobs.enter_async_context(
                refreshing(
                    delete_expired,
                    settings.task_retention_interval_seconds,
                    "expired tasks",
                    (PyMongoError,),
                )
            )
        yield
