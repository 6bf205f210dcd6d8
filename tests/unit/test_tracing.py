"""Tracing configuration and the pieces the instrumentations do not cover (tracing.py):
the `OTEL_*` variables, the sampler, the trace context an event keeps, log fields."""

from __future__ import annotations

import logging

import pytest
from opentelemetry import context, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import ConsoleSpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Decision
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from humantask_shared.core.messages.envelope import EventStamp
from humantask_shared.core.messages.events import CredentialChanged
from humantask_shared.core.timeutil import utcnow
from humantask_shared.runtime import tracing
from humantask_shared.runtime.logging import _RequestIdFilter
from humantask_shared.runtime.publishing import stamp
from tests.support.tracing import recorded_spans

TRACE_ID, SPAN_ID = 0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331
TRACEPARENT = f"00-{TRACE_ID:032x}-{SPAN_ID:016x}-01"


PARENT = SpanContext(TRACE_ID, SPAN_ID, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))


def remote_parent() -> context.Context:
    """A context whose current span is a caller's (as a `traceparent` header says)."""
    return trace.set_span_in_context(NonRecordingSpan(PARENT))


# -- OTEL_* ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, "", "none", " None "])
def test_no_exporter_unless_one_is_named(value: str | None) -> None:
    environ = {} if value is None else {"OTEL_TRACES_EXPORTER": value}
    assert tracing.span_exporters(environ) == []


def test_otlp_is_http_protobuf_and_reads_its_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://jaeger:4318")
    [exporter] = tracing.span_exporters({"OTEL_TRACES_EXPORTER": "otlp"})
    assert isinstance(exporter, OTLPSpanExporter)
    assert exporter._endpoint == "http://jaeger:4318/v1/traces"
    exporter.shutdown()


def test_console_and_otlp_together() -> None:
    exporters = tracing.span_exporters({"OTEL_TRACES_EXPORTER": "console,otlp"})
    assert [type(e) for e in exporters] == [ConsoleSpanExporter, OTLPSpanExporter]
    for exporter in exporters:
        exporter.shutdown()


@pytest.mark.parametrize(
    ("environ", "match"),
    [
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "http/protobuf"),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"},
            "http/protobuf",
        ),
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "not installed"),
    ],
)
def test_what_cannot_be_exported_stops_the_start(environ: dict[str, str], match: str) -> None:
    with pytest.raises(tracing.TracingConfigError, match=match):
        tracing.span_exporters(environ)


def test_the_service_is_named_and_otel_variables_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging")
    provider = tracing.tracer_provider("notifier", {})
    assert provider is not None
    assert provider.resource.attributes["service.name"] == "humantask-notifier"
    assert provider.resource.attributes["deployment.environment"] == "staging"
    renamed = tracing.tracer_provider("notifier", {"OTEL_SERVICE_NAME": "callbacks-eu"})
    assert renamed is not None and renamed.resource.attributes["service.name"] == "callbacks-eu"
    assert tracing.tracer_provider("notifier", {"OTEL_SDK_DISABLED": "true"}) is None


def test_an_exporter_gets_a_batch_processor() -> None:
    provider = tracing.tracer_provider("gateway", {"OTEL_TRACES_EXPORTER": "console"})
    assert provider is not None
    processors = provider._active_span_processor._span_processors
    assert [type(p).__name__ for p in processors] == ["BatchSpanProcessor"]
    provider.shutdown()


# -- the sampler ----------------------------------------------------------------------


def test_background_client_calls_start_no_trace() -> None:
    sampler = tracing.NoBackgroundCalls(ALWAYS_ON)
    # A database query of a timer: a client span with no parent.
    assert sampler.should_sample(None, 1, "db.find", SpanKind.CLIENT).decision is Decision.DROP
    # The same query inside a request's or a message's trace, and any span that starts one.
    inside = sampler.should_sample(remote_parent(), TRACE_ID, "db.find", SpanKind.CLIENT)
    assert inside.decision is Decision.RECORD_AND_SAMPLE
    for kind in (SpanKind.SERVER, SpanKind.CONSUMER, SpanKind.PRODUCER, SpanKind.INTERNAL):
        assert sampler.should_sample(None, 1, "x", kind).decision is Decision.RECORD_AND_SAMPLE


