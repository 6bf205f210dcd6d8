"""`python -m bench.lists`: what one `GET /v1/tasks` costs the task-store and the database.

The task-store's own list handler (`customer_handlers.list_tasks`) on a database of its
own (`MONGODB_URL`, a fresh `humantask_bench_lists_<id>`, dropped afterwards), tasks
inserted in bulk with the repository's `task_document`. For each case it prints the
queries the list sent, the bytes the database answered with, the bytes of the page, the
wall time (median of the runs) and the peak of Python allocations during one list:

- *first page, small tasks* and *offset 10,000, small tasks*: 10,200 tasks of about
  400 bytes, a millisecond apart (`limit=100`);
- *first page, large tasks* and *offset 1,000, large tasks*: 1,200 tasks of about 190 KB
  (four-byte characters in every field up to its limit);
- *forged cursor*: a `next_token` whose span was set to the smallest float, on a
  customer whose 200 tasks are a minute apart (before the tokens were signed, the
  task-store walked up sixteen-fold spans from there, one query each).

The same script measures the code before the change: run it with `PYTHONPATH` naming the
old tree's `services/taskstore` and `shared` (docs/operations/hardening.md, "Lists").
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import statistics
import time
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import bson
from pymongo import AsyncMongoClient, monitoring

from humantask_shared.core.errors import HumantaskError
from humantask_shared.core.messages.commands import ListTasks
from humantask_shared.core.models import CreateTaskRequest, ListCursor, TaskListQuery, new_task_id
from humantask_taskstore import customer_handlers, domain
from humantask_taskstore.ports import Dependencies
from humantask_taskstore.repository import (
    AccountRepository,
    TaskRepository,
    ensure_indexes,
    task_document,
)

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
EMOJI = "\N{GRINNING FACE}"


class Replies(monitoring.CommandListener):
    def __init__(self) -> None:
        self.commands = 0
        self.bytes = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.commands += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self.bytes += len(bson.encode(event.reply))

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def _request(large: bool) -> CreateTaskRequest:
    if not large:
        return CreateTaskRequest(
            callback_url="https://customer.example/callback",
            instruction="Is the object in this picture big or small?",
            attachment_type="image",
            attachment="https://customer.example/images/0001.jpg",
            categories=["big", "small"],
        )
    return CreateTaskRequest(
        callback_url="https://customer.example/callback",
        instruction=EMOJI * 10_000,
        attachment_type="text",
        attachment=EMOJI * 10_000,
        categories=[f"{n:03d}" + EMOJI * 250 for n in range(100)],
    )


async def _insert(db: Any, customer_id: str, count: int, large: bool, apart: timedelta) -> None:
    request = _request(large)
    batch: list[dict[str, Any]] = []
    for n in range(count):
        record, _ = domain.create_task(new_task_id(), customer_id, request, T0 + n * apart)
        batch.append(task_document(record))
        if len(batch) == (20 if large else 1000):
            await db.tasks.insert_many(batch)
            batch = []
    if batch:
        await db.tasks.insert_many(batch)


def _deps(db: Any) -> Dependencies:
    fields: dict[str, Any] = {
        "tasks": TaskRepository(db),
        "accounts": AccountRepository(db),
        "outbox": None,
        "announce": None,
        "work_lease_seconds": 600,
    }
    known = {f.name for f in dataclasses.fields(Dependencies)}
    # The ports a list does not use (added since: the quality store's, `/scale/v1`'s).
    unused = ("pool", "quality", "publish", "search", "projects", "batches", "batch_outbox")
    fields.update({name: None for name in unused if name in known})
    if "list_tokens" in known:
        from humantask_taskstore.cursors import CursorSigner

        fields["list_tokens"] = CursorSigner(os.urandom(32))
    return Dependencies(**fields)


def _forged_token() -> str:
    cursor = ListCursor(
        created_at=T0 + timedelta(minutes=200), task_id="f" * 24, span_seconds=5e-324
    )
    if hasattr(cursor, "payload"):  # signed tokens: `<payload>.<signature>`
        return f"{cursor.payload()}.{'A' * 22}"
    return str(cursor.encode())  # type: ignore[attr-defined]  # before: the payload alone


@dataclasses.dataclass
class Result:
    case: str
    queries: int
    reply_bytes: int
    page_tasks: int
    page_bytes: int
    seconds: float
    peak_bytes: int
    outcome: str


async def _measure(
    case: str,
    deps: Dependencies,
    replies: Replies,
    customer_id: str,
    query: dict[str, Any],
    runs: int,
) -> Result:
    command = ListTasks(customer_id=customer_id, query=TaskListQuery.model_validate(query))
    times: list[float] = []
    for run in range(runs):
        replies.commands = replies.bytes = 0
        tracemalloc.start()
        started = time.perf_counter()
        try:
            page = await customer_handlers.list_tasks(command, deps)
            outcome = "200"
            tasks, size = len(page.tasks), len(page.model_dump_json().encode())
        except HumantaskError as exc:
            outcome, tasks, size = f"{exc.code}: {exc.message[:60]}", 0, 0
        times.append(time.perf_counter() - started)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        if run == 0:
            queries, received, peak_bytes = replies.commands, replies.bytes, peak
    return Result(
        case, queries, received, tasks, size, statistics.median(times), peak_bytes, outcome
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    url = os.environ.get("MONGODB_URL", "mongodb://127.0.0.1:27017/humantask")
    parts = urlsplit(url)
    name = f"humantask_bench_lists_{uuid.uuid4().hex[:8]}"
    replies = Replies()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        urlunsplit(parts._replace(path="/" + name)), tz_aware=True, event_listeners=[replies]
    )
    try:
        db = client[name]
        await ensure_indexes(db)
        ms = timedelta(milliseconds=1)
        await _insert(db, "small", 10_200, large=False, apart=ms)
        await _insert(db, "large", 1_200, large=True, apart=ms)
        await _insert(db, "sparse", 200, large=False, apart=timedelta(minutes=1))
        deps = _deps(db)
        cases = [
            ("first page, small tasks", "small", {"limit": 100}),
            ("offset 10,000, small tasks", "small", {"limit": 100, "offset": 10_000}),
            ("first page, large tasks", "large", {"limit": 100}),
            ("offset 1,000, large tasks", "large", {"limit": 100, "offset": 1_000}),
            (
                "forged cursor (span 5e-324 s)",
                "sparse",
                {"limit": 100, "next_token": _forged_token()},
            ),
        ]
        results = [
            await _measure(case, deps, replies, customer, query, args.runs)
            for case, customer, query in cases
        ]
    finally:
        await client.drop_database(name)
        await client.close()
    print(f"## {args.label}".rstrip())
    print(
        "| case | queries | bytes from the database | tasks in the page | page bytes "
        "| time (median) | peak Python allocations | answer |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(
            f"| {r.case} | {r.queries} | {r.reply_bytes / 1e6:.2f} MB | {r.page_tasks} | "
            f"{r.page_bytes / 1e6:.2f} MB | {r.seconds * 1000:.0f} ms | "
            f"{r.peak_bytes / 1e6:.1f} MB | {r.outcome} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
