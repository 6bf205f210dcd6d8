"""The load generator: one phase (one operation at one number of clients) per process.

    echo '{"op": "create", "clients": 64, ...}' | python -m bench.loadgen

It runs in a process of its own so that the orchestrator (callback receiver, memory
and CPU sampling) neither slows it down nor is slowed by it. It shares the machine's
two cores with the stack, as any client on the same box would: its CPU share is
reported next to the services'.

Each of `clients` asyncio tasks issues one operation after the other: for
`warmup_s` nothing is recorded, then for `seconds` every operation that *completes*
is recorded (throughput = completions in the window / window; latency = of those),
then no new operation starts and those in flight finish. Bounded by time and by
`max_requests`. Errors are counted over the whole phase, warm-up included.

Protocol on stdout: `START` when the window opens, `STOP` when it closes, then one
line `RESULT <json>`.
"""

from __future__ import annotations

import asyncio
import base64
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from bench.stats import phase_summary

REQUEST_TIMEOUT_SECONDS = 30.0
MAX_RETURNED_IDS = 200_000


# The operations that claim and submit: on single-worker tasks, and on tasks of
# max_workers 3 (each task takes three claim+submits of three workers).
CLAIMING = ("claim_submit", "claim_submit_3")


def basic_auth(credential: str) -> str:
    return "Basic " + base64.b64encode(f"{credential}:".encode()).decode()


def task_document_template(callback_url: str) -> dict[str, Any]:
    """A task exactly as the task-store stores one (a fresh `_id` and time per use)."""
    from bson import ObjectId

    from humantask_shared.core.models import CreateTaskRequest
    from humantask_taskstore.domain import create_task
    from humantask_taskstore.repository import task_document

    request = CreateTaskRequest.model_validate(task_body(callback_url))
    record, _events = create_task(str(ObjectId()), str(ObjectId()), request, datetime.now(UTC))
    return task_document(record)


def task_body(callback_url: str) -> dict[str, Any]:
    return {
        "callback_url": callback_url,
        "instruction": "Would you say this item is big or small?",
        "attachment_type": "text",
        "attachment": "car",
        "categories": ["big", "small"],
    }


Call = Callable[[int], Awaitable[str]]


