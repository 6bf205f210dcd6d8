"""The benchmark's own stack: a RabbitMQ vhost and a database of its own, the three
services as processes (the console scripts next to this interpreter), worker tokens,
and the ceiling servers. Only loopback addresses; every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def host_port(url: str, default_port: int) -> tuple[str, int]:
    netloc = urlsplit(url).netloc.rsplit("@", 1)[-1].split(",")[0]
    host, _, port = netloc.partition(":")
    return host or "localhost", int(port) if port else default_port


def tcp_answers(url: str, default_port: int, timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection(host_port(url, default_port), timeout=timeout):
            return True
    except OSError:
        return False


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def redacted(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    userinfo, _, hosts = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{userinfo.split(':', 1)[0]}:***@{hosts}"))


# -- a RabbitMQ vhost of the run's own ----------------------------------------------------


def _rabbitmqctl() -> str | None:
    path = shutil.which("rabbitmqctl") or (
        "/usr/sbin/rabbitmqctl" if os.path.exists("/usr/sbin/rabbitmqctl") else None
    )
    if path is None or os.geteuid() != 0:
        return None
    return path


class Vhost:
    """`<name>` on a local broker via rabbitmqctl (as the tests make theirs), deleted at
    the end; where that is not possible, the URL's own vhost, shared (said so)."""

    def __init__(self, base_url: str, name: str) -> None:
        self.base_url = base_url
        self.name = name
        self.created = False
        self.url = base_url

    def __enter__(self) -> Vhost:
        ctl = _rabbitmqctl()
        if ctl is None or host_port(self.base_url, 5672)[0] not in LOOPBACK:
            print(
                "  note: no vhost of its own (rabbitmqctl not usable here); "
                f"using {redacted(self.base_url)}"
            )
            return self
        user = unquote(urlsplit(self.base_url).username or "guest")
        try:
            subprocess.run(
                [ctl, "-q", "add_vhost", self.name], check=True, capture_output=True, timeout=60
            )
            subprocess.run(
                [ctl, "-q", "set_permissions", "-p", self.name, user, ".*", ".*", ".*"],
                check=True,
                capture_output=True,
                timeout=60,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            print(
                f"  note: could not make vhost {self.name} ({exc!r}); "
                f"using {redacted(self.base_url)}"
            )
            return self
        self.created = True
        self.url = urlunsplit(
            urlsplit(self.base_url)._replace(path="/" + quote(self.name, safe=""))
        )
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self.created:
            return
        ctl = _rabbitmqctl()
        try:
            subprocess.run(
                [ctl, "-q", "delete_vhost", self.name], check=True, capture_output=True, timeout=60
            )
        except (OSError, subprocess.SubprocessError, TypeError) as exc:
            print(f"  warning: could not delete vhost {self.name}: {exc!r}")


# -- processes -------------------------------------------------------------------------


class Process:
    """One child process logging to a file; SIGTERM then SIGKILL to stop it."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], log_dir: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = dict(env)
        self.log_path = log_dir / f"{name}.log"
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self, stdout_pipe: bool = False) -> Process:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if stdout_pipe else log,
                stderr=log,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill9(self) -> None:
        """SIGKILL, as a crash would (`make chaos`); returns once the process is gone."""
        assert self.popen is not None
        os.kill(self.popen.pid, signal.SIGKILL)
        self.popen.wait(30)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    async def stop(self, timeout: float = 30.0) -> int | None:
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while self.popen.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if self.popen.poll() is None:
                print(f"  {self.name} did not stop in {timeout:g}s; killing it")
                self.popen.kill()
                self.popen.wait(10)
        if self.popen.stdout is not None:
            self.popen.stdout.close()
        return self.popen.returncode


async def wait_http_ok(process: Process, url: str, deadline_seconds: float) -> None:
    deadline = time.monotonic() + deadline_seconds
    last = "no attempt yet"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while True:
            if not process.alive():
                raise RuntimeError(
                    f"{process.name} exited before {url} answered 200; "
                    f"its log ({process.log_path}):\n{process.log_tail()}"
                )
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
                    last = f"HTTP {response.status}"
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                last = repr(exc)
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{process.name}: {url} did not answer 200 within "
                    f"{deadline_seconds:g}s (last: {last}); its log:\n{process.log_tail()}"
                )
            await asyncio.sleep(0.1)


async def wait_line(process: Process, expected: str, deadline_seconds: float) -> None:
    """Wait for a line on the process's stdout (a ceiling server's READY)."""
    assert process.popen is not None and process.popen.stdout is not None
    stdout = process.popen.stdout

    def read() -> str:
        return stdout.readline().decode(errors="replace").strip()

    try:
        line = await asyncio.wait_for(asyncio.to_thread(read), deadline_seconds)
    except TimeoutError:
        raise RuntimeError(
            f"{process.name} did not say {expected} within {deadline_seconds:g}s:\n"
            f"{process.log_tail()}"
        ) from None
    if line != expected:
        raise RuntimeError(f"{process.name} said {line!r}, not {expected}:\n{process.log_tail()}")


# -- the stack ---------------------------------------------------------------------------


@dataclass
class Stack:
    """Gateway, task-store and notifier on `amqp_url` and `mongodb_url`."""

    amqp_url: str
    mongodb_url: str
    database: str
    log_dir: Path
    api_key: str
    processes: dict[str, Process] = field(default_factory=dict)
    gateway_url: str = ""
    customer_id: str = ""
    worker_tokens: list[str] = field(default_factory=list)

    def env(self, **extra: object) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            AMQP_URL=self.amqp_url,
            MONGODB_URL=with_database(self.mongodb_url, self.database),
            HUMANTASK_DEMO_API_KEY=self.api_key,
            CALLBACK_ALLOW_PRIVATE_NETWORKS="true",
            LOG_LEVEL="WARNING",
            # One API key makes all the load: a per-key limit would measure the limit.
            RATE_LIMIT_PER_SECOND="0",
            WORKER_RATE_LIMIT_PER_SECOND="0",
            GATEWAY_MAX_IN_FLIGHT_PER_CREDENTIAL="0",
            SHUTDOWN_GRACE_SECONDS="10",
            PYTHONUNBUFFERED="1",
            NO_PROXY="127.0.0.1,localhost",
        )
        env.update({key: str(value) for key, value in extra.items()})
        return env

    async def start(self, ready_seconds: float = 60.0) -> None:
        plan = [
            ("taskstore", "humantask-taskstore"),
            ("notifier", "humantask-notifier"),
            ("gateway", "humantask-gateway"),
        ]
        urls = {}
        for name, script in plan:
            executable = BIN / script
            if not executable.exists():
                raise RuntimeError(f"{executable} is missing: run `make install`")
            health = free_port()
            extra: dict[str, object] = {"HEALTH_PORT": health}
            if name == "gateway":
                port = free_port()
                extra["GATEWAY_PORT"] = port
                self.gateway_url = f"http://127.0.0.1:{port}"
                urls[name] = f"{self.gateway_url}/readyz"
            else:
                urls[name] = f"http://127.0.0.1:{health}/readyz"
            self.processes[name] = Process(
                f"{name}-{self.database}", [str(executable)], self.env(**extra), self.log_dir
            ).start()
        await asyncio.gather(
            *(wait_http_ok(self.processes[name], urls[name], ready_seconds) for name, _ in plan)
        )

    def pids(self) -> dict[str, int]:
        return {name: process.pid for name, process in self.processes.items() if process.alive()}

    async def stop(self) -> dict[str, int | None]:
        codes = {}
        for name in ("gateway", "notifier", "taskstore"):
            if name in self.processes:
                codes[name] = await self.processes[name].stop()
        return codes

    # -- accounts --------------------------------------------------------------------

    def admin_env(self) -> dict[str, str]:
        return self.env()

    async def create_customer(self, name: str) -> dict[str, str]:
        """`humantask-admin customers create`: customer_id, api_key, callback_secret."""
        result = await asyncio.to_thread(
            subprocess.run,
            [str(BIN / "humantask-admin"), "customers", "create", "--name", name],
            env=self.admin_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return orjson.loads(result.stdout)

    async def prepare_accounts(self, workers: int) -> None:
        """The demo customer's id, and `workers` worker tokens: the first made by
        `humantask-admin workers create` as an operator would, the others with the same
        repository call in this process (one CLI process per worker takes minutes)."""
        from pymongo import AsyncMongoClient

        from humantask_shared.core.credentials import credential_hash, new_worker_token
        from humantask_taskstore.repository import AccountRepository

        result = await asyncio.to_thread(
            subprocess.run,
            [str(BIN / "humantask-admin"), "workers", "create", "--name", "bench"],
            env=self.admin_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        self.worker_tokens = [orjson.loads(result.stdout)["token"]]
        client: AsyncMongoClient = AsyncMongoClient(
            with_database(self.mongodb_url, self.database),
            tz_aware=True,
            w="majority",
            journal=True,
        )
        try:
            db = client[self.database]
            accounts = AccountRepository(db)
            for number in range(1, workers):
                token = new_worker_token()
                await accounts.add_worker(
                    f"bench-{number}", credential_hash(token), datetime.now(UTC)
                )
                self.worker_tokens.append(token)
            customer = await accounts.owner_of(credential_hash(self.api_key), "customer")
            if customer is None:
                raise RuntimeError("the gateway did not create the demo customer")
            self.customer_id = customer.principal_id
        finally:
            await client.close()


# -- tasks written straight into the database ------------------------------------------------


async def insert_tasks(
    mongodb_url: str,
    database: str,
    customer_id: str,
    callback_url: str,
    count: int,
    *,
    oldest: datetime | None = None,
    spread: timedelta | None = None,
    batch: int = 1000,
    deadline_seconds: float = 600,
    params: dict[str, Any] | None = None,
) -> tuple[list[str], float]:
    """`count` pending tasks of `customer_id`, built by the task-store's own functions
    (`create_task`, `task_document`) with an empty outbox, inserted with
    `insert_many` in batches (majority, journaled), and the customer marked waiting in
    the fair pool (`PoolRepository.touch`, as the task-store's inserts do). Their
    `created_at` run from `oldest` evenly over `spread` (default: one millisecond apart),
    ending before now, so they are older than anything created after. `params` adds
    create parameters (`max_workers`...). Returns the ids and the seconds the inserts
    took."""
    from bson import ObjectId
    from pymongo import AsyncMongoClient

    from bench.loadgen import task_body
    from humantask_shared.core.models import CreateTaskRequest
    from humantask_taskstore.domain import create_task
    from humantask_taskstore.repository import PoolRepository, task_document
    from humantask_taskstore.repository.documents import TASKS

    request = CreateTaskRequest.model_validate({**task_body(callback_url), **(params or {})})
    step = (spread / count) if spread and count else timedelta(milliseconds=1)
    start = oldest or datetime.now(UTC) - step * count - timedelta(seconds=1)
    ids: list[str] = []
    client: AsyncMongoClient = AsyncMongoClient(
        with_database(mongodb_url, database), tz_aware=True, w="majority", journal=True
    )
    began = time.monotonic()
    try:
        tasks = client[database][TASKS]
        for first in range(0, count, batch):
            if time.monotonic() - began > deadline_seconds:
                raise RuntimeError(f"inserting {count} tasks took over {deadline_seconds}s")
            documents = []
            for index in range(first, min(first + batch, count)):
                task_id = str(ObjectId())
                record, _events = create_task(task_id, customer_id, request, start + step * index)
                documents.append(task_document(record))
                ids.append(task_id)
            await tasks.insert_many(documents, ordered=False)
        await PoolRepository(client[database]).touch([customer_id])
    finally:
        await client.close()
    return ids, time.monotonic() - began


async def retire_pending(mongodb_url: str, database: str, customer_id: str) -> int:
    """Take the customer's pending tasks out of the pool (canceled, as the task-store
    stores a canceled task), so that a phase on other tasks claims only those."""
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient = AsyncMongoClient(with_database(mongodb_url, database))
    try:
        result = await client[database]["tasks"].update_many(
            {"customer_id": customer_id, "status": "pending"},
            {
                "$set": {
                    "status": "canceled",
                    "canceled_at": datetime.now(UTC),
                    "pool": None,
                    "leases": [],
                    "free_at": None,
                },
                "$inc": {"version": 1},
            },
        )
        return result.modified_count
    finally:
        await client.close()


async def count_tasks(mongodb_url: str, database: str, criteria: dict[str, Any]) -> int:
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient = AsyncMongoClient(with_database(mongodb_url, database))
    try:
        return await client[database]["tasks"].count_documents(criteria)
    finally:
        await client.close()


async def drop_database(mongodb_url: str, database: str) -> None:
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient = AsyncMongoClient(with_database(mongodb_url, database))
    try:
        await client.drop_database(database)
    finally:
        await client.close()


def run_id() -> str:
    return uuid.uuid4().hex[:8]


def describe_host() -> dict[str, Any]:
    import platform

    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            info["memory_mb"] = int(meminfo.readline().split()[1]) // 1024
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    for key, argv in (
        ("git_commit", ["git", "rev-parse", "--short", "HEAD"]),
        ("git_dirty", ["git", "status", "--porcelain", "--untracked-files=no"]),
    ):
        try:
            out = subprocess.run(
                argv, cwd=ROOT, capture_output=True, text=True, timeout=10
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            continue
        info[key] = out if key == "git_commit" else bool(out)
    return info
