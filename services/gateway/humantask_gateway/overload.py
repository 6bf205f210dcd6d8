"""Load shedding (docs/reference/contract.md §8): past `GATEWAY_MAX_IN_FLIGHT` requests in
flight, the gateway answers `503` with `Retry-After` at once.

Without a bound, every request a client sends waits in the gateway behind the broker round
trip: past what the task-store can do, latency grows with the number of clients until
requests reach `RPC_TIMEOUT_SECONDS` and fail after all, having cost the stack their
work. Answering the excess at once keeps the latency of the admitted requests near that
of a saturated stack, and tells clients to back off. `/healthz` and `/readyz` are never
shed: a load balancer must see a busy gateway as alive and ready.

Past `GATEWAY_MAX_IN_FLIGHT_PER_CREDENTIAL` requests in flight with one API key or
worker token, that credential's next requests are `429` with `Retry-After` at once
(`cap_per_credential`): otherwise one client trickling its bodies in (each may take
`REQUEST_BODY_TIMEOUT_SECONDS`) could hold every slot and everyone else would get `503`.
A `429`, not a `503`: the gateway is not overloaded, this client has too much going on.

A request holds its slots until its response is written (`middleware.send_now`), not
just made: a large page to a slow reader is work the gateway still has in hand.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import Counter, Gauge

from .auth import request_credential_digest
from .limits import REJECTED, too_many_requests
from .middleware import error_response, send_now

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
            response = await handler(request)
            await send_now(request, response)
            return response
        finally:
            in_flight -= 1
            IN_FLIGHT.dec()

    return overload


def cap_per_credential(max_in_flight: int) -> Middleware:
    """The middleware; `max_in_flight` 0 turns the cap off. Counted by the credential's
    digest, whether or not it turns out valid (an invalid one is answered at once)."""
    in_flight: dict[str, int] = {}

    @web.middleware
    async def per_credential(request: web.Request, handler: Handler) -> web.StreamResponse:
        digest = request_credential_digest(request) if max_in_flight else None
        if digest is None:
            return await handler(request)
        held = in_flight.get(digest, 0)
        if held >= max_in_flight:
            REJECTED.labels("in_flight_per_credential").inc()
            return too_many_requests(
                1,
                f"too many requests in flight with this credential (at most {max_in_flight}); "
                "retry after a moment",
            )
        in_flight[digest] = held + 1
        try:
            response = await handler(request)
            await send_now(request, response)
            return response
        finally:
            left = in_flight[digest] - 1
            if left:
                in_flight[digest] = left
            else:
                del in_flight[digest]  # bounded by the requests in flight

    return per_credential
