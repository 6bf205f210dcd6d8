"""`python -m bench.quotas`: what keeping quotas costs, at 100,000 tasks of one customer.

On a database of its own (`MONGODB_URL`, a fresh `humantask_bench_quotas_<id>`, dropped
afterwards), 100,000 pending tasks of one customer inserted in bulk, then, each the median
of `--runs`:

- *count over an index*: the customer's pending tasks counted with the
  (customer, status, created_at) index, the way a quota without a counter would have to
  on every create (and still race: two creates both see room);
- *reservation*: what each create group pays instead, its counter's
  conditional `$inc` (`CustomerUsage.reserve`; the limits it read last are kept);
- *create*: `TaskRepository.add` of one task, reservation included, and the same with
  quotas off (limits 0: the counter is still kept), next to the task's insert alone
  (what a create wrote before quotas);
- *reconcile*: the counter set again from the tasks (a pending count and a sum of
  `size_bytes` over all of them), which the periodic job does for a quiet customer;
- the plan of every query the lists, the quotas and retention send, at this size: the
  index each one reads (`explain`), none a collection scan.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bson import ObjectId
from pymongo import AsyncMongoClient

from humantask_shared.core.models import CreateTaskRequest, new_task_id
from humantask_shared.runtime.publishing import stamp_all
from humantask_taskstore import domain
from humantask_taskstore.repository import TaskRepository, ensure_indexes, indexes, task_document
from humantask_taskstore.repository.documents import TASKS
from humantask_taskstore.repository.listing import KEY_FIELDS, NOT_LISTED
from humantask_taskstore.repository.usage import CustomerUsage, QuotaLimits

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
REQUEST = CreateTaskRequest(
    callback_url="https://customer.example/callback",
    instruction="Is the object in this picture big or small?",
    attachment_type="image",
    attachment="https://customer.example/images/0001.jpg",
    categories=["big", "small"],
)


async def _median_ms(runs: int, work: Callable[[], Awaitable[Any]]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await work()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def _index_names(plan: Any) -> set[str]:
    names: set[str] = set()
    if isinstance(plan, dict):
        for key in ("indexName", "Index Name"):
            if key in plan:
                names.add(plan[key])
        for value in plan.values():
            names |= _index_names(value)
    elif isinstance(plan, list):
        for value in plan:
            names |= _index_names(value)
    return names


async def _plans(db: Any, now: datetime) -> dict[str, str]:
    span = {"customer_id": "big", "created_at": {"$gte": T0, "$lt": now}}
    newest = {"created_at": -1, "_id": -1}
    commands = {
        "list: a span counted": {
            "count": TASKS,
            "query": span,
            "limit": 10_101,
            "hint": indexes.LIST_INDEX,
        },
        "list: the page's keys": {
            "find": TASKS,
            "filter": span,
            "sort": newest,
            "skip": 10_000,
            "limit": 101,
            "projection": KEY_FIELDS,
            "hint": indexes.LIST_INDEX,
        },
        "list: the page by _id": {
            "find": TASKS,
            "filter": {"_id": {"$in": [ObjectId() for _ in range(100)]}},
            "projection": NOT_LISTED,
        },
        "quota: pending count": {
            "count": TASKS,
            "query": {"customer_id": "big", "status": "pending"},
            "hint": indexes.LIST_BY_STATUS_INDEX,
        },
        **{
            f"retention: {status}": {
                "find": TASKS,
                "filter": indexes.expired(status, now),
                "limit": 500,
                "hint": index,
            }
            for status, index in indexes.RETENTION_INDEXES.items()
        },
    }
    plans = {}
    for name, command in commands.items():
        explained = await db.command("explain", command, verbosity="queryPlanner")
        text = repr(explained["queryPlanner"])
        scan = "COLLSCAN" in text or "Seq Scan" in text
        used = ", ".join(sorted(_index_names(explained["queryPlanner"]))) or "none"
        plans[name] = f"{used}{' (a collection scan!)' if scan else ''}"
    return plans


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    url = os.environ.get("MONGODB_URL", "mongodb://127.0.0.1:27017/humantask")
    name = f"humantask_bench_quotas_{uuid.uuid4().hex[:8]}"
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        urlunsplit(urlsplit(url)._replace(path="/" + name)), tz_aware=True
    )
    try:
        db = client[name]
        await ensure_indexes(db)
        started = time.perf_counter()
        for start in range(0, args.tasks, 1000):
            batch = []
            for n in range(start, min(start + 1000, args.tasks)):
                record, _ = domain.create_task(
                    new_task_id(), "big", REQUEST, T0 + timedelta(milliseconds=n)
                )
                batch.append(task_document(record))
            await db[TASKS].insert_many(batch)
        print(f"inserted {args.tasks} tasks in {time.perf_counter() - started:.0f} s")

        usage = CustomerUsage(db, QuotaLimits())
        pending = {"customer_id": "big", "status": "pending"}
        count_ms = await _median_ms(
            args.runs,
            lambda: db[TASKS].count_documents(pending, hint=indexes.LIST_BY_STATUS_INDEX),
        )
        first = time.perf_counter()
        await usage.quota("big")  # the counter starts: the pending tasks counted once
        start_ms = (time.perf_counter() - first) * 1000
        reserve_ms = await _median_ms(
            args.runs, lambda: usage.reserve("big", datetime.now(UTC), 1, 300)
        )

        async def create(tasks: TaskRepository) -> None:
            now = datetime.now(UTC)
            record, events = domain.create_task(new_task_id(), "big", REQUEST, now)
            await tasks.add(record, stamp_all(events, now), now)

        with_quota = TaskRepository(db)
        without = TaskRepository(db, quotas=QuotaLimits(pending_tasks=0, stored_bytes=0))

        async def insert_alone() -> None:  # what a create wrote before quotas: the task only
            now = datetime.now(UTC)
            record, events = domain.create_task(new_task_id(), "big", REQUEST, now)
            await db[TASKS].insert_one(task_document(record, stamp_all(events, now), now))

        insert_ms = await _median_ms(args.runs, insert_alone)
        create_ms = await _median_ms(args.runs, lambda: create(with_quota))
        create_off_ms = await _median_ms(args.runs, lambda: create(without))
        await db["customer_usage"].update_one({"_id": "big"}, {"$set": {"changed_at": T0}})
        reconcile_started = time.perf_counter()
        await usage.reconcile(datetime.now(UTC), timedelta(minutes=5))
        reconcile_ms = (time.perf_counter() - reconcile_started) * 1000
        plans = await _plans(db, datetime.now(UTC))
    finally:
        await client.drop_database(name)
        await client.close()

    print(f"| at {args.tasks:,} pending tasks of one customer | median |")
    print("| --- | --- |")
    print(f"| count over an index (per create, racy) | {count_ms:.1f} ms |")
    print(f"| the counter started (once per customer) | {start_ms:.1f} ms |")
    print(f"| reservation (one conditional $inc) | {reserve_ms:.1f} ms |")
    print(f"| the task's insert alone (a create before quotas) | {insert_ms:.1f} ms |")
    print(f"| create, quotas kept | {create_ms:.1f} ms |")
    print(f"| create, limits off (counter still kept) | {create_off_ms:.1f} ms |")
    print(f"| reconcile (count + sum of size_bytes) | {reconcile_ms:.0f} ms |")
    print()
    print("| query | index read |")
    print("| --- | --- |")
    for query, used in plans.items():
        print(f"| {query} | {used} |")


if __name__ == "__main__":
    asyncio.run(main())