# -- what is kept and restored ----------------------------------------------------------


def test_the_trace_context_is_the_current_spans_and_none_outside_a_trace() -> None:
    assert tracing.current_trace_context() is None
    token = context.attach(remote_parent())
    try:
        assert tracing.current_trace_context() == {"traceparent": TRACEPARENT}
    finally:
        context.detach(token)


def test_an_event_keeps_the_trace_it_was_stamped_in() -> None:
    event = CredentialChanged(role="worker", principal_id="w1", change="revoked")
    outside = stamp(event, utcnow())
    assert outside.stamp.trace_context is None
    assert "trace_context" not in outside.body
    token = context.attach(remote_parent())
    try:
        inside = stamp(event, utcnow())
    finally:
        context.detach(token)
    assert inside.stamp.trace_context == {"traceparent": TRACEPARENT}
    again = EventStamp.model_validate_json(inside.body)
    assert again.trace_context == inside.stamp.trace_context


def test_restored_only_where_nothing_is_traced() -> None:
    other = SpanContext(0x1, 0x2, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    with tracing.restored_trace_context({"traceparent": TRACEPARENT}):
        assert trace.get_current_span().get_span_context().trace_id == TRACE_ID
    assert not trace.get_current_span().get_span_context().is_valid
    with (
        trace.use_span(NonRecordingSpan(other)),
        tracing.restored_trace_context({"traceparent": TRACEPARENT}),
    ):
        assert trace.get_current_span().get_span_context().trace_id == 0x1
    with tracing.restored_trace_context(None):
        assert not trace.get_current_span().get_span_context().is_valid


def test_a_command_is_a_client_span_that_records_its_failure() -> None:
    with recorded_spans() as spans:
        with (
            trace.use_span(NonRecordingSpan(PARENT)),
            pytest.raises(RuntimeError),
            tracing.command_span("task.get"),
        ):
            raise RuntimeError("no answer")
        [span] = spans.all()
    assert span.name == "command task.get" and span.kind is SpanKind.CLIENT
    assert span.context.trace_id == TRACE_ID
    assert not span.status.is_ok


# -- logs -----------------------------------------------------------------------------


def test_log_lines_name_their_trace_and_span() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    _RequestIdFilter("tests").filter(record)
    assert not hasattr(record, "trace_id")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    with trace.use_span(NonRecordingSpan(PARENT)):
        _RequestIdFilter("tests").filter(record)
    assert (record.trace_id, record.span_id) == (f"{TRACE_ID:032x}", f"{SPAN_ID:016x}")


def test_configure_tracing_is_off_when_the_sdk_is_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert tracing.configure_tracing("gateway") is None


@pytest.mark.parametrize(
    ("exporter", "database_spans"), [(None, False), ("none", False), ("console", True)]
)
def test_database_commands_get_spans_only_where_spans_are_exported(
    exporter: str | None, database_spans: bool
) -> None:
    """Propagation needs the HTTP and broker instrumentations; a span per database
    command is work for nothing when no exporter takes it."""
    from opentelemetry.instrumentation.aio_pika import AioPikaInstrumentor
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor

    environ = {} if exporter is None else {"OTEL_TRACES_EXPORTER": exporter}
    provider = tracing.tracer_provider("taskstore", environ)
    assert provider is not None
    was = (
        PymongoInstrumentor().is_instrumented_by_opentelemetry,
        AioPikaInstrumentor().is_instrumented_by_opentelemetry,
    )
    tracing.uninstrument()
    try:
        tracing.instrument(provider, database_spans=tracing.exports_spans(environ))
        assert PymongoInstrumentor().is_instrumented_by_opentelemetry is database_spans
        assert AioPikaInstrumentor().is_instrumented_by_opentelemetry
    finally:
        tracing.uninstrument()
        if any(was):
            tracing.instrument(provider, database_spans=was[0])
