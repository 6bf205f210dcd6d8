"""What a page of a customer's tasks costs with 100,000 of them: `/v1`'s first page, and
`/scale/v1`'s first page with each of its filters and its bounded `total`, read through
the task-store's own repository on the database alone (no broker, no HTTP: the part a
customer's size could change).

    .venv/bin/python -m bench.scale_list              # about 3 minutes on FerretDB
    .venv/bin/python -m bench.scale_list --tasks 1000 --repeat 5   # a smoke run

It uses `MONGODB_URL`'s server (a database of its own, dropped after). Each query runs
`--repeat` times at two sizes of the customer, `--small` tasks and then `--tasks` tasks
(inserted with `insert_many`, documents made by the task-store's own functions, one
task a second back from now, a third of them in a project, a tenth in a batch, a fifth
tagged, a twentieth audited); the table gives the median and the slowest, and the ratio
of the medians. Written to bench/results/scale-list-<date>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

RESULTS = Path(__file__).parent / "results"


def _documents(customer_id: str, count: int, newest: datetime) -> list[dict[str, Any]]:
    from humantask_shared.core.models import CreateTaskRequest, TaskResponse, new_task_id
    from humantask_shared.core.scale_models import TaskPlacement
    from humantask_taskstore import domain
    from humantask_taskstore.repository import task_document

    request = CreateTaskRequest(
        callback_url="http://127.0.0.1:9/callback",
        instruction="Is this big or small?",
        attachment_type="text",
        attachment="car",
        categories=["big", "small"],
    )
    documents = []
    for n in range(count):
        placement = TaskPlacement(
            project="third" if n % 3 == 0 else None,
            batch=f"batch-{n // 1000}" if n % 10 == 0 else None,
            tags=["fifth"] if n % 5 == 0 else [],
        )
        created_at = newest - timedelta(seconds=n)
        record, _ = domain.create_task(
            new_task_id(), customer_id, request, created_at, placement=placement
        )
        if n % 20 == 0:
            record = replace(
                record,
                status="completed",
                completed_at=created_at + timedelta(seconds=1),
                response=TaskResponse(category="big"),
                customer_review_status="accepted",
            )
        documents.append(task_document(record))
    return documents


async def _timed(call: Callable[[], Awaitable[Any]], repeat: int) -> list[float]:
    await call()  # warm: plans, caches, connections
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    return times


async def run(url: str, tasks: int, small: int, repeat: int) -> dict[str, Any]:
    from humantask_shared.core.models import TaskListQuery
    from humantask_shared.core.scale_models import ScaleTaskListQuery
    from humantask_shared.runtime.mongo import connect_mongo
    from humantask_taskstore.repository import TaskRepository, TaskSearch, ensure_indexes

    name = f"humantask_bench_list_{uuid.uuid4().hex[:8]}"
    client = await connect_mongo(url, "humantask-bench")
    db = client[name]
    queries: dict[str, Callable[[], Awaitable[Any]]] = {}
    try:
        await ensure_indexes(db)
        repository, search = TaskRepository(db), TaskSearch(db)
        now = datetime.now(UTC)
        first = ScaleTaskListQuery()
        scale = {
            "scale: no filter": first,
            "scale: project": ScaleTaskListQuery(project="third"),
            "scale: batch": ScaleTaskListQuery(batch="batch-3"),
            "scale: tags": ScaleTaskListQuery(tags=["fifth"]),
            "scale: customer_review_status": ScaleTaskListQuery(
                customer_review_status=["accepted"]
            ),
            "scale: completed_after (an hour)": ScaleTaskListQuery(
                completed_after=now - timedelta(hours=1)
            ),
        }
        queries["v1: first page"] = lambda: repository.list("c", TaskListQuery(), now)
        for label, query in scale.items():
            queries[label] = lambda query=query: search.page("c", query, now)
        # The first page as the list reads it: the page and its bounded `total` together.
        queries["scale: page and total (no filter)"] = lambda: search.page(
            "c", first, now, count=True
        )
        queries["scale: page and total (project)"] = lambda: search.page(
            "c", scale["scale: project"], now, count=True
        )

        stages: dict[str, dict[str, list[float]]] = {}
        inserted = 0
        for size in (small, tasks):
            while inserted < size:
                batch = min(1000, size - inserted)
                newest = now - timedelta(seconds=inserted)
                await db["tasks"].insert_many(_documents("c", batch, newest), ordered=False)
                inserted += batch
            stages[str(size)] = {
                label: await _timed(call, repeat) for label, call in queries.items()
            }
        return {"tasks": tasks, "small": small, "repeat": repeat, "stages": stages}
    finally:
        await client.drop_database(name)
        await client.close()


def report(result: dict[str, Any]) -> str:
    small, large = (result["stages"][str(result[key])] for key in ("small", "tasks"))
    lines = [
        f"| query | {result['small']:,} tasks: median / max ms | "
        f"{result['tasks']:,} tasks: median / max ms | ratio |",
        "| --- | --- | --- | --- |",
    ]
    for label, times in large.items():
        before = small[label]
        ratio = statistics.median(times) / max(statistics.median(before), 1e-9)
        lines.append(
            f"| {label} | {statistics.median(before):.1f} / {max(before):.1f} | "
            f"{statistics.median(times):.1f} / {max(times):.1f} | {ratio:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    url = os.environ.get("MONGODB_URL", "mongodb://127.0.0.1:27017/humantask")
    result = asyncio.run(run(url, args.tasks, args.small, args.repeat))
    result["database"] = urlsplit(url).netloc.rsplit("@", 1)[-1]
    result["date"] = datetime.now(UTC).strftime("%Y-%m-%d")
    print(report(result))
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"scale-list-{result['date']}.json"
    path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
