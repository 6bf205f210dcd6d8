"""Traces (docs/reference/contract.md §9): a worker's submit, the task-store's write, the event
through the outbox, the notifier and the callback POST are one trace, whose id the customer's
receiver gets in `traceparent`.

Two ways:

- In this process: the three services' apps (their `create_app`) run here, on a RabbitMQ
  vhost and a database of their own, with the OpenTelemetry SDK recording every span
  into an `InMemorySpanExporter`. They still reach each other only through RabbitMQ, so
  the trace crosses the broker in message headers: the consumer spans have *remote*
  parents. (One process has one tracer provider, so the spans cannot be told apart by
  `service.name`; they are by what they are: the gateway's server span, the task-store's
  and the notifier's consumer spans, the callback's client span.)
- As processes, the way they run in production, with no exporter configured: the
  `traceparent` sent with the submit reaches the callback receiver with the same trace id.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
import pymongo
import pytest
from aiohttp import web
from conftest import with_database  # tests/conftest.py
from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from humantask_gateway.bootstrap import production_app as create_gateway
from humantask_gateway.settings import GatewaySettings
from humantask_notifier import repository as notifier_repository
from humantask_notifier.bootstrap import create_app as create_notifier
from humantask_notifier.settings import NotifierSettings
from humantask_taskstore.bootstrap import create_app as create_taskstore
from humantask_taskstore.settings import TaskStoreSettings
from tests.support.callbacks import ScriptedReceiver
from tests.support.services import free_port, wait_for
from tests.support.tracing import Spans, recorded_spans

from .conftest import SEED_TASK_JSON, Api, Stack, start_service
from .isolated import api_for, isolated_stack, own_amqp_url

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
WAIT = 30


def new_traceparent() -> tuple[str, int, int]:
    """A sampled W3C `traceparent` of a caller's own trace: (header, trace id, span id)."""
    trace_id, span_id = secrets.randbits(128) or 1, secrets.randbits(64) or 1
    return f"00-{trace_id:032x}-{span_id:016x}-01", trace_id, span_id


def trace_id_of(traceparent: str | None) -> int | None:
    parts = (traceparent or "").split("-")
    return int(parts[1], 16) if len(parts) == 4 and len(parts[1]) == 32 else None


