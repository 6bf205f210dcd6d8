"""`make bench` (`python -m bench`): the ceilings and the stack side by side, one run.

Starts a stack of its own (a RabbitMQ vhost, a database, the three services as
processes), the ceiling servers and a callback receiver; runs every operation at each
number of clients, each phase in a load-generator process of its own; then the growth
stage on a fresh stack (empty, then with --growth-tasks tasks inserted). Prints tables,
writes bench/results/<date>.json and .png, and stops everything it started.
See bench/README.md for how to read it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from bench import report
from bench.procs import CpuMeter, machine_busy_seconds, rss_mb
from bench.profiles import top_frames
from bench.stack import (
    BIN,
    ROOT,
    Process,
    Stack,
    Vhost,
    count_tasks,
    describe_host,
    drop_database,
    free_port,
    insert_tasks,
    redacted,
    retire_pending,
    run_id,
    tcp_answers,
    wait_line,
    with_database,
)
from bench.stats import CALLBACK_P50_MS, evaluate_targets, phase_summary

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_MONGODB_URL = "mongodb://127.0.0.1:27017/humantask"
SERVICES = ("gateway", "taskstore", "notifier")
CALLBACK_WAIT_SECONDS = 15.0
RPC_EXCHANGE, RPC_QUEUE, RPC_ROUTING_KEY = "bench.commands", "bench.rpc", "bench.echo"
INSERT_COLLECTION = "bench_insert_ceiling"
MIN_OK = 20  # a phase with fewer completions measures longer, up to MAX_WINDOW_FACTOR x
MAX_WINDOW_FACTOR = 4
DISTURBED_OTHER_CPU = 30.0  # % of a core used by processes not in the benchmark


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 1 s per phase, 5,000 growth tasks, results under .local/bench/",
    )
    parser.add_argument(
        "--seconds", type=float, help="measured seconds per phase (default 5; --quick 1)"
    )
    parser.add_argument(
        "--warmup", type=float, help="unrecorded seconds before each phase (default 1; --quick 0.3)"
    )
    parser.add_argument("--levels", default="1,16,64,256", help="numbers of concurrent clients")
    parser.add_argument(
        "--max-requests", type=int, default=200_000, help="per phase, whatever the time"
    )
    parser.add_argument(
        "--ops",
        default="bare_http,rabbitmq_rpc,mongo_insert,create,get,list,claim_submit,claim_submit_3",
        help="which operations the sweep runs",
    )
    parser.add_argument(
        "--growth-tasks",
        type=int,
        help="tasks inserted for the growth stage "
        "(default 100,000; --quick 5,000; 0 skips the stage)",
    )
    parser.add_argument("--growth-clients", type=int, default=64)
    parser.add_argument(
        "--growth-spread-hours",
        type=float,
        default=168.0,
        help="the growth tasks' creation times spread evenly over this many hours "
        "before the run (default a week; 0: one millisecond apart, a burst)",
    )
    parser.add_argument(
        "--list-tasks",
        type=int,
        default=1000,
        help="tasks of the customer whose pages the sweep lists",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="after the sweep, run create, get and claim+submit at --growth-clients "
        "again with py-spy on the services (stage 'profile', not in the targets)",
    )
    parser.add_argument(
        "--results-dir", type=Path, help="default bench/results (.local/bench/results with --quick)"
    )
    parser.add_argument("--amqp-url", default=os.environ.get("AMQP_URL") or DEFAULT_AMQP_URL)
    parser.add_argument(
        "--mongodb-url", default=os.environ.get("MONGODB_URL") or DEFAULT_MONGODB_URL
    )
    args = parser.parse_args(argv)
    args.seconds = args.seconds if args.seconds is not None else (1.0 if args.quick else 5.0)
    args.warmup = args.warmup if args.warmup is not None else (0.3 if args.quick else 1.0)
    if args.growth_tasks is None:
        args.growth_tasks = 5_000 if args.quick else 100_000
    args.levels = [int(level) for level in args.levels.split(",") if level.strip()]
    args.ops = [op.strip() for op in args.ops.split(",") if op.strip()]
    if args.results_dir is None:
        args.results_dir = ROOT / (".local/bench/results" if args.quick else "bench/results")
    if args.seconds <= 0 or not args.levels or min(args.levels) < 1:
        parser.error("--seconds must be positive and --levels at least 1")
    return args


class CallbackReceiver:
    """Answers every callback 200 and notes when the first one of each task arrived."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.count = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _receive(self, request: web.Request) -> web.Response:
        arrived = time.time()
        self.count += 1
        task_id = request.headers.get("X-Callback-Task-Id", "")
        self.arrivals.setdefault(task_id, arrived)
        await request.read()
        return web.Response(status=200)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/callback", self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}/callback"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def wait_for(self, task_ids: Sequence[str], seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and any(
            task_id not in self.arrivals for task_id in task_ids
        ):
            await asyncio.sleep(0.05)


class RssSampler:
    """VmRSS of the services every 0.2 s while load runs: the peak per service."""

    def __init__(self) -> None:
        self.pids: dict[str, int] = {}
        self.peak: dict[str, float] = {}
        self.phase_peak: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> dict[str, float | None]:
        return {name: rss_mb(pid) for name, pid in self.pids.items()}

    async def _run(self) -> None:
        while True:
            for name, value in self.sample().items():
                if value is not None:
                    self.peak[name] = max(self.peak.get(name, 0.0), value)
                    self.phase_peak[name] = max(self.phase_peak.get(name, 0.0), value)
            await asyncio.sleep(0.2)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


class Bench:
    def __init__(self, args: argparse.Namespace, log_dir: Path, receiver: CallbackReceiver) -> None:
        self.args = args
        self.log_dir = log_dir
        self.receiver = receiver
        self.rows: list[dict[str, Any]] = []
        self.rss = RssSampler()
        self.stack: Stack | None = None
        self.ceilings: dict[str, Process] = {}
        self.bare_url = ""
        self.amqp_url = ""
        self.profiles: dict[str, Any] = {}
        self.claim_rate_guess = 50.0
        self.list_key = ""
        self.several_customer = ""

    # -- one phase -------------------------------------------------------------------

    def _spec(self, op: str, clients: int, **extra: Any) -> dict[str, Any]:
        assert self.stack is not None
        spec = {
            "op": op,
            "clients": clients,
            "warmup_s": self.args.warmup,
            "seconds": self.args.seconds,
            "max_seconds": self.args.seconds * MAX_WINDOW_FACTOR,
            "min_ok": MIN_OK,
            "max_requests": self.args.max_requests,
            "callback_url": self.receiver.url,
        }
        if op == "bare_http":
            spec["url"] = self.bare_url
        elif op == "rabbitmq_rpc":
            spec.update(
                amqp_url=self.amqp_url, rpc_exchange=RPC_EXCHANGE, rpc_routing_key=RPC_ROUTING_KEY
            )
        elif op == "mongo_insert":
            spec.update(
                mongodb_url=with_database(self.args.mongodb_url, self.stack.database),
                database=self.stack.database,
                collection=INSERT_COLLECTION,
            )
        else:
            spec.update(
                url=self.stack.gateway_url,
                api_key=self.stack.api_key,
                worker_tokens=self.stack.worker_tokens[:clients],
            )
        spec.update(extra)
        return spec

    async def phase(
        self,
        op: str,
        clients: int,
        stage: str,
        profile: bool = False,
        quiet: bool = False,
        **extra: Any,
    ) -> dict[str, Any]:
        assert self.stack is not None
        spec = self._spec(op, clients, **extra)
        log_path = self.log_dir / f"loadgen-{stage}-{op}-{clients}.log"
        log = open(log_path, "wb")  # noqa: SIM115 - closed below, once the process ended
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.loadgen",
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            limit=256 * 1024 * 1024,
        )
        components: dict[str, list[int]] = {name: [pid] for name, pid in self.stack.pids().items()}
        components["loadgen"] = [process.pid]
        components["bench"] = [os.getpid()]
        if op == "bare_http":
            components["ceiling"] = [self.ceilings["bare"].pid]
        elif op == "rabbitmq_rpc":
            components["ceiling"] = [self.ceilings["rpc"].pid]
        meter = CpuMeter(components)
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(orjson.dumps(spec))
        await process.stdin.drain()
        process.stdin.close()
        before = after = None
        result: dict[str, Any] | None = None
        spies: list[asyncio.Task[None]] = []
        bound = self.args.warmup + self.args.seconds * MAX_WINDOW_FACTOR + 90
        try:
            async with asyncio.timeout(bound):
                while True:
                    line = await process.stdout.readline()
                    if not line:
                        break
                    text = line.decode(errors="replace").strip()
                    if text == "START":
                        before = meter.snapshot()
                        self.rss.phase_peak = {}
                        if profile:
                            spies = self._start_profilers(op)
                    elif text == "STOP":
                        after = meter.snapshot()
                    elif text.startswith("RESULT "):
                        result = orjson.loads(text[len("RESULT ") :])
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()
            raise RuntimeError(
                f"the load generator of {op}@{clients} ran over {bound:g}s"
            ) from None
        finally:
            log.close()
            for spy in spies:
                await spy
        if result is None:
            tail = (self.log_dir / f"loadgen-{stage}-{op}-{clients}.log").read_text(
                errors="replace"
            )[-3000:]
            raise RuntimeError(f"the load generator of {op}@{clients} gave no result:\n{tail}")
        row = {
            "stage": stage,
            "kind": "ceiling" if op in report.CEILINGS else "stack",
            "op": op,
            "clients": clients,
            **result,
        }
        if before is not None and after is not None:
            row["cpu"] = CpuMeter.usage(before, after)
            # Something besides the benchmark used the cores (another user of the box).
            row["disturbed"] = row["cpu"].get("other", 0) > DISTURBED_OTHER_CPU
        row["rss_peak_mb"] = dict(self.rss.phase_peak)
        if not quiet:
            self._print_row(row)
        return row

    def _print_row(self, row: Mapping[str, Any]) -> None:
        cpu = row.get("cpu") or {}
        cpu_text = " ".join(
            f"{short} {cpu[key]:.0f}" for key, short in report.CPU_COLUMNS if cpu.get(key)
        )
        rate = "" if row["op"] in report.LATENCY_ONLY else f"{row['throughput']:9.1f}/s "
        print(
            f"  {row['stage']:<12} {row['op']:<18} {row['clients']:>4}  {rate}"
            f"p50 {row.get('p50_ms') or 0:8.1f} ms  p99 {row.get('p99_ms') or 0:8.1f} ms  "
            f"errors {row.get('errors') or 0}  cpu% {cpu_text}",
            flush=True,
        )

    async def claim_submit(
        self, clients: int, stage: str, profile: bool = False, op: str = "claim_submit"
    ) -> list[dict[str, Any]]:
        """claim+submit, then the callbacks of the submitted tasks: two rows. With `op`
        claim_submit_3, on tasks of min_workers and max_workers 3 of a customer of their
        own (three claim+submits of three workers complete one; no callback row)."""
        assert self.stack is not None
        needed = int(max(300, 2 * self.claim_rate_guess * (self.args.warmup + self.args.seconds)))
        database = self.stack.database
        several = op == "claim_submit_3"
        customer_id = self.stack.customer_id
        if several:
            if not self.several_customer:
                self.several_customer = (await self.stack.create_customer("bench-several"))[
                    "customer_id"
                ]
                # Only these tasks in the pool: the single-worker ones left are retired.
                await retire_pending(self.args.mongodb_url, database, self.stack.customer_id)
            customer_id = self.several_customer
        pending = await count_tasks(
            self.args.mongodb_url, database, {"status": "pending", "customer_id": customer_id}
        )
        if pending < needed:
            await insert_tasks(
                self.args.mongodb_url,
                database,
                customer_id,
                self.receiver.url,
                needed - pending,
                oldest=datetime.now(UTC),
                # Three answers each, always: the cost of several workers, not of stopping
                # early (which would end the other leases and answer their submits 409).
                params={"min_workers": 3, "max_workers": 3} if several else None,
            )
        row = await self.phase(op, clients, stage, profile=profile)
        row["pending_before"] = max(pending, needed)
        if several:
            row.pop("submits", None)
            return [row]
        self.claim_rate_guess = max(self.claim_rate_guess, row["throughput"])
        submits = row.pop("submits", [])
        await self.receiver.wait_for([task_id for task_id, _, _ in submits], CALLBACK_WAIT_SECONDS)
        latencies, after_answer, missing = [], [], 0
        for task_id, sent, answered in submits:
            arrived = self.receiver.arrivals.get(task_id)
            if arrived is None:
                missing += 1
                continue
            latencies.append(arrived - sent)
            after_answer.append(arrived - answered)
        errors = {f"no callback within {CALLBACK_WAIT_SECONDS:g}s": missing} if missing else {}
        callback = {
            "stage": stage,
            "kind": "stack",
            "op": "submit_to_callback",
            "clients": clients,
            **phase_summary(latencies, row["window_s"], errors),
        }
        callback["throughput"] = None
        callback["from_submit_answer_p50_ms"] = phase_summary(after_answer, 1, {})["p50_ms"]
        callback["callbacks"] = len(submits) - missing
        self._print_row(callback)
        return [row, callback]

    # -- profiling -------------------------------------------------------------------

    def _start_profilers(self, op: str) -> list[asyncio.Task[None]]:
        assert self.stack is not None
        spy = BIN / "py-spy"
        if not spy.exists():
            print("  note: py-spy is not installed (pip install -e '.[bench]'); no profile")
            return []
        targets = ["gateway", "taskstore"] + (["notifier"] if op == "claim_submit" else [])
        tasks = []
        for service in targets:
            pid = self.stack.pids().get(service)
            if pid is None:
                continue
            output = self.log_dir / f"profile-{op}-{service}.txt"
            tasks.append(asyncio.create_task(self._profile(spy, pid, output, op, service)))
        return tasks

    async def _profile(self, spy: Path, pid: int, output: Path, op: str, service: str) -> None:
        argv = [
            str(spy),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, int(self.args.seconds))),
            "--rate",
            "100",
            "--nonblocking",
            "--format",
            "raw",
            "--output",
            str(output),
        ]
        process = await asyncio.create_subprocess_exec(
            *argv, stdout=subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        try:
            async with asyncio.timeout(self.args.seconds + 30):
                _, stderr = await process.communicate()
        except TimeoutError:
            process.kill()
            await process.wait()
            return
        if process.returncode != 0 or not output.exists():
            print(f"  note: py-spy on {service} failed: {stderr.decode(errors='replace')[-300:]}")
            return
        summary = top_frames(output.read_text(errors="replace").splitlines())
        summary["raw"] = str(output.relative_to(ROOT))
        self.profiles.setdefault(op, {})[service] = summary

    # -- the stages ------------------------------------------------------------------

    async def start_ceilings(self) -> None:
        assert self.stack is not None
        env = self.stack.env()
        port = free_port()
        self.bare_url = f"http://127.0.0.1:{port}"
        self.ceilings["bare"] = Process(
            "ceiling-bare",
            [sys.executable, "-m", "bench.ceilings", "bare", "--port", str(port)],
            env,
            self.log_dir,
        )
        self.ceilings["rpc"] = Process(
            "ceiling-rpc",
            [
                sys.executable,
                "-m",
                "bench.ceilings",
                "rpc",
                "--amqp-url",
                self.amqp_url,
                "--exchange",
                RPC_EXCHANGE,
                "--queue",
                RPC_QUEUE,
                "--routing-key",
                RPC_ROUTING_KEY,
            ],
            env,
            self.log_dir,
        )
        for process in self.ceilings.values():
            process.start(stdout_pipe=True)
        await asyncio.gather(
            *(wait_line(process, "READY", 60) for process in self.ceilings.values())
        )

    async def stop_ceilings(self) -> None:
        for process in self.ceilings.values():
            await process.stop(10)

    async def sweep(self) -> None:
        """The ceilings, then the stack. claim+submit runs first, on a pool of a few
        hundred tasks inserted for it (a claim's cost grows with the pool, see growth);
        list reads a customer of its own holding --list-tasks tasks."""
        assert self.stack is not None
        order = [op for op in self.args.ops if op in report.CEILINGS]
        order += [
            op
            for op in ("claim_submit", "claim_submit_3", "create", "get", "list")
            if op in self.args.ops
        ]
        created: list[str] = []
        for op in order:
            if op == "list" and not self.list_key:
                customer = await self.stack.create_customer("bench-list")
                self.list_key = customer["api_key"]
                await insert_tasks(
                    self.args.mongodb_url,
                    self.stack.database,
                    customer["customer_id"],
                    self.receiver.url,
                    self.args.list_tasks,
                )
            if op == "get" and not created:
                created = await self._some_tasks()
            for clients in self.args.levels:
                if op in ("claim_submit", "claim_submit_3"):
                    self.rows.extend(await self.claim_submit(clients, "sweep", op=op))
                    continue
                extra: dict[str, Any] = {}
                if op == "get":
                    extra["task_ids"] = created[-50_000:]
                if op == "list":
                    extra["api_key"] = self.list_key
                row = await self.phase(op, clients, "sweep", **extra)
                if op == "list":
                    row["customer_tasks"] = self.args.list_tasks
                created.extend(row.pop("created_ids", []))
                self.rows.append(row)

    async def warm_up(self) -> None:
        """Creates at the highest level, not recorded: the services' connection pools
        (PyMongo opens its connections, and FerretDB its PostgreSQL backends, on demand)
        and first-call costs are paid before anything is measured."""
        clients = max([*self.args.levels, self.args.growth_clients])
        print(f"  warming up: create at {clients} clients, not recorded", flush=True)
        spec = {"warmup_s": 0.0, "seconds": max(2.0, 2 * self.args.warmup), "min_ok": 0}
        row = await self.phase("create", clients, "warmup", quiet=True, **spec)
        if row.get("error_count"):
            print(f"  warm-up errors: {row.get('errors')}", flush=True)

    async def _some_tasks(self) -> list[str]:
        assert self.stack is not None
        ids, _ = await insert_tasks(
            self.args.mongodb_url,
            self.stack.database,
            self.stack.customer_id,
            self.receiver.url,
            1000,
        )
        return ids

    async def profile(self) -> None:
        clients = self.args.growth_clients
        print(f"profile: py-spy on the services at {clients} clients")
        ids = await self._some_tasks()
        for op in ("create", "get", "claim_submit"):
            if op == "claim_submit":
                self.rows.extend(await self.claim_submit(clients, "profile", profile=True))
            else:
                row = await self.phase(
                    op,
                    clients,
                    "profile",
                    profile=True,
                    **({"task_ids": ids} if op == "get" else {}),
                )
                row.pop("created_ids", None)
                self.rows.append(row)

    async def growth(self, tasks: int) -> dict[str, Any]:
        """create, get, list and claim+submit on the empty database, then again with
        `tasks` pending tasks of the same customer inserted; list and claim+submit also
        at 1 client, to show what one of them costs alone."""
        assert self.stack is not None
        clients = self.args.growth_clients
        info: dict[str, Any] = {
            "tasks": tasks,
            "clients": clients,
            "status": "pending",
            "spread_hours": self.args.growth_spread_hours,
        }
        inserted: list[str] = []
        for stage in ("growth_empty", "growth_full"):
            if stage == "growth_full":
                print(f"  inserting {tasks:,} tasks ...", flush=True)
                spread = (
                    timedelta(hours=self.args.growth_spread_hours)
                    if self.args.growth_spread_hours
                    else None
                )
                inserted, seconds = await insert_tasks(
                    self.args.mongodb_url,
                    self.stack.database,
                    self.stack.customer_id,
                    self.receiver.url,
                    tasks,
                    spread=spread,
                )
                info["insert_seconds"] = round(seconds, 1)
                info["insert_rate"] = round(tasks / seconds, 1) if seconds else None
                print(f"  inserted {tasks:,} tasks in {seconds:.1f} s", flush=True)
            row = await self.phase("create", clients, stage)
            created = row.pop("created_ids", [])
            self.rows.append(row)
            ids = (inserted + created) or await self._some_tasks()
            self.rows.append(await self.phase("get", clients, stage, task_ids=ids))
            customer_tasks = await count_tasks(
                self.args.mongodb_url, self.stack.database, {"customer_id": self.stack.customer_id}
            )
            for level in sorted({1, clients}):
                row = await self.phase("list", level, stage)
                row["customer_tasks"] = customer_tasks
                self.rows.append(row)
            for level in sorted({1, clients}):
                self.rows.extend(await self.claim_submit(level, stage))
        return info


async def _run(args: argparse.Namespace) -> int:
    started = datetime.now(UTC)
    rid = run_id()
    log_dir = ROOT / ".local" / "bench" / f"{started:%Y%m%d-%H%M%S}-{rid}"
    log_dir.mkdir(parents=True, exist_ok=True)
    for url, port, name in (
        (args.amqp_url, 5672, "RabbitMQ"),
        (args.mongodb_url, 27017, "MongoDB"),
    ):
        if not tcp_answers(url, port):
            print(
                f"{name} does not answer at {redacted(url)}: start it (make services-up) or set "
                f"AMQP_URL / MONGODB_URL",
                file=sys.stderr,
            )
            return 2
    busy_before, _, _ = machine_busy_seconds()
    await asyncio.sleep(2)
    busy_pct = round(100 * (machine_busy_seconds()[0] - busy_before) / 2, 1)
    if busy_pct > DISTURBED_OTHER_CPU:
        print(
            f"warning: the machine is already busy ({busy_pct:.0f}% of a core before the benchmark "
            "started): other users of the box will blur the numbers",
            flush=True,
        )
    print(
        f"humantask bench {rid}: levels {args.levels}, {args.seconds:g} s per phase after "
        f"{args.warmup:g} s warm-up; logs in {log_dir.relative_to(ROOT)}",
        flush=True,
    )
    receiver = CallbackReceiver()
    await receiver.start()
    bench = Bench(args, log_dir, receiver)
    rss: dict[str, dict[str, Any]] = {}
    growth_info: dict[str, Any] = {"tasks": 0}
    exit_codes: dict[str, Any] = {}
    api_key = f"live_bench_{rid}"
    workers = max([*args.levels, args.growth_clients])
    try:
        with Vhost(args.amqp_url, f"humantask_bench_{rid}") as vhost:
            stack = Stack(vhost.url, args.mongodb_url, f"humantask_bench_{rid}", log_dir, api_key)
            bench.stack, bench.amqp_url = stack, vhost.url
            try:
                print("starting the stack ...", flush=True)
                await stack.start()
                await stack.prepare_accounts(workers)
                bench.rss.pids = stack.pids()
                await asyncio.sleep(2)
                idle = bench.rss.sample()
                for name in SERVICES:
                    rss[name] = {"idle_mb": idle.get(name)}
                print(
                    "idle RSS MB: " + ", ".join(f"{name} {value}" for name, value in idle.items()),
                    flush=True,
                )
                await bench.start_ceilings()
                bench.rss.start()
                print("sweep:", flush=True)
                await bench.warm_up()
                await bench.sweep()
                if args.profile:
                    await bench.profile()
                await bench.rss.stop()
                end = bench.rss.sample()
                for name in SERVICES:
                    rss[name]["peak_mb"] = bench.rss.peak.get(name)
                    rss[name]["end_mb"] = end.get(name)
            finally:
                await bench.rss.stop()
                await bench.stop_ceilings()
                exit_codes["sweep"] = await stack.stop()
                await drop_database(args.mongodb_url, stack.database)
        if args.growth_tasks > 0:
            with Vhost(args.amqp_url, f"humantask_bench_{rid}_growth") as vhost:
                stack = Stack(
                    vhost.url, args.mongodb_url, f"humantask_bench_{rid}_growth", log_dir, api_key
                )
                bench.stack, bench.amqp_url = stack, vhost.url
                bench.claim_rate_guess = 50.0
                try:
                    print(f"growth at {args.growth_clients} clients on a fresh stack:", flush=True)
                    await stack.start()
                    await stack.prepare_accounts(workers)
                    bench.rss.pids = stack.pids()
                    await bench.warm_up()
                    growth_info = await bench.growth(args.growth_tasks)
                finally:
                    exit_codes["growth"] = await stack.stop()
                    await drop_database(args.mongodb_url, stack.database)
    finally:
        await receiver.stop()

    finished = datetime.now(UTC)
    targets = evaluate_targets(bench.rows, rss, at=args.growth_clients)
    document = {
        "schema": 1,
        "started_at": started.isoformat(),
        "finished_at": finished.isoformat(),
        "host": describe_host(),
        "config": {
            "levels": args.levels,
            "seconds": args.seconds,
            "warmup_s": args.warmup,
            "quick": args.quick,
            "max_requests": args.max_requests,
            "ops": args.ops,
            "growth_tasks": args.growth_tasks,
            "growth_clients": args.growth_clients,
            "growth_spread_hours": args.growth_spread_hours,
            "list_tasks": args.list_tasks,
            "min_ok": MIN_OK,
            "max_window_s": args.seconds * MAX_WINDOW_FACTOR,
            "machine_busy_before_pct": busy_pct,
            "load_generator": "one process per phase (python -m bench.loadgen), on the same cores",
            "service_env": {
                "LOG_LEVEL": "WARNING",
                "RATE_LIMIT_PER_SECOND": "0",
                "WORKER_RATE_LIMIT_PER_SECOND": "0",
                "GATEWAY_MAX_IN_FLIGHT_PER_CREDENTIAL": "0",
                "others": "defaults (PREFETCH_COUNT 32, AUTH_CACHE_SECONDS 30, ...)",
            },
        },
        "targets_config": {"callback_p50_ms": CALLBACK_P50_MS},
        "results": bench.rows,
        "growth": growth_info,
        "rss": rss,
        "profiles": bench.profiles,
        "service_exit_codes": exit_codes,
        "callbacks_received": receiver.count,
        "targets": [target.as_dict() for target in targets],
        "logs": str(log_dir.relative_to(ROOT)),
    }
    json_path, png_path = report.result_paths(args.results_dir, started)
    report.write_json(json_path, document)
    try:
        report.plot(png_path, document)
    except ImportError:
        png_path = None  # type: ignore[assignment]
        print("note: matplotlib is not installed (pip install -e '.[bench]'): no plot")

    print()
    print(report.results_table(bench.rows))
    print()
    print(report.rss_table(rss))
    if growth_info.get("tasks"):
        print()
        print(
            f"growth: {growth_info['tasks']:,} tasks inserted "
            f"in {growth_info.get('insert_seconds')} s"
        )
        print(report.growth_table(bench.rows, args.growth_clients, growth_info["tasks"]))
    for op, services in bench.profiles.items():
        for service, summary in services.items():
            print()
            print(
                f"profile {op}@{args.growth_clients} {service}: {summary['samples']} samples, "
                f"{summary['loop_samples']} in the event loop's C code (idle or socket I/O); "
                "top self of the rest:"
            )
            for frame, share in summary["self"][:8]:
                print(f"  {share:5.1f}%  {frame}")
    print()
    print(report.targets_table(targets))
    print()
    print(
        f"wrote {json_path.relative_to(ROOT) if json_path.is_relative_to(ROOT) else json_path}"
        + (f" and {png_path.name}" if png_path else "")
    )
    bad_exits = {stage: codes for stage, codes in exit_codes.items() if any(codes.values())}
    if bad_exits:
        print(f"warning: services exited non-zero on SIGTERM: {bad_exits} (logs in {log_dir})")
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        main_task: asyncio.Future[int] | None = None

        async def guarded() -> int:
            loop = asyncio.get_running_loop()
            current = asyncio.current_task()
            assert current is not None
            # SIGTERM (make interrupted, CI timeout): stop what was started, like Ctrl-C.
            loop.add_signal_handler(signal.SIGTERM, current.cancel)
            return await _run(args)

        try:
            code = runner.run(guarded())
        except (KeyboardInterrupt, asyncio.CancelledError):
            print("interrupted: everything the benchmark started was stopped", file=sys.stderr)
            code = 130
        del main_task
    sys.exit(code)
