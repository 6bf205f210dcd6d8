"""Traces (docs/reference/contract.md §9): OpenTelemetry, configured by the standard
`OTEL_*` variables.

`configure_tracing(service)` runs first in each service's `main()`, before its app is
created (the aiohttp server instrumentation applies to applications created after it):

- a `TracerProvider` named `humantask-<service>` (`OTEL_SERVICE_NAME` and
  `OTEL_RESOURCE_ATTRIBUTES` override; `OTEL_TRACES_SAMPLER` and `OTEL_BSP_*` are read by
  the SDK itself). Spans are made, and their context propagated and logged, even when
  nothing exports them;
- exporters from `OTEL_TRACES_EXPORTER` (comma-separated): unset, empty or `none` exports
  nothing; `otlp` is OTLP over HTTP/protobuf (`OTEL_EXPORTER_OTLP_ENDPOINT`,
  `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `..._HEADERS`, `..._TIMEOUT`); `console` prints
  spans to stdout; any other name is looked up among the installed exporters' entry points;
- W3C `traceparent`/`tracestate` only (no `baggage`, unless `OTEL_PROPAGATORS` says so);
- the maintained instrumentations: aiohttp server (the gateway's requests; health and
  metrics endpoints are left out) and client (the callback POST, which carries
  `traceparent` to the customer), aio-pika (context in every message's headers) and
  PyMongo (command listeners, which the async client calls in the caller's task).
  `OTEL_SDK_DISABLED=true` turns all of it off.

What the instrumentations do not cover is done here and at the call sites: a command's
whole round trip (`command_span`, in the command client), and the outbox: each event
keeps the `traceparent` of the change that raised it (`Event.trace_context`, from
`current_trace_context`), and the relay publishes it in that trace
(`restored_trace_context`). A client span that would start a trace (a database query of
a timer) is not recorded (`NoBackgroundCalls`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib.metadata import entry_points
from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACER_NAME = "humantask"
# Probes and scrapes every few seconds would drown the traces that matter.
DEFAULT_EXCLUDED_URLS = "/healthz$,/readyz$,/metrics$"
OTLP_PROTOCOL = "http/protobuf"

_W3C = TraceContextTextMapPropagator()


class TracingConfigError(ValueError):
    """`OTEL_*` asks for something this build cannot do; the service does not start."""


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def _names(value: str | None) -> list[str]:
    return [name.strip().lower() for name in (value or "").split(",") if name.strip()]


class NoBackgroundCalls(Sampler):
    """`configured`, except that a client span that would start a trace is not recorded:
    the database queries and commands of timers and of start-up (the outbox relay every
    few seconds, the gauges, index creation) would otherwise each be a trace of its own.
    Client spans inside a trace (a request's, a message's) are decided as usual."""

    def __init__(self, configured: Sampler) -> None:
        self._configured = configured

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Any = None,
        links: Any = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        parent = trace.get_current_span(parent_context).get_span_context()
        if kind is SpanKind.CLIENT and not parent.is_valid:
            return SamplingResult(Decision.DROP)
        return self._configured.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"NoBackgroundCalls{{{self._configured.get_description()}}}"


def span_exporters(environ: Mapping[str, str]) -> list[SpanExporter]:
    """The exporters `OTEL_TRACES_EXPORTER` names; none when it is unset, empty or `none`."""
    exporters: list[SpanExporter] = []
    for name in _names(environ.get("OTEL_TRACES_EXPORTER")):
        if name == "none":
            continue
        if name == "otlp":
            protocol = (
                environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
                or OTLP_PROTOCOL
            )
            if protocol != OTLP_PROTOCOL:
                raise TracingConfigError(
                    f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol}: only {OTLP_PROTOCOL} is installed "
                    "(the collector's port 4318)"
                )
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporters.append(OTLPSpanExporter())  # reads OTEL_EXPORTER_OTLP_* itself
            continue
        found = entry_points(group="opentelemetry_traces_exporter", name=name)
        if not found:
            raise TracingConfigError(
                f"OTEL_TRACES_EXPORTER names {name!r}, which is not installed "
                "(use otlp, console or none)"
            )
        exporters.append(next(iter(found)).load()())
    return exporters


def exports_spans(environ: Mapping[str, str]) -> bool:
    """Whether `OTEL_TRACES_EXPORTER` names an exporter (not unset, empty or `none`)."""
    return any(name != "none" for name in _names(environ.get("OTEL_TRACES_EXPORTER")))


def tracer_provider(
    service: str, environ: Mapping[str, str] | None = None
) -> TracerProvider | None:
    """A provider for `humantask-<service>` with the exporters the environment names;
    None when `OTEL_SDK_DISABLED=true`."""
    environ = os.environ if environ is None else environ
    if _truthy(environ.get("OTEL_SDK_DISABLED")):
        return None
    name = (environ.get("OTEL_SERVICE_NAME") or "").strip() or f"humantask-{service}"
    # What OTEL_TRACES_SAMPLER says (the SDK reads it), without spans that start no trace.
    configured = TracerProvider(shutdown_on_exit=False).sampler
    # Resource.create also reads OTEL_RESOURCE_ATTRIBUTES; the name given here wins.
    provider = TracerProvider(
        resource=Resource.create({"service.name": name}), sampler=NoBackgroundCalls(configured)
    )
    for exporter in span_exporters(environ):
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def instrument(provider: TracerProvider, *, database_spans: bool = True) -> None:
    """Turn on the aiohttp (server, client), aio-pika and PyMongo instrumentations. The
    first three carry the trace context (docs/reference/contract.md §9) and always run; a span per
    database command only matters where spans are exported."""
    from opentelemetry.instrumentation.aio_pika import AioPikaInstrumentor
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    from opentelemetry.instrumentation.aiohttp_server import AioHttpServerInstrumentor
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor

    if not (
        os.environ.get("OTEL_PYTHON_AIOHTTP_SERVER_EXCLUDED_URLS")
        or os.environ.get("OTEL_PYTHON_EXCLUDED_URLS")
    ):
        os.environ["OTEL_PYTHON_AIOHTTP_SERVER_EXCLUDED_URLS"] = DEFAULT_EXCLUDED_URLS
    instrumentors: list[Any] = [
        AioHttpServerInstrumentor(),
        AioHttpClientInstrumentor(),
        AioPikaInstrumentor(),
    ]
    if database_spans:
        instrumentors.append(PymongoInstrumentor())
    for instrumentor in instrumentors:
        if not instrumentor.is_instrumented_by_opentelemetry:
            with warnings.catch_warnings():
                # The server instrumentation subclasses web.Application, which aiohttp
                # discourages with a DeprecationWarning; that is its business, not ours.
                warnings.filterwarnings(
                    "ignore", "Inheritance class _InstrumentedApplication", DeprecationWarning
                )
                instrumentor.instrument(tracer_provider=provider)


def uninstrument() -> None:
    """Undo `instrument` (tests)."""
    from opentelemetry.instrumentation.aio_pika import AioPikaInstrumentor
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    from opentelemetry.instrumentation.aiohttp_server import AioHttpServerInstrumentor
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor

    for instrumentor in (
        AioHttpServerInstrumentor(),
        AioHttpClientInstrumentor(),
        AioPikaInstrumentor(),
        PymongoInstrumentor(),
    ):
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()


def configure_tracing(service: str) -> TracerProvider | None:
    """Set up tracing for this process from the environment (see the module's doc)."""
    provider = tracer_provider(service)
    if provider is None:
        return None
    if not os.environ.get("OTEL_PROPAGATORS"):
        propagate.set_global_textmap(_W3C)
    trace.set_tracer_provider(provider)
    instrument(provider, database_spans=exports_spans(os.environ))
    return provider


# --- what the instrumentations do not cover ----------------------------------------------


def current_trace_context() -> dict[str, str] | None:
    """The W3C trace context (`traceparent`, and `tracestate` if any) of the current span,
    to keep with something published later (an event in the outbox); None outside a trace."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    return carrier or None


def trace_context_of(carrier: Mapping[str, str] | None) -> Context:
    """The context a stored `current_trace_context()` names (empty: the current one)."""
    if not carrier:
        return context.get_current()
    return _W3C.extract(dict(carrier))


@contextmanager
def restored_trace_context(carrier: Mapping[str, str] | None) -> Iterator[None]:
    """Run the block in the trace `carrier` names, when nothing is traced right now (the
    outbox relay, on a timer); inside a trace (a handler) the current one is kept."""
    if not carrier or trace.get_current_span().get_span_context().is_valid:
        yield
        return
    token = context.attach(trace_context_of(carrier))
    try:
        yield
    finally:
        context.detach(token)


@contextmanager
def command_span(command_name: str) -> Iterator[Span]:
    """A client span around a command's round trip: publish, wait, reply."""
    tracer = trace.get_tracer(TRACER_NAME)
    with tracer.start_as_current_span(
        f"command {command_name}",
        kind=SpanKind.CLIENT,
        attributes={"messaging.system": "rabbitmq", "rpc.method": command_name},
    ) as span:
        yield span


def log_fields() -> dict[str, str]:
    """`trace_id` and `span_id` of the current span, for a log line; empty outside a trace."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return {}
    return {
        "trace_id": trace.format_trace_id(span_context.trace_id),
        "span_id": trace.format_span_id(span_context.span_id),
    }