class Phase:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.op: str = spec["op"]
        self.clients: int = int(spec["clients"])
        self.warmup_s: float = float(spec.get("warmup_s", 0.5))
        self.seconds: float = float(spec["seconds"])
        self.max_requests: int = int(spec.get("max_requests", 1_000_000))
        # A slow operation (seconds per request) gets a longer window, up to max_seconds,
        # until at least min_ok operations completed in it.
        self.min_ok: int = int(spec.get("min_ok", 0))
        self.max_seconds: float = max(self.seconds, float(spec.get("max_seconds", self.seconds)))
        self.latencies: list[float] = []
        self.errors: Counter[str] = Counter()
        self.issued = 0
        self.window_start = 0.0
        self.window_end = 0.0
        self.measuring = True  # until STOP: clients go on, completions count
        self.extra: dict[str, Any] = {}
        # claim+submit: the two halves, and (task id, submit sent, submit answered) per task.
        self.claim_latencies: list[float] = []
        self.submit_latencies: list[float] = []
        self.submits: list[tuple[str, float, float]] = []
        self.created_ids: list[str] = []
        # A client told `503` with `Retry-After` waits that long before its next request
        # (bench/overload.py); without it, it asks again at once.
        self.honour_retry_after: bool = bool(spec.get("honour_retry_after", False))

    def in_window(self, finished: float) -> bool:
        """Completed after the window opened and before it closed (STOP)."""
        return self.measuring and self.window_start <= finished

    async def run(self) -> dict[str, Any]:
        async with self._calls() as call:
            started = time.perf_counter()
            self.window_start = started + self.warmup_s
            self.window_end = self.window_start + self.seconds
            marker = asyncio.create_task(self._markers())
            workers = [
                asyncio.create_task(self._client(index, call)) for index in range(self.clients)
            ]
            # Bounded: the window, plus one request timeout for those in flight at its end.
            _done, pending = await asyncio.wait(
                workers, timeout=self.warmup_s + self.max_seconds + REQUEST_TIMEOUT_SECONDS + 10
            )
            for task in pending:
                task.cancel()
                self.errors["unfinished at the end"] += 1
            await marker
        result = phase_summary(self.latencies, self.window_end - self.window_start, self.errors)
        result["issued"] = self.issued
        if self.op in CLAIMING:
            window = self.window_end - self.window_start
            result["claim"] = phase_summary(self.claim_latencies, window, {})
            result["submit"] = phase_summary(self.submit_latencies, window, {})
            result["submits"] = self.submits
        if self.op == "create":
            result["created_ids"] = self.created_ids[:MAX_RETURNED_IDS]
        result.update(self.extra)
        return result

    async def _markers(self) -> None:
        await asyncio.sleep(max(0.0, self.window_start - time.perf_counter()))
        print("START", flush=True)
        while True:
            await asyncio.sleep(max(0.0, self.window_end - time.perf_counter()))
            window = self.window_end - self.window_start
            if (
                len(self.latencies) >= self.min_ok
                or window + self.seconds > self.max_seconds + 1e-9
            ):
                break
            self.window_end += self.seconds  # too few completions yet: measure longer
        self.measuring = False
        self.window_end = time.perf_counter()
        print("STOP", flush=True)

    async def _client(self, index: int, call: Call) -> None:
        while self.measuring and self.issued < self.max_requests:
            self.issued += 1
            began = time.perf_counter()
            try:
                outcome = await call(index)
            except TimeoutError:
                outcome = "timeout"
            except Exception as exc:  # noqa: BLE001 - a failed request is a data point
                outcome = type(exc).__name__
            finished = time.perf_counter()
            if outcome == "ok":
                if self.in_window(finished):
                    self.latencies.append(finished - began)
            else:
                self.errors[outcome] += 1
                if outcome in ("claim 204",):
                    await asyncio.sleep(0.01)  # an empty pool: do not spin

    # -- the operations -------------------------------------------------------------

    def _calls(self):  # an async context manager yielding a Call
        factory = {
            "bare_http": self._http_calls,
            "create": self._http_calls,
            "get": self._http_calls,
            "list": self._http_calls,
            "claim_submit": self._http_calls,
            "claim_submit_3": self._http_calls,
            "rabbitmq_rpc": self._rpc_calls,
            "mongo_insert": self._insert_calls,
        }[self.op]
        return factory()

    def _http_calls(self):
        import contextlib

        import aiohttp

        spec = self.spec
        base = spec.get("url", "").rstrip("/")
        body = orjson.dumps(task_body(spec.get("callback_url", "http://127.0.0.1:9/")))
        json_headers = {"Content-Type": "application/json"}
        customer = {"Authorization": basic_auth(spec.get("api_key", "")), **json_headers}
        workers = [basic_auth(token) for token in spec.get("worker_tokens", [])]
        ids: list[str] = spec.get("task_ids", [])
        rng = random.Random(1)
        phase = self

        @contextlib.asynccontextmanager
        async def calls():
            connector = aiohttp.TCPConnector(limit=self.clients, limit_per_host=0)
            timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
            async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

                async def bare(_index: int) -> str:
                    async with session.post(
                        f"{base}/echo", data=body, headers=json_headers
                    ) as response:
                        await response.read()
                        return "ok" if response.status == 200 else str(response.status)

                async def refused(response: aiohttp.ClientResponse) -> str:
                    if response.status == 503 and phase.honour_retry_after:
                        await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                    return str(response.status)

                async def create(_index: int) -> str:
                    async with session.post(
                        f"{base}/v1/task/categorize", data=body, headers=customer
                    ) as response:
                        raw = await response.read()
                        if response.status != 200:
                            return await refused(response)
                    phase.created_ids.append(orjson.loads(raw)["task_id"])
                    return "ok"

                async def get(_index: int) -> str:
                    task_id = ids[rng.randrange(len(ids))]
                    async with session.get(
                        f"{base}/v1/task/{task_id}", headers=customer
                    ) as response:
                        await response.read()
                        return "ok" if response.status == 200 else await refused(response)

                async def list_page(_index: int) -> str:
                    async with session.get(
                        f"{base}/v1/tasks?limit=100", headers=customer
                    ) as response:
                        await response.read()
                        return "ok" if response.status == 200 else str(response.status)

                async def claim_submit(index: int) -> str:
                    worker = {"Authorization": workers[index % len(workers)], **json_headers}
                    began = time.perf_counter()
                    async with session.post(f"{base}/v1/work/claim", headers=worker) as response:
                        raw = await response.read()
                        if response.status == 204:
                            return "claim 204"
                        if response.status != 200:
                            return f"claim {response.status}"
                    task_id = orjson.loads(raw)["task_id"]
                    claimed = time.perf_counter()
                    sent_wall = time.time()
                    async with session.post(
                        f"{base}/v1/work/{task_id}/submit",
                        data=b'{"category": "big"}',
                        headers=worker,
                    ) as response:
                        await response.read()
                        if response.status != 200:
                            return f"submit {response.status}"
                    answered = time.perf_counter()
                    phase.submits.append((task_id, sent_wall, time.time()))
                    if phase.in_window(answered):
                        phase.claim_latencies.append(claimed - began)
                        phase.submit_latencies.append(answered - claimed)
                    return "ok"

                yield {
                    "bare_http": bare,
                    "create": create,
                    "get": get,
                    "list": list_page,
                    "claim_submit": claim_submit,
                    "claim_submit_3": claim_submit,
                }[self.op]

        if self.op == "get" and not ids:
            raise SystemExit("get needs task_ids")
        if self.op in CLAIMING and not workers:
            raise SystemExit(f"{self.op} needs worker_tokens")
        return calls()

    def _rpc_calls(self):
        """The gateway's request/reply, without the gateway and the task-store: one
        connection and one channel with publisher confirms, persistent mandatory
        messages through a durable direct exchange to a durable queue, the reply on an
        exclusive queue of this client's own, matched by correlation id."""
        import contextlib

        import aio_pika

        spec = self.spec
        body = orjson.dumps(
            {
                "name": "task.create",
                "customer_id": "0" * 24,
                "request": task_body("http://127.0.0.1:9/callback"),
            }
        )

        @contextlib.asynccontextmanager
        async def calls():
            connection = await aio_pika.connect_robust(
                spec["amqp_url"], client_properties={"connection_name": "bench-rpc-client"}
            )
            async with connection:
                channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
                exchange = await channel.declare_exchange(
                    spec["rpc_exchange"], aio_pika.ExchangeType.DIRECT, durable=True
                )
                reply_queue = await channel.declare_queue(
                    f"bench.replies.{uuid.uuid4().hex}", exclusive=True, auto_delete=True
                )
                pending: dict[str, asyncio.Future[bytes]] = {}

                async def on_reply(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                    future = pending.pop(message.correlation_id or "", None)
                    if future is not None and not future.done():
                        future.set_result(message.body)

                await reply_queue.consume(on_reply, no_ack=True)
                loop = asyncio.get_running_loop()

                async def call(_index: int) -> str:
                    correlation_id = uuid.uuid4().hex
                    future: asyncio.Future[bytes] = loop.create_future()
                    pending[correlation_id] = future
                    message = aio_pika.Message(
                        body=body,
                        content_type="application/json",
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        correlation_id=correlation_id,
                        reply_to=reply_queue.name,
                        message_id=uuid.uuid4().hex,
                        type="task.create",
                        expiration=REQUEST_TIMEOUT_SECONDS,
                        headers={
                            "x-request-id": correlation_id,
                            "x-deadline": int((time.time() + REQUEST_TIMEOUT_SECONDS) * 1000),
                        },
                    )
                    try:
                        async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):
                            await exchange.publish(
                                message, routing_key=spec["rpc_routing_key"], mandatory=True
                            )
                            await future
                    finally:
                        pending.pop(correlation_id, None)
                    return "ok"

                yield call

        return calls()

    def _insert_calls(self):
        """A task-sized document, one `insert_one` each, with the task-store's write
        concern (majority, journaled), on a collection with no index but `_id`."""
        import contextlib

        from bson import ObjectId
        from pymongo import AsyncMongoClient

        spec = self.spec
        template = task_document_template("http://127.0.0.1:9/callback")

        @contextlib.asynccontextmanager
        async def calls():
            client: AsyncMongoClient = AsyncMongoClient(
                spec["mongodb_url"],
                appname="bench-insert",
                tz_aware=True,
                w="majority",
                journal=True,
                serverSelectionTimeoutMS=5000,
            )
            try:
                collection = client[spec["database"]][spec["collection"]]
                await client.admin.command("ping")

                async def call(_index: int) -> str:
                    document = dict(template)
                    document["_id"] = ObjectId()
                    document["created_at"] = datetime.now(UTC)
                    await collection.insert_one(document)
                    return "ok"

                yield call
            finally:
                await client.close()

        return calls()


async def _main() -> None:
    spec = orjson.loads(sys.stdin.buffer.read())
    result = await Phase(spec).run()
    sys.stdout.write("RESULT " + orjson.dumps(result).decode() + "\n")
    sys.stdout.flush()


def main() -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(_main())
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_main())


if __name__ == "__main__":
    main()
