"""`python -m chaos`: start the run's own RabbitMQ (one node, or three clustered behind
HAProxy with --cluster), two copies of each service, a callback receiver; create tasks
with callbacks while workers complete them; meanwhile kill -9 and restart each of the six
service processes once and a RabbitMQ node once, one at a time, at random points of the
load; then check the contract's promises, print a summary and write it as JSON to
chaos/results/. Exits 1 when a check fails."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sys
import time
import uuid
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from pymongo import AsyncMongoClient

from bench.stack import describe_host
from chaos.broker import Broker
from chaos.check import Check, Final, Window, check, settled
from chaos.load import Api, Journal, create_tasks, work
from chaos.processes import wait_until
from chaos.receiver import Receiver
from chaos.stack import Stack
from humantask_taskstore.repository import TaskRepository

ROOT = Path(__file__).resolve().parents[1]
STATE_DIR = Path(os.environ.get("CHAOS_STATE_DIR", "/var/tmp/humantask-chaos"))

CALLBACK_TIMEOUT_SECONDS = 5
CALLBACK_RETRY_DELAY_SECONDS = 2
RPC_TIMEOUT_SECONDS = 5
# After a restarted process is ready, a request sent before (or during) its death may
# still end in a 503: one that waited for a reply the dead process never sent
# (RPC_TIMEOUT_SECONDS), plus five seconds for clients to reconnect.
GRACE_SECONDS = RPC_TIMEOUT_SECONDS + 5
READY_SECONDS = 180  # a (re)started process or node must be ready within this


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument(
        "--cluster", action="store_true", help="three RabbitMQ nodes, quorum queues, HAProxy"
    )
    parser.add_argument("--rate", type=float, help="creates per second (default: tasks/250, ≥10)")
    parser.add_argument("--clients", type=int, default=32, help="concurrent customers")
    parser.add_argument("--workers", type=int, default=24, help="concurrent workers")
    parser.add_argument("--seed", type=int, help="of the kill schedule (default: random)")
    args = parser.parse_args(argv)
    args.rate = args.rate or max(10.0, args.tasks / 250)
    args.seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    return args


def database_url(database: str) -> str:
    base = os.environ.get("MONGODB_URL", "mongodb://127.0.0.1:27017/")
    return urlunsplit(urlsplit(base)._replace(path="/" + database))


class Chaos:
    """The kill schedule: each event at a random fraction of the creates, one at a time
    (the next waits for the previous one's recovery), and the windows they opened. The
    creates are paced (--rate) so that the load lasts while the events happen."""

    def __init__(self, args: argparse.Namespace, broker: Broker, stack: Stack) -> None:
        self.rng = random.Random(args.seed)
        self.broker = broker
        self.stack = stack
        self.tasks = args.tasks
        self.windows: list[Window] = []
        self.events: list[str] = [name for name in stack.copies]
        self.events.append(f"rabbitmq-{self.rng.randint(1, broker.nodes)}")
        self.rng.shuffle(self.events)
        # One event in each of equal slices of 5%..85% of the creates, at a random point.
        step = 0.8 / len(self.events)
        self.at = [0.05 + step * (i + self.rng.random()) for i in range(len(self.events))]

    def plan(self) -> str:
        return ", ".join(f"{e} at {f:.0%}" for e, f in zip(self.events, self.at, strict=True))

    async def run(self, journal: Journal, t0: float) -> None:
        for event, fraction in zip(self.events, self.at, strict=True):

            async def reached(fraction: float = fraction) -> bool:
                return len(journal.created) >= fraction * self.tasks

            await wait_until(reached, 3600, f"{fraction:.0%} of the tasks created")
            start = time.monotonic()
            pause = self.rng.uniform(0, 2)
            if event.startswith("rabbitmq-"):
                node = int(event.removeprefix("rabbitmq-"))
                await self.broker.kill_node(node)
                await asyncio.sleep(pause)  # the node stays dead a moment
                await self.broker.start_node(node)
                await self.stack.wait_all_ready(READY_SECONDS)
            else:
                copy = self.stack.copies[event]
                copy.process.kill9()
                await asyncio.sleep(pause)
                copy.process.start()
                await self.stack.wait_ready(copy, READY_SECONDS)
            ready = time.monotonic()
            self.windows.append(Window(f"kill -9 {event}", start, ready, ready + GRACE_SECONDS))
            print(
                f"  {start - t0:7.1f}s kill -9 {event} at {len(journal.created)} created, "
                f"{journal.completed()} completed; ready again after {ready - start:.1f}s",
                flush=True,
            )


async def read_final(api: Api, key: str, journal: Journal, deadline_seconds: float) -> Final:
    """Every task, the full list, and each task's callback log once it is settled."""
    final = Final()
    ids = list(journal.created.values())
    gate = asyncio.Semaphore(32)

    async def get(task_id: str) -> None:
        async with gate:
            status, body, _ = await api.call("get", "GET", f"/v1/task/{task_id}", key)
        if status == 200:
            final.tasks[task_id] = body
        else:
            final.missing.append(task_id)

    await asyncio.gather(*(get(task_id) for task_id in ids))
    path: str | None = "/v1/tasks?limit=100"
    while path:
        _, page, path = await api.call("list", "GET", path, key)
        final.listed.extend(task["task_id"] for task in page)

    async def callbacks(task_id: str) -> None:
        async with gate:
            _, log, _ = await api.call("callbacks", "GET", f"/v1/task/{task_id}/callbacks", key)
        final.callback_logs[task_id] = log

    deadline = time.monotonic() + deadline_seconds
    while True:
        unsettled = [t for t in ids if not settled(final.callback_logs.get(t, []))]
        await asyncio.gather(*(callbacks(task_id) for task_id in unsettled))
        unsettled = [t for t in unsettled if not settled(final.callback_logs[t])]
        if not unsettled or time.monotonic() > deadline:
            return final
        await asyncio.sleep(1)


async def read_answers(
    url: str, ids: list[str], workers: dict[str, int]
) -> dict[str, list[tuple[int, bool]]]:
    """Each task's answers as the task-store keeps them (the API shows no worker): the
    worker's number in this run, and whether the answer counts."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
    tasks = TaskRepository(client.get_default_database())
    gate = asyncio.Semaphore(32)
    found: dict[str, list[tuple[int, bool]]] = {}

    async def read(task_id: str) -> None:
        async with gate:
            record = await tasks.get(task_id)
        if record is not None:
            found[task_id] = [(workers[a.worker_id], a.counted) for a in record.answers]

    try:
        await asyncio.gather(*(read(task_id) for task_id in ids))
    finally:
        await client.close()
    return found


async def drop_database(url: str, database: str) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
    try:
        await client.drop_database(database)
    finally:
        await client.close()


async def no_pending(api: Api, key: str) -> bool:
    _, page, _ = await api.call("list", "GET", "/v1/tasks?status=pending&limit=1", key)
    return page == []


def report(
    args: argparse.Namespace,
    checks: list[Check],
    numbers: dict[str, Any],
    chaos: Chaos,
    timings: dict[str, float],
    settings: dict[str, Any],
    t0: float,
) -> dict[str, Any]:
    mode = "cluster (3 nodes, HAProxy)" if args.cluster else "single node"
    print(f"\n== chaos: {args.tasks} tasks, RabbitMQ {mode}, seed {args.seed} ==")
    for key in ("tasks_created", "tasks_completed", "callback_attempts", "tasks_with_2_attempts"):
        print(f"  {key.replace('_', ' '):<28} {numbers[key]}")
    print(f"  {'queue types':<28} {settings['queue_types']}")
    print(f"  {'receiver answered':<28} {numbers['receiver_answers']}")
    print(f"  {'retries after':<28} {numbers['retried_after']}")
    print(f"  {'answers':<28} {numbers['answers']}")
    print("  windows (s from start: kill .. ready .. end of grace):")
    for w in chaos.windows:
        print(f"    {w.what:<24} {w.start - t0:7.1f} .. {w.ready - t0:7.1f} .. {w.end - t0:7.1f}")
    print("  timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    interrupted = numbers["interrupted_first_attempts"]
    print(f"  interrupted first attempts, retried (the documented case): {len(interrupted)}")
    for task_id, told in interrupted.items():
        print(f"    {task_id}: {told}")
    print()
    for c in checks:
        print(f"  {'PASS' if c.passed else 'FAIL'}  {c.name}: {c.detail}")
    passed = all(c.passed for c in checks)
    print(f"\n  {'PASSED' if passed else 'FAILED'}")
    return {
        "tasks": args.tasks,
        "cluster": args.cluster,
        "seed": args.seed,
        "rate": args.rate,
        "clients": args.clients,
        "workers": args.workers,
        "passed": passed,
        "checks": [asdict(c) for c in checks],
        "numbers": numbers,
        "windows": [
            {"what": w.what, "start": w.start - t0, "ready": w.ready - t0, "end": w.end - t0}
            for w in chaos.windows
        ],
        "timings_seconds": timings,
        "settings": settings,
    }


async def run(args: argparse.Namespace) -> int:
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:4]
    log_dir = ROOT / "test-artifacts" / "chaos" / run_id
    log_dir.mkdir(parents=True, exist_ok=True)
    database = f"humantask_chaos_{run_id.replace('-', '_')}"
    broker = Broker(3 if args.cluster else 1, STATE_DIR / "rabbitmq", log_dir)
    receiver = Receiver(CALLBACK_TIMEOUT_SECONDS)
    settings = {
        "AMQP_URL": broker.amqp_url,
        "MONGODB_URL": database_url(database),
        # AMQP_QUEUE_TYPE=quorum: the durable queues replicated across the cluster.
        "AMQP_QUEUE_TYPE": "quorum" if args.cluster else "classic",
        "RATE_LIMIT_PER_SECOND": "0",  # one API key makes all the load
        "WORKER_RATE_LIMIT_PER_SECOND": "0",
        "GATEWAY_MAX_IN_FLIGHT_PER_CREDENTIAL": "0",
        "CALLBACK_ALLOW_PRIVATE_NETWORKS": "true",  # the receiver is on loopback
        "CALLBACK_TIMEOUT_SECONDS": str(CALLBACK_TIMEOUT_SECONDS),
        "CALLBACK_RETRY_DELAY_SECONDS": str(CALLBACK_RETRY_DELAY_SECONDS),
        "RPC_TIMEOUT_SECONDS": str(RPC_TIMEOUT_SECONDS),
        "SHUTDOWN_GRACE_SECONDS": "10",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    stack = Stack(settings, log_dir)
    journal = Journal()
    timings: dict[str, float] = {}
    passed = False
    t0 = time.monotonic()
    print(f"chaos {run_id}: {args.tasks} tasks, logs in {log_dir}", flush=True)
    try:
        await broker.start()
        callback_url = await receiver.start()
        await stack.start(READY_SECONDS)
        timings["start"] = time.monotonic() - t0
        queue_types = await broker.queue_types()
        print(f"  stack ready after {timings['start']:.1f}s; queues: {queue_types}", flush=True)
        key = (await stack.admin("customers", "create", "--name", "chaos"))["api_key"]
        gate = asyncio.Semaphore(4)

        async def worker_token(number: int) -> dict[str, Any]:
            async with gate:
                return await stack.admin("workers", "create", "--name", f"chaos-{number}")

        made = await asyncio.gather(*(worker_token(n) for n in range(args.workers)))
        tokens = [worker["token"] for worker in made]
        worker_numbers = {worker["worker_id"]: n for n, worker in enumerate(made)}
        chaos = Chaos(args, broker, stack)
        print(f"  schedule (seed {args.seed}): {chaos.plan()}", flush=True)
        connector = aiohttp.TCPConnector(limit=args.clients + args.workers + 8)
        async with aiohttp.ClientSession(connector=connector) as session:
            api = Api(session, stack.gateway_urls, journal)
            stop = asyncio.Event()
            load_start = time.monotonic()
            workers = [
                asyncio.create_task(work(api, token, n, stop)) for n, token in enumerate(tokens)
            ]
            creating = create_tasks(
                api, key, run_id, callback_url, args.tasks, args.rate, args.clients
            )
            await asyncio.gather(creating, chaos.run(journal, t0))
            timings["creates_and_kills"] = time.monotonic() - load_start
            await wait_until(
                lambda: no_pending(api, key), 600 + args.tasks / 10, "every task completed"
            )
            stop.set()
            await asyncio.gather(*workers)
            timings["load"] = time.monotonic() - load_start
            final = await read_final(api, key, journal, 60 + CALLBACK_TIMEOUT_SECONDS * 4)
            final.answers = await read_answers(
                settings["MONGODB_URL"], list(journal.created.values()), worker_numbers
            )
            timings["total"] = time.monotonic() - t0
        crashed = stack.crashed()
        checks, numbers = check(journal, final, receiver.received, chaos.windows, crashed)
        settings["queue_types"] = queue_types
        result = report(args, checks, numbers, chaos, timings, settings, t0)
        result["run_id"] = run_id
        # The commit measured, as the benchmarks record it: the docs name it beside each run.
        result["host"] = describe_host()
        out = (
            ROOT
            / "chaos"
            / "results"
            / f"{run_id}-{args.tasks}{'-cluster' if args.cluster else ''}.json"
        )
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"  written to {out.relative_to(ROOT)}")
        passed = result["passed"]
        return 0 if passed else 1
    finally:
        await stack.stop()
        await receiver.stop()
        await broker.stop()
        if passed:  # a failed run's database stays for a look
            await drop_database(settings["MONGODB_URL"], database)


async def run_until_stopped(args: argparse.Namespace) -> int:
    """`run`, cancelled by SIGTERM as by Ctrl-C, so that its cleanup stops everything."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await run(args)


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run_until_stopped(parse_args(sys.argv[1:] if argv is None else argv)))