async def admin(env: dict[str, str], *args: str) -> dict[str, Any]:
    """`humantask-admin` without blocking the event loop the services run on."""
    process = await asyncio.create_subprocess_exec(
        str(BIN / "humantask-admin"),
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    return orjson.loads(out)


async def complete_a_task(
    api: Api, env: dict[str, str], callback_url: str, traceparent: str
) -> str:
    """Create a task, claim it and submit it (the submit with `traceparent`); its id."""
    customer = await admin(env, "customers", "create", "--name", "tracing")
    worker = (await admin(env, "workers", "create", "--name", "tracing"))["token"]
    created = await api.post(
        "/v1/task/categorize",
        customer["api_key"],
        json={**SEED_TASK_JSON, "callback_url": callback_url},
    )
    assert created.status == 200, created
    task_id = created.body["task_id"]
    claimed = await api.post("/v1/work/claim", worker)
    assert claimed.status == 200 and claimed.body["task_id"] == task_id, claimed
    submitted = await api.post(
        f"/v1/work/{task_id}/submit",
        worker,
        json={"category": "small"},
        headers={"traceparent": traceparent},
    )
    assert submitted.status == 200, submitted
    return task_id


# -- in this process, every span recorded -----------------------------------------------


@contextlib.asynccontextmanager
async def running(app: web.Application, port: int) -> AsyncIterator[None]:
    runner = web.AppRunner(app, shutdown_timeout=5)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        yield
    finally:
        await runner.cleanup()


@pytest.fixture(scope="module")
def spans() -> Iterator[Spans]:
    with recorded_spans() as recorded:
        yield recorded


@pytest.fixture(scope="module")
def own_urls(mongodb_url: str, test_session_id: str, _containers: Any) -> Iterator[dict[str, str]]:
    """A vhost and a database no other test uses (the worker pool is global)."""
    database = f"{urlsplit(mongodb_url).path.strip('/')}_tracing"
    url = with_database(mongodb_url, database)
    with own_amqp_url("tracing", test_session_id, _containers) as amqp_url:
        try:
            yield {"AMQP_URL": amqp_url, "MONGODB_URL": url}
        finally:
            with pymongo.MongoClient(url) as client:
                client.drop_database(database)


@pytest.fixture(scope="module")
async def in_process(
    spans: Spans, own_urls: dict[str, str]
) -> AsyncIterator[tuple[Api, dict[str, str]]]:
    urls = {"amqp_url": own_urls["AMQP_URL"], "mongodb_url": own_urls["MONGODB_URL"]}
    gateway_port, taskstore_port, notifier_port = free_port(), free_port(), free_port()
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(
            running(
                create_taskstore(
                    TaskStoreSettings(
                        **urls, health_port=taskstore_port, outbox_relay_interval_seconds=1
                    )
                ),
                taskstore_port,
            )
        )
        await stack.enter_async_context(
            running(
                create_notifier(
                    NotifierSettings(
                        **urls,
                        health_port=notifier_port,
                        callback_allow_private_networks=True,
                        callback_timeout_seconds=5,
                        callback_retry_delay_seconds=1,
                    )
                ),
                notifier_port,
            )
        )
        await stack.enter_async_context(
            running(
                create_gateway(
                    GatewaySettings(
                        **urls,
                        gateway_port=gateway_port,
                        health_port=free_port(),
                        auth_cache_seconds=1,
                        humantask_demo_api_key=None,
                    )
                ),
                gateway_port,
            )
        )
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            # The test is the worker's own client: its traceparent is the one it sends.
            AioHttpClientInstrumentor.uninstrument_session(session)
            env = {**os.environ, **own_urls}
            yield Api(session, f"http://127.0.0.1:{gateway_port}"), env


def _attribute(span: ReadableSpan, *names: str) -> Any:
    attributes = span.attributes or {}
    return next((attributes[name] for name in names if name in attributes), None)


def _is_consumer_of(span: ReadableSpan, exchange: str) -> bool:
    return span.kind is SpanKind.CONSUMER and _attribute(span, "messaging.destination") == exchange


def _connected(trace: list[ReadableSpan], root_span_id: int) -> bool:
    """Every span's parent is in the trace, or is the caller's span: one tree."""
    ids = {span.context.span_id for span in trace} | {root_span_id}
    return all(span.parent is not None and span.parent.span_id in ids for span in trace)


async def test_a_submit_is_one_trace_from_the_gateway_to_the_callback(
    in_process: tuple[Api, dict[str, str]],
    spans: Spans,
) -> None:
    api, env = in_process
    receiver = await ScriptedReceiver().start()
    try:
        traceparent, trace_id, caller_span_id = new_traceparent()
        task_id = await complete_a_task(api, env, receiver.url("/traced"), traceparent)
        [callback] = await receiver.wait_for_requests("/traced", 1, timeout=WAIT)
    finally:
        await receiver.stop()
    # The customer's receiver is told the trace of the worker's submit.
    assert trace_id_of(callback.headers.get("traceparent")) == trace_id, callback.headers

    def whole_trace() -> list[ReadableSpan]:
        found = spans.of_trace(trace_id)
        client_posts = [
            s
            for s in found
            if s.kind is SpanKind.CLIENT and s.instrumentation_scope.name.endswith("aiohttp_client")
        ]
        notified = [s for s in found if _is_consumer_of(s, "humantask.events")]
        return found if client_posts and notified and _connected(found, caller_span_id) else []

    trace = await wait_for(whole_trace, timeout=WAIT, message="the whole trace of the submit")

    # The gateway: the submit request, a child of the caller's span.
    [server] = [
        s for s in trace if s.kind is SpanKind.SERVER and s.name == "POST /v1/work/{task_id}/submit"
    ]
    assert server.parent is not None and server.parent.span_id == caller_span_id
    assert server.parent.is_remote
    # Its command to the task-store, round trip and publication.
    assert any(s.name == "command work.submit" and s.kind is SpanKind.CLIENT for s in trace)
    # The task-store: the command, taken from RabbitMQ in the trace the message carried.
    taskstore = [s for s in trace if _is_consumer_of(s, "humantask.commands")]
    assert taskstore and all(s.parent is not None and s.parent.is_remote for s in taskstore)
    # ... its writes to MongoDB (the PyMongo instrumentation, async client) ...
    collections = {
        _attribute(s, "db.collection.name", "db.mongodb.collection")
        for s in trace
        if _attribute(s, "db.system", "db.system.name") == "mongodb"
    }
    assert "tasks" in collections, collections
    # ... and the task.completed event, published from the outbox.
    assert any(
        s.kind is SpanKind.PRODUCER and s.name == "humantask.events,task.completed send"
        for s in trace
    )
    # The notifier: the event, again across RabbitMQ; its records; the callback POST.
    notifier = [s for s in trace if _is_consumer_of(s, "humantask.events")]
    assert all(s.parent is not None and s.parent.is_remote for s in notifier)
    assert {notifier_repository.DELIVERIES, notifier_repository.ATTEMPTS} <= collections, (
        collections
    )
    [post] = [
        s
        for s in trace
        if s.kind is SpanKind.CLIENT and s.instrumentation_scope.name.endswith("aiohttp_client")
    ]
    assert str(receiver.port) in str(_attribute(post, "url.full", "http.url"))
    # The receiver's traceparent names the POST's own span, in the submit's trace.
    _, traced, parent, _ = callback.headers["traceparent"].split("-")
    assert (traced, parent) == (f"{trace_id:032x}", f"{post.context.span_id:016x}")
    assert task_id


async def test_logs_carry_the_trace_of_the_submit(
    in_process: tuple[Api, dict[str, str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The JSON log lines say which trace (and span) they belong to (logging.py)."""
    import logging

    from humantask_shared.runtime.logging import _RequestIdFilter

    api, env = in_process
    receiver = await ScriptedReceiver().start()
    handler_filter = _RequestIdFilter("tests")
    caplog.handler.addFilter(handler_filter)
    try:
        with caplog.at_level(logging.INFO):
            traceparent, trace_id, _ = new_traceparent()
            await complete_a_task(api, env, receiver.url("/logged"), traceparent)
            await receiver.wait_for_requests("/logged", 1, timeout=WAIT)
            await wait_for(
                lambda: [
                    r
                    for r in caplog.records
                    if r.getMessage() == "callback attempted"
                    and getattr(r, "trace_id", None) == f"{trace_id:032x}"
                ],
                timeout=WAIT,
                message="the notifier's log line in the submit's trace",
            )
    finally:
        caplog.handler.removeFilter(handler_filter)
        await receiver.stop()
    traced = {r.name for r in caplog.records if getattr(r, "trace_id", None) == f"{trace_id:032x}"}
    # The gateway's request line, the task-store's and the notifier's lines: one trace.
    assert {"humantask_gateway.middleware", "humantask_notifier.handlers"} <= traced, traced
    assert all(
        len(getattr(r, "span_id", "")) == 16
        for r in caplog.records
        if getattr(r, "trace_id", None) == f"{trace_id:032x}"
    )


# -- as processes, nothing exported -----------------------------------------------------


@pytest.fixture(scope="module")
def process_stack(mongodb_url: str, test_session_id: str, _containers: Any) -> Iterator[Stack]:
    settings = {"CALLBACK_ALLOW_PRIVATE_NETWORKS": "true", "OTEL_TRACES_EXPORTER": "none"}
    with isolated_stack(
        "tracing_processes",
        mongodb_url=mongodb_url,
        session_id=test_session_id,
        containers=_containers,
        **settings,
    ) as stack:
        notifier, url = start_service("humantask-notifier", stack.env, "HEALTH_PORT")
        stack.processes["notifier"], stack.health_urls["notifier"] = notifier, url
        yield stack


async def test_the_callback_carries_the_trace_of_the_submit(process_stack: Stack) -> None:
    receiver = await ScriptedReceiver().start()
    try:
        async with api_for(process_stack) as api:
            AioHttpClientInstrumentor.uninstrument_session(api.session)  # (the module records)
            traceparent, trace_id, _ = new_traceparent()
            await complete_a_task(api, process_stack.env, receiver.url("/hook"), traceparent)
            [callback] = await receiver.wait_for_requests("/hook", 1, timeout=WAIT)
    finally:
        await receiver.stop()
    assert trace_id_of(callback.headers.get("traceparent")) == trace_id, callback.headers
    # Each process logged its part of it (the notifier once the attempt is recorded).
    logged = f'"trace_id": "{trace_id:032x}"'
    for name in ("gateway", "taskstore-1", "notifier"):
        process = process_stack.processes[name]
        await wait_for(
            lambda: logged in process.log_text(),  # noqa: B023 - awaited within the iteration
            timeout=WAIT,
            message=f"a log line of the trace in the {name}'s log",
        )
