"""Recording the spans this test process makes, for tests of tracing.

    with recorded_spans() as spans:        # instruments aiohttp, aio-pika, PyMongo
        ...                                 # start apps, send requests
        mine = spans.of_trace(trace_id)

The global tracer provider can be set once per process, so the first use installs one
(`humantask_shared.runtime.tracing.tracer_provider`, no exporter from the environment) with an
in-memory exporter, and later uses clear that exporter. The instrumentations are on only
inside the block, so other tests see the libraries as they are.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from humantask_shared.runtime import tracing


class Spans:
    def __init__(self, exporter: InMemorySpanExporter) -> None:
        self._exporter = exporter

    def all(self) -> list[ReadableSpan]:
        return list(self._exporter.get_finished_spans())

    def of_trace(self, trace_id: int) -> list[ReadableSpan]:
        return [span for span in self.all() if span.context.trace_id == trace_id]

    def clear(self) -> None:
        self._exporter.clear()


_EXPORTER: InMemorySpanExporter | None = None


def _installed() -> tuple[TracerProvider, InMemorySpanExporter]:
    global _EXPORTER
    provider = trace.get_tracer_provider()
    if _EXPORTER is None:
        _EXPORTER = InMemorySpanExporter()
        if not isinstance(provider, TracerProvider):
            new = tracing.tracer_provider("tests", environ={})
            assert new is not None
            trace.set_tracer_provider(new)
            provider = trace.get_tracer_provider()
        assert isinstance(provider, TracerProvider), provider
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
    assert isinstance(provider, TracerProvider)
    return provider, _EXPORTER


@contextlib.contextmanager
def recorded_spans() -> Iterator[Spans]:
    provider, exporter = _installed()
    exporter.clear()
    tracing.instrument(provider)
    try:
        yield Spans(exporter)
    finally:
        tracing.uninstrument()
        exporter.clear()
