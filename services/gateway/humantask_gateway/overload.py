"""Load shedding (API.md §8): past `GATEWAY_MAX_IN_FLIGHT` requests in flight, the
gateway answers `503` with `Retry-After` at once.

Without a bound, every request a client sends waits in the gateway behind the broker round
trip: past what the task-store can do, latency grows with the number of clients until
requests reach `RPC_TIMEOUT_SECONDS` and fail after all, having cost the stack their
work. Answering the excess at once keeps the latency of the admitted requests near that
of a saturated stack, and tells clients to back off. `/healthz` and `/readyz` are never
shed: a load balancer must see a busy gateway as alive and ready.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import Counter, Gauge

from .middleware import error_response

NEVER_SHED = frozenset({"/healthz", "/readyz"})

SHED_REQUESTS = Counter(
    "humantask_gateway_shed_requests_total",
    "Requests answered 503 at once because GATEWAY_MAX_IN_FLIGHT were in flight",
)
IN_FLIGHT = Gauge(
    "humantask_gateway_requests_in_flight",
    "Requests the gateway is working on (those GATEWAY_MAX_IN_FLIGHT bounds)",
)


def shed_load(max_in_flight: int) -> Middleware:
    """The middleware; `max_in_flight` 0 admits everything (the gauge still counts)."""
    in_flight = 0

    @web.middleware
    async def overload(request: web.Request, handler: Handler) -> web.StreamResponse:
        nonlocal in_flight
        if request.path in NEVER_SHED:
            return await handler(request)
        if max_in_flight and in_flight >= max_in_flight:
            SHED_REQUESTS.inc()
            return error_response(503, "the gateway is overloaded; retry after a moment")
        in_flight += 1
        IN_FLIGHT.inc()
        try:
            return await handler(request)
        finally:
            in_flight -= 1
            IN_FLIGHT.dec()

    return overload
