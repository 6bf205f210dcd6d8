"""The trace context survives the outbox: an event a crash left behind is published by the
relay, on its timer and outside any trace, in the trace of the change that raised it.
Real RabbitMQ and MongoDB."""

from __future__ import annotations

import orjson
from aio_pika.abc import AbstractExchange
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from pymongo.asynchronous.database import AsyncDatabase

from humantask_taskstore.outbox import OutboxPublisher
from humantask_taskstore.repository import OutboxStore, TaskRepository
from tests.support.services import wait_for
from tests.support.tracing import recorded_spans

from .test_outbox import (  # noqa: F401 - the fixtures db, events_exchange, received
    STALE_AFTER,
    WAIT,
    Received,
    db,
    events_exchange,
    outbox_state,
    received,
    write_task,
)


async def test_the_relay_publishes_an_event_in_the_trace_of_its_change(
    db: AsyncDatabase,  # noqa: F811 - the fixture imported above
    events_exchange: AbstractExchange,  # noqa: F811
    received: Received,  # noqa: F811
) -> None:
    tasks = TaskRepository(db)
    with recorded_spans() as spans:
        with trace.get_tracer("tests").start_as_current_span("the change") as change:
            record, event = await write_task(tasks, stale=True)  # and then the process died
        trace_id = change.get_span_context().trace_id
        [stored] = (await outbox_state(db, record.task_id))[0]
        assert (
            orjson.loads(stored)["trace_context"]["traceparent"].split("-")[1] == f"{trace_id:032x}"
        )

        assert not trace.get_current_span().get_span_context().is_valid  # as on the timer
        assert await OutboxPublisher(OutboxStore(db), events_exchange).relay_once(STALE_AFTER) == 1

        [message] = await wait_for(
            lambda: received.of_task(record.task_id),
            timeout=WAIT,
            message="the relayed task.created event",
        )
        [publish] = [s for s in spans.all() if s.kind is SpanKind.PRODUCER]
    # The message carries the trace of the change, through the relay's publish span.
    _, traced, parent, _ = message.headers["traceparent"].split("-")
    assert (traced, parent) == (f"{trace_id:032x}", f"{publish.context.span_id:016x}")
    assert publish.context.trace_id == trace_id
    assert (
        publish.parent is not None and publish.parent.span_id == change.get_span_context().span_id
    )
    assert message.body.decode() == stored  # byte for byte what the outbox held
    assert event.stamp.trace_context == orjson.loads(stored)["trace_context"]
