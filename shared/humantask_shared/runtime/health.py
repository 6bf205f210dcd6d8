"""`/healthz`, `/readyz` and `/metrics` (docs/reference/contract.md §9), for any aiohttp app."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .. import __version__
from .http_routes import Endpoint, Json, Operation, ResponseDoc, add_endpoints

ReadinessCheck = Callable[[], Awaitable[bool]]
readiness_checks_key = web.AppKey("readiness_checks", list[tuple[str, ReadinessCheck]])

log = logging.getLogger(__name__)


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "version": __version__})


async def readyz(request: web.Request) -> web.Response:
    results: dict[str, bool] = {}
    for name, check in request.app[readiness_checks_key]:
        try:
            results[name] = await asyncio.wait_for(check(), timeout=2)
        except Exception:  # noqa: BLE001 - a failing dependency is "not ready", never a 500
            results[name] = False
    ready = all(results.values())
    return web.json_response(
        {"status": "ready" if ready else "not ready", "checks": results},
        status=200 if ready else 503,
    )


async def metrics(_request: web.Request) -> web.Response:
    response = web.Response(body=generate_latest())
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


_STATUS_SCHEMA: Json = {
    "type": "object",
    "properties": {
        "status": {"type": "string"},
        "version": {"type": "string", "description": "The version this process runs."},
    },
    "required": ["status", "version"],
}
_READINESS_SCHEMA: Json = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["ready", "not ready"]},
        "checks": {"type": "object", "additionalProperties": {"type": "boolean"}},
    },
    "required": ["status", "checks"],
}

HEALTHZ = Endpoint(
    "GET",
    "/healthz",
    healthz,
    Operation(
        "healthz",
        "Liveness",
        "operations",
        (ResponseDoc(200, "The process is alive.", schema=_STATUS_SCHEMA),),
    ),
)
READYZ = Endpoint(
    "GET",
    "/readyz",
    readyz,
    Operation(
        "readyz",
        "Readiness: broker and database reachable",
        "operations",
        (
            ResponseDoc(200, "Ready.", schema=_READINESS_SCHEMA),
            ResponseDoc(
                503, "Not ready; `checks` says which dependency failed.", schema=_READINESS_SCHEMA
            ),
        ),
    ),
)
METRICS = Endpoint(
    "GET",
    "/metrics",
    metrics,
    Operation(
        "metrics",
        "Prometheus metrics, on HEALTH_PORT only",
        "operations",
        (
            ResponseDoc(
                200,
                "Prometheus text exposition format.",
                schema={"type": "string"},
                media_type="text/plain",
            ),
        ),
    ),
)


def add_health_routes(app: web.Application, *, with_metrics: bool = True) -> None:
    """`/healthz`, `/readyz` and (unless on a public port) `/metrics`."""
    app.setdefault(readiness_checks_key, [])
    add_endpoints(app, (HEALTHZ, READYZ, METRICS) if with_metrics else (HEALTHZ, READYZ))


def health_app(checks_of: web.Application) -> web.Application:
    """An app of its own for `HEALTH_PORT` (beside a public app): `/healthz`, `/metrics`,
    and `/readyz` answering with the readiness checks `checks_of` registers."""
    app = web.Application()
    app[readiness_checks_key] = checks_of.setdefault(readiness_checks_key, [])
    add_health_routes(app)
    return app


def add_readiness_check(app: web.Application, name: str, check: ReadinessCheck) -> None:
    app.setdefault(readiness_checks_key, []).append((name, check))
