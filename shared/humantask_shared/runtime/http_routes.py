"""HTTP routes declared once: what aiohttp serves and what the OpenAPI document says of it.

A service lists its `Endpoint`s and registers them with `add_endpoints`; the app keeps
each route's declaration, and `served_endpoints` reads them back from the live router
(the contract generator in `tools/humantask_contracts/openapi.py` does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler
from pydantic import BaseModel

Json = dict[str, Any]

# The security schemes of the OpenAPI document, by name.
CUSTOMER_AUTH = "customerApiKey"
WORKER_AUTH = "workerToken"


@dataclass(frozen=True)
class ResponseDoc:
    """A response other than an error (those are `Operation.errors`): its body is a model
    (or an array of it), an inline schema, or nothing."""

    status: int
    description: str
    model: type[BaseModel] | None = None
    many: bool = False
    headers: tuple[str, ...] = ()
    schema: Json | None = None  # instead of a model, e.g. `/readyz`'s
    media_type: str = "application/json"


@dataclass(frozen=True)
class Operation:
    """What the OpenAPI document says of a route.

    `errors` are the statuses it answers with an error body, besides an unknown path's `404`
    and `405`, which apply to every path. `security` names a security scheme; `None`: no
    credentials. `form_body`: the body may also be a form (`categories[]=a`).
    """

    operation_id: str
    summary: str
    tag: str
    responses: tuple[ResponseDoc, ...]
    errors: tuple[int, ...] = ()
    security: str | None = None
    body_model: type[BaseModel] | None = None
    form_body: bool = False
    query_model: type[BaseModel] | None = None
    description: str = ""


@dataclass(frozen=True)
class Endpoint:
    """One route. `openapi` is `None` for a route served on purpose outside the API
    contract (say why where it is declared)."""

    method: str
    path: str
    handler: Handler
    openapi: Operation | None


endpoints_key = web.AppKey("endpoints", dict[web.AbstractRoute, Endpoint])


class UndeclaredRoute(Exception):
    """The router serves a route that no `Endpoint` declares."""


def add_endpoints(app: web.Application, endpoints: tuple[Endpoint, ...]) -> None:
    """Route each endpoint (a `GET` also answers `HEAD`, as aiohttp does by default)."""
    declared = app.setdefault(endpoints_key, {})
    for endpoint in endpoints:
        if endpoint.method == hdrs.METH_GET:
            route = app.router.add_get(endpoint.path, endpoint.handler)
        else:
            route = app.router.add_route(endpoint.method, endpoint.path, endpoint.handler)
        declared[route] = endpoint


def served_endpoints(app: web.Application) -> list[Endpoint]:
    """The declarations of every route `app` serves, in the router's order.

    Raises `UndeclaredRoute` for a route added around `add_endpoints`; the `HEAD` aiohttp
    adds beside a declared `GET` is the `GET`'s."""
    declared = app.get(endpoints_key, {})
    endpoints = []
    for route in app.router.routes():
        endpoint = declared.get(route)
        if endpoint is not None:
            endpoints.append(endpoint)
        elif not (route.method == hdrs.METH_HEAD and _has_declared_get(route, declared)):
            path = route.resource.canonical if route.resource is not None else "?"
            raise UndeclaredRoute(f"{route.method} {path} is served but not declared")
    return endpoints


def _has_declared_get(
    route: web.AbstractRoute, declared: dict[web.AbstractRoute, Endpoint]
) -> bool:
    resource = route.resource
    return resource is not None and any(
        other.method == hdrs.METH_GET and other in declared for other in resource
    )
