"""Abuse limits at the gateway (docs/reference/contract.md §3 and §8), in one middleware for the
API (`/v1/` and `/scale/v1/`).

- **Cross-site requests** from browsers (`Sec-Fetch-Site: cross-site`) are `403`: a page
  on another site cannot make a signed-in workbench tab, or a browser holding a key, act.
- **Rate limit per credential**: more than `RATE_LIMIT_PER_SECOND` requests a second with
  one API key, or `WORKER_RATE_LIMIT_PER_SECOND` with one worker token (token buckets:
  bursts up to one second's worth), are `429` with `Retry-After`. `0` turns either off.
  Counted in each gateway process.
- **Failed authentications**: a credential the task-store refused is refused again
  here, without asking, for `AUTH_FAILURE_CACHE_SECONDS` (keys are random, so an unknown
  key does not become valid meanwhile). Each client (`client_addresses`: the peer, or
  the client a trusted proxy names; an IPv6 /64) may cause `AUTH_FAILURES_PER_SECOND`
  failed look-ups a second (bursts of ten seconds' worth); past that its failed
  look-ups are `429` with `Retry-After` instead of `401`. The budget is charged only
  after the task-store said no: a credential that exists is always looked up and
  served, so failures from an address (or from everybody behind one proxy) can never
  lock a real credential out.
- **Request bodies** must arrive within `REQUEST_BODY_TIMEOUT_SECONDS` of the request's
  start (`BODY_DEADLINE`, enforced where the body is read: `bodies.read_fields`), else
  `408` and the connection is closed.

All of it lives in the process's memory, bounded in size: with N gateways the effective
limits are N times these.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import Counter

from humantask_shared.core.errors import Unauthorized

from .auth import API_PREFIXES, request_credential_digest
from .client_addresses import budget_key, client_address
from .middleware import error_response
from .settings import GatewaySettings

K = TypeVar("K", bound=Hashable)

# When the request body must have arrived (the event loop's clock); see bodies.read_fields.
BODY_DEADLINE = web.RequestKey("body_deadline", float)

MAX_TRACKED_KEYS = 100_000
# A client address may spend ten seconds' worth of failed authentications at once.
AUTH_FAILURE_BURST_SECONDS = 10

REJECTED = Counter(
    "humantask_gateway_rejected_requests_total",
    "Requests the gateway turned away before they reached a service",
    ["reason"],
)

Clock = Callable[[], float]


class TokenBuckets(Generic[K]):
    """One token bucket per key: `rate` tokens a second, holding at most `burst`."""

    def __init__(
        self,
        rate: float,
        burst: float,
        clock: Clock = time.monotonic,
        max_keys: int = MAX_TRACKED_KEYS,
    ) -> None:
        self._rate, self._burst, self._clock, self._max_keys = (
            rate,
            max(burst, 1.0),
            clock,
            max_keys,
        )
        self._buckets: dict[K, tuple[float, float]] = {}  # key -> (tokens, when)

    def _tokens(self, key: K, now: float) -> float:
        tokens, when = self._buckets.get(key, (self._burst, now))
        return min(self._burst, tokens + (now - when) * self._rate)

    def wait(self, key: K) -> float:
        """Seconds until `key` has a token (0: it has one now). Takes nothing."""
        tokens = self._tokens(key, self._clock())
        return 0.0 if tokens >= 1 else (1 - tokens) / self._rate

    def take(self, key: K) -> float:
        """Take a token if there is one: 0. Otherwise the seconds until there is one."""
        now = self._clock()
        tokens = self._tokens(key, now)
        if tokens < 1:
            return (1 - tokens) / self._rate
        if key not in self._buckets and len(self._buckets) >= self._max_keys:
            self._prune(now)
        self._buckets[key] = (tokens - 1, now)
        return 0.0

    def spend(self, key: K) -> None:
        """Take a token whether or not there is one (never below empty)."""
        now = self._clock()
        if key not in self._buckets and len(self._buckets) >= self._max_keys:
            self._prune(now)
        self._buckets[key] = (max(0.0, self._tokens(key, now) - 1), now)

    def _prune(self, now: float) -> None:
        """Forget full buckets (forgetting one changes nothing); if that is not enough,
        forget everything rather than grow without bound."""
        full = [key for key in self._buckets if self._tokens(key, now) >= self._burst]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= self._max_keys:
            self._buckets.clear()


class ExpiringMap(Generic[K]):
    """Keys remembered for `seconds`, with a value each; bounded in size."""

    def __init__(
        self, seconds: float, clock: Clock = time.monotonic, max_keys: int = MAX_TRACKED_KEYS
    ) -> None:
        self._seconds, self._clock, self._max_keys = seconds, clock, max_keys
        self._entries: dict[K, tuple[float, str]] = {}

    def get(self, key: K) -> str | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._entries[key]
            return None
        return entry[1]

    def put(self, key: K, value: str = "") -> None:
        if self._seconds <= 0:
            return
        now = self._clock()
        if key not in self._entries and len(self._entries) >= self._max_keys:
            for stale in [k for k, (until, _) in self._entries.items() if until <= now]:
                del self._entries[stale]
            if len(self._entries) >= self._max_keys:
                self._entries.clear()
        self._entries[key] = (now + self._seconds, value)


def too_many_requests(wait_seconds: float, message: str) -> web.Response:
    response = error_response(429, message)
    response.headers["Retry-After"] = str(max(1, math.ceil(wait_seconds)))
    return response


def _role(request: web.Request) -> str:
    return "worker" if request.path.startswith("/v1/work/") else "customer"


def abuse_limits(settings: GatewaySettings, clock: Clock = time.monotonic) -> Middleware:
    """The middleware; `clock` only for tests."""
    # Customers' keys and workers' tokens, each with its own rate (bursts of a second's).
    rates = {
        "customer": settings.rate_limit_per_second,
        "worker": settings.worker_rate_limit_per_second,
    }
    per_credential = {
        role: TokenBuckets[str](rate, rate, clock) for role, rate in rates.items() if rate > 0
    }
    failures_per_address = (
        TokenBuckets[str](
            settings.auth_failures_per_second,
            settings.auth_failures_per_second * AUTH_FAILURE_BURST_SECONDS,
            clock,
        )
        if settings.auth_failures_per_second > 0
        else None
    )
    refused = ExpiringMap[tuple[str, str]](settings.auth_failure_cache_seconds, clock)
    body_seconds = settings.request_body_timeout_seconds

    def client_key(request: web.Request) -> str:
        header = settings.trusted_proxy_header
        values = request.headers.getall(header, []) if settings.trusted_proxies else []
        return budget_key(client_address(request.remote, values, settings.trusted_proxies, header))

    @web.middleware
    async def limits(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[BODY_DEADLINE] = asyncio.get_running_loop().time() + body_seconds
        if not request.path.startswith(API_PREFIXES):
            return await handler(request)
        if request.headers.get("Sec-Fetch-Site", "").strip().lower() == "cross-site":
            REJECTED.labels("cross_site").inc()
            return error_response(403, "cross-site requests from browsers are not allowed")
        digest = request_credential_digest(request)
        if digest is None:
            return await handler(request)

        role = _role(request)
        buckets = per_credential.get(role)
        if buckets is not None:
            wait = buckets.take(digest)
            if wait:
                REJECTED.labels("rate_limit").inc()
                return too_many_requests(
                    wait,
                    f"rate limit exceeded: at most {rates[role]:g} requests a second per "
                    + ("API key" if role == "customer" else "worker token"),
                )
        key = (digest, role)
        message = refused.get(key)
        if message is not None:
            REJECTED.labels("auth_failure_cached").inc()
            raise Unauthorized(message)
        try:
            return await handler(request)
        except Unauthorized as exc:
            refused.put(key, exc.message)
            if failures_per_address is None:
                raise
            wait = failures_per_address.take(client_key(request))
            if not wait:
                raise
            REJECTED.labels("auth_failures").inc()
            return too_many_requests(
                wait, "too many failed authentications from this address; try again later"
            )

    return limits
