"""The fair pool, measured (docs/reference/contract.md §6): how many claims one customer's
backlog makes another customer's new task wait, and how claims split between customers
of different weights.

    .venv/bin/python -m bench.fair_pool [--backlog 10000] [--workers 16] [--json]

On a stack of its own (a vhost and a database, the three services as processes, as
`make bench` makes one), it inserts `--backlog` pending tasks of customer A (the
task-store's own documents, an hour old), lets `--workers` workers claim and submit
without pause, and then, `--rounds` times, has customer B create one task over HTTP and
counts the claims the workers were served between the `200` of that create and the claim
that served B's task (claims already in flight when the create returned do not count).
Then it gives B a backlog as deep as A's and weight 3 (`humantask-admin customers
set-weight`), and counts whose tasks the next claims serve. Numbers only: not a test,
no target but what the contract says (a few claims; in proportion to the weights).
A claim that waits past `--max-claims` is reported as that many, and the run says so.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson

from bench.loadgen import basic_auth, task_body
from bench.run import DEFAULT_AMQP_URL, DEFAULT_MONGODB_URL
from bench.stack import BIN, ROOT, Stack, Vhost, describe_host, drop_database, insert_tasks, run_id


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.fair_pool", description=__doc__)
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--max-claims", type=int, default=2_000)
    parser.add_argument("--share-claims", type=int, default=400)
    parser.add_argument(
        "--no-weights",
        action="store_true",
        help="measure the new task's wait only (a stack without weights: the code before)",
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--amqp-url", default=DEFAULT_AMQP_URL)
    parser.add_argument("--mongodb-url", default=DEFAULT_MONGODB_URL)
    return parser.parse_args(argv)


class Workers:
    """Workers claiming and submitting as fast as they can; every served claim noted in
    the order its answer came back."""

    def __init__(self, session: aiohttp.ClientSession, url: str, tokens: list[str]) -> None:
        self.session, self.url, self.tokens = session, url, tokens
        self.served: list[tuple[float, float, str]] = []  # (sent, answered, task id)
        self.stop = asyncio.Event()

    async def work(self, token: str) -> None:
        headers = {"Authorization": basic_auth(token), "Content-Type": "application/json"}
        while not self.stop.is_set():
            sent = time.monotonic()
            async with self.session.post(f"{self.url}/v1/work/claim", headers=headers) as reply:
                body = await reply.read()
                if reply.status != 200:
                    await asyncio.sleep(0.05)
                    continue
            task_id = orjson.loads(body)["task_id"]
            self.served.append((sent, time.monotonic(), task_id))
            async with self.session.post(
                f"{self.url}/v1/work/{task_id}/submit",
                data=b'{"category": "big"}',
                headers=headers,
            ) as reply:
                await reply.read()

    def start(self) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(self.work(token)) for token in self.tokens]


async def create(session: aiohttp.ClientSession, url: str, key: str, callback: str) -> str:
    async with session.post(
        f"{url}/v1/task/categorize",
        json=task_body(callback),
        headers={"Authorization": basic_auth(key)},
    ) as reply:
        assert reply.status == 200, await reply.text()
        return str((await reply.json())["task_id"])


async def wait_served(workers: Workers, task_id: str, deadline: float) -> float | None:
    while time.monotonic() < deadline:
        for _, answered, served in reversed(workers.served):
            if served == task_id:
                return answered
        await asyncio.sleep(0.01)
    return None


def admin(stack: Stack, *args: str) -> dict[str, Any]:
    result = subprocess.run(
        [str(BIN / "humantask-admin"), *args],
        env=stack.admin_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return dict(orjson.loads(result.stdout))


async def measure(args: argparse.Namespace, stack: Stack) -> dict[str, Any]:
    await stack.prepare_accounts(args.workers)
    a = admin(stack, "customers", "create", "--name", "backlog")
    b = admin(stack, "customers", "create", "--name", "newcomer")
    callback = "http://127.0.0.1:9/never"
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    await insert_tasks(
        stack.mongodb_url, stack.database, a["customer_id"], callback, args.backlog, oldest=hour_ago
    )
    owners: dict[str, str] = {}
    async with aiohttp.ClientSession() as session:
        workers = Workers(session, stack.gateway_url, stack.worker_tokens)
        running = workers.start()
        while len(workers.served) < 50:
            await asyncio.sleep(0.05)
        waits: list[int] = []
        for _ in range(args.rounds):
            task_id = await create(session, stack.gateway_url, b["api_key"], callback)
            created = time.monotonic()
            owners[task_id] = "B"
            answered = await wait_served(workers, task_id, created + 120)
            between = [
                s
                for s in workers.served
                if s[0] >= created and (answered is None or s[1] < answered)
            ]
            waits.append(min(len(between), args.max_claims) if answered else args.max_claims)
        if args.no_weights:
            workers.stop.set()
            await asyncio.gather(*running, return_exceptions=True)
            return {
                "backlog": args.backlog,
                "workers": args.workers,
                "claims_before_the_new_task": waits,
                "median": statistics.median(waits),
                "max": max(waits),
                "capped_at": args.max_claims if max(waits) >= args.max_claims else None,
            }
        # B gets a backlog too (created now, as creates make them: a task inserted older
        # than what its customer's claims saw last waits for the pool's floor to be looked
        # up again, `spans.PoolFloor`), and weight 3.
        await insert_tasks(
            stack.mongodb_url,
            stack.database,
            b["customer_id"],
            callback,
            args.backlog,
            oldest=datetime.now(UTC),
        )
        weight = admin(stack, "customers", "set-weight", b["customer_id"], "3")
        start = len(workers.served)
        while len(workers.served) < start + args.share_claims:
            await asyncio.sleep(0.05)
        share_ids = [task_id for _, _, task_id in workers.served[start : start + args.share_claims]]
        workers.stop.set()
        await asyncio.gather(*running, return_exceptions=True)
    from pymongo import AsyncMongoClient

    from humantask_taskstore.repository import TaskRepository

    client: AsyncMongoClient = AsyncMongoClient(stack.mongodb_url, tz_aware=True)
    try:
        tasks = TaskRepository(client[stack.database])
        names = {a["customer_id"]: "A", b["customer_id"]: "B"}
        share = Counter()
        for task_id in share_ids:
            record = await tasks.get(task_id)
            if record is not None:
                share[names.get(record.customer_id, "?")] += 1
    finally:
        await client.close()
    return {
        "backlog": args.backlog,
        "workers": args.workers,
        "claims_before_the_new_task": waits,
        "median": statistics.median(waits),
        "max": max(waits),
        "capped_at": args.max_claims if max(waits) >= args.max_claims else None,
        "weights": {"A": 1.0, "B": weight.get("weight")},
        "share_of_claims": dict(share),
        "share_claims": args.share_claims,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    rid = run_id()
    log_dir = ROOT / ".local" / "bench" / f"fair-pool-{rid}"
    log_dir.mkdir(parents=True, exist_ok=True)
    with Vhost(args.amqp_url, f"humantask_fair_{rid}") as vhost:
        stack = Stack(
            vhost.url, args.mongodb_url, f"humantask_fair_{rid}", log_dir, f"live_fair_{rid}"
        )
        try:
            await stack.start()
            result = await measure(args, stack)
        finally:
            await stack.stop()
            await drop_database(args.mongodb_url, stack.database)
    result["host"] = describe_host()
    return result


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"{result['backlog']:,} tasks of A waiting, {result['workers']} workers: B's new task "
        f"served after {result['claims_before_the_new_task']} claims (median "
        f"{result['median']}, max {result['max']})"
        + (f"; capped at {result['capped_at']}" if result["capped_at"] else "")
    )
    if "weights" in result:
        print(
            f"both with a backlog, weights A 1, B {result['weights']['B']}: of "
            f"{result['share_claims']} claims, {result['share_of_claims']}"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
