"""The gateway's aiohttp application: middlewares, routes, and the services it talks
through. Production wires it in `bootstrap.py`; tests build it with a fake boundary."""

from __future__ import annotations

from aiohttp import web

from humantask_shared.runtime.health import add_health_routes
from humantask_shared.runtime.http_routes import add_endpoints

from .appkeys import authenticator_key, boundary_key, settings_key
from .auth import Authenticator
from .boundary import Boundary
from .callback_views import CALLBACK_ENDPOINTS, RedeliveryLimits, redelivery_limits_key
from .customer_views import CUSTOMER_ENDPOINTS
from .limits import abuse_limits
from .middleware import json_errors, request_context
from .overload import cap_per_credential, shed_load
from .quality_views import QUALITY_ENDPOINTS
from .reference_views import REFERENCE_ENDPOINTS
from .scale_views import SCALE_ENDPOINTS
from .settings import GatewaySettings
from .worker_views import WORKER_ENDPOINTS

MAX_BODY_BYTES = 1024 * 1024
# A request line as long as any query the contract allows (`GET /scale/v1/tasks` with a
# hundred unique ids, percent-encoded), so that each is answered in JSON: aiohttp's own
# limit, 8190 bytes, refuses a longer one in plain text before any handler sees it.
MAX_REQUEST_LINE_BYTES = 512 * 1024


def create_app(settings: GatewaySettings, boundary: Boundary) -> web.Application:
    app = web.Application(
        client_max_size=MAX_BODY_BYTES,
        middlewares=[
            request_context,
            shed_load(settings.gateway_max_in_flight),
            cap_per_credential(settings.gateway_max_in_flight_per_credential),
            json_errors,
            abuse_limits(settings),
        ],
    )
    app[settings_key] = settings
    app[boundary_key] = boundary
    app[authenticator_key] = Authenticator(boundary, settings.auth_cache_seconds)
    app[redelivery_limits_key] = RedeliveryLimits.from_settings(settings)
    add_endpoints(
        app,
        CUSTOMER_ENDPOINTS
        + CALLBACK_ENDPOINTS
        + QUALITY_ENDPOINTS
        + WORKER_ENDPOINTS
        + SCALE_ENDPOINTS,
    )
    add_endpoints(app, REFERENCE_ENDPOINTS)
    add_health_routes(app, with_metrics=False)  # /metrics: HEALTH_PORT only
    return app
