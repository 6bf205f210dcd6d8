"""Callback test helpers: a scripted aiohttp receiver, and publishing completions.

    receiver = await ScriptedReceiver().start()
    receiver.script("/a", Answer(500), Answer(200))   # then 200 for anything after
    url = receiver.url("/a")
    ...
    await receiver.wait_for_requests("/a", 2, timeout=15)
    await receiver.stop()

Each test uses a path of its own, so callbacks of other tests never mix with its own.
`SEED_CALLBACK` is the v1 API's callback example; `example_receiver()` loads the docs'
receiver (examples/callback_receiver.py), whose `decode_form` is the bracket-aware parser
the tests decode deliveries with and whose `verify_callback` checks their signatures.

Until workers can complete tasks over HTTP, `publish_completion` stands in for the
task-store: it publishes a `task.completed` event, persistent, on `humantask.events`,
serialized as the task-store's outbox does (without the fields that do not apply).
"""

from __future__ import annotations

import asyncio
import importlib.util
import time
from dataclasses import dataclass, field
from typing import Any

import aio_pika
from aiohttp import web
from multidict import CIMultiDictProxy

from humantask_shared.core.messages.envelope import StampedEvent
from humantask_shared.core.messages.events import TaskCompleted
from humantask_shared.core.models import CallbackFormat, Task
from humantask_shared.core.timeutil import format_timestamp, utcnow
from humantask_shared.core.topology import EVENTS_EXCHANGE
from humantask_shared.runtime.broker import REQUEST_ID_HEADER
from humantask_shared.runtime.publishing import stamp

from .services import ROOT, free_port, wait_for

# Scale's v1 Callbacks section, verbatim: the test vector for the body's shape.
SEED_CALLBACK: dict[str, Any] = {
    "task": {
        "completed_at": "2016-06-23T21:54:44.904Z",
        "response": {"category": "big", "status_code": "200"},
        "created_at": "2016-06-23T20:08:31.573Z",
        "callback_url": "http://www.example.com/test_callback",
        "type": "categorization",
        "status": "completed",
        "instruction": "Is this object red or blue?",
        "params": {
            "attachment_type": "text",
            "attachment": "tomato",
            "categories": ["big", "small"],
        },
        "task_id": "576c41bf13e36b0600b02b34",
    },
    "response": {"status_code": "200", "category": "big"},
    "task_id": "576c41bf13e36b0600b02b34",
}

# The task of that example, as the task-store's JSON holds it (response.status_code an int).
SEED_TASK: dict[str, Any] = {
    "task_id": "576c41bf13e36b0600b02b34",
    "created_at": "2016-06-23T20:08:31.573Z",
    "completed_at": "2016-06-23T21:54:44.904Z",
    "callback_url": "http://www.example.com/test_callback",
    "type": "categorization",
    "status": "completed",
    "instruction": "Is this object red or blue?",
    "params": {"attachment_type": "text", "attachment": "tomato", "categories": ["big", "small"]},
    "response": {"category": "big", "status_code": 200},
}

EXAMPLE_RECEIVER = ROOT / "examples" / "callback_receiver.py"


def example_receiver() -> Any:
    """examples/callback_receiver.py (the docs' example receiver) as a module: its
    `verify_callback` and `decode_form` are what a customer would run."""
    spec = importlib.util.spec_from_file_location("callback_receiver", EXAMPLE_RECEIVER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Answer:
    """How the receiver answers one request: a status, after `delay` seconds."""

    status: int = 200
    delay: float = 0.0


@dataclass(frozen=True)
class Received:
    path: str
    arrived: float  # time.monotonic() when the request arrived
    headers: CIMultiDictProxy[str]
    body: bytes


@dataclass
class ScriptedReceiver:
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    requests: list[Received] = field(default_factory=list)
    _scripts: dict[str, list[Answer]] = field(default_factory=dict)
    _runner: web.AppRunner | None = None

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def script(self, path: str, *answers: Answer) -> None:
        """Answer the next requests to `path` like this, in order; 200 once they run out."""
        self._scripts[path] = list(answers)

    def received(self, path: str) -> list[Received]:
        return [request for request in self.requests if request.path == path]

    async def wait_for_requests(self, path: str, count: int, timeout: float) -> list[Received]:
        await wait_for(
            lambda: len(self.received(path)) >= count,
            timeout=timeout,
            message=f"{count} callback(s) at {path}",
        )
        return self.received(path)

    async def _handle(self, request: web.Request) -> web.Response:
        arrived = time.monotonic()
        body = await request.read()
        self.requests.append(Received(request.path, arrived, request.headers, body))
        pending = self._scripts.get(request.path) or []
        answer = pending.pop(0) if pending else Answer()
        if answer.delay:
            await asyncio.sleep(answer.delay)
        return web.Response(status=answer.status, text="ok")

    async def start(self) -> ScriptedReceiver:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=1)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def completed(task: dict[str, Any], category: str) -> Task:
    """`task` (as the API returned it) completed with `category`, as the task-store would."""
    return Task.model_validate(
        {
            **task,
            "status": "completed",
            "completed_at": format_timestamp(utcnow()),
            "response": {"category": category, "status_code": 200},
        }
    )


async def publish_completion(
    channel: aio_pika.abc.AbstractChannel,
    customer_id: str,
    task: Task,
    callback_format: CallbackFormat = "form",
    event: StampedEvent | None = None,
) -> StampedEvent:
    """Publish a `task.completed` event (or `event` again: a duplicate); returns it."""
    if event is None:
        completed = TaskCompleted(
            customer_id=customer_id, callback_format=callback_format, task=task
        )
        event = stamp(completed, utcnow())
    exchange = await channel.get_exchange(EVENTS_EXCHANGE.name)
    await exchange.publish(
        aio_pika.Message(
            body=event.body.encode(),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=event.stamp.event_id,
            type=event.routing_key,
            headers={REQUEST_ID_HEADER: event.event.request_id or ""},
        ),
        routing_key=event.routing_key,
    )
    return event
