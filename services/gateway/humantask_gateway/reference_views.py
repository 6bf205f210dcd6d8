"""The gateway's own API reference: the OpenAPI document and a page that draws it.

`GET /openapi.yaml` and `GET /openapi.json` serve `contracts/openapi.yaml`, shipped inside
this package (`reference/`, written by `make contracts`), so an installed gateway
describes exactly the API it serves. `GET /docs` draws that document with Swagger UI,
vendored in `reference/` with its licence (`reference/VENDORED.md`): the page loads
nothing from outside the gateway, under a Content Security Policy that says so.

Each route is declared once, at the bottom (`REFERENCE_ENDPOINTS`).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from aiohttp import web
from aiohttp.typedefs import Handler

from humantask_shared.runtime.http_routes import Endpoint, Operation, ResponseDoc

# Swagger UI runs only the gateway's own scripts and styles and asks only the gateway
# (the document; "Try it out" requests). Its stylesheet draws its icons from data: URLs.
REFERENCE_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@cache
def _package_file(name: str) -> bytes:
    """A file of `reference/`, read once: they never change while the process runs."""
    return (resources.files(__package__) / "reference" / name).read_bytes()


def _file_handler(name: str, content_type: str, *, page: bool = False) -> Handler:
    headers = REFERENCE_PAGE_HEADERS if page else {"X-Content-Type-Options": "nosniff"}

    async def serve(_request: web.Request) -> web.Response:
        return web.Response(
            body=_package_file(name), content_type=content_type, charset="utf-8", headers=headers
        )

    return serve


REFERENCE_ENDPOINTS = (
    Endpoint(
        "GET",
        "/openapi.yaml",
        _file_handler("openapi.yaml", "application/yaml"),
        Operation(
            "getOpenApiYaml",
            "This API's OpenAPI document, as YAML",
            "reference",
            (
                ResponseDoc(
                    200,
                    "The OpenAPI 3.1 document of this gateway's API.",
                    schema={"type": "object"},  # a document, whichever its notation
                    media_type="application/yaml",
                ),
            ),
            description="The document this page is part of: every operation the gateway "
            "serves, its parameters, bodies and answers. No credentials needed.",
        ),
    ),
    Endpoint(
        "GET",
        "/openapi.json",
        _file_handler("openapi.json", "application/json"),
        Operation(
            "getOpenApiJson",
            "This API's OpenAPI document, as JSON",
            "reference",
            (
                ResponseDoc(
                    200,
                    "The same document as `/openapi.yaml`, as JSON.",
                    schema={"type": "object"},
                ),
            ),
            description="The same document as `/openapi.yaml`. No credentials needed.",
        ),
    ),
    # A page for people and the files it is made of, not API operations: outside the
    # OpenAPI document, like the workbench (the document they draw is /openapi.json).
    Endpoint("GET", "/docs", _file_handler("reference.html", "text/html", page=True), None),
    Endpoint(
        "GET",
        "/docs/reference.js",
        _file_handler("reference.js", "text/javascript", page=True),
        None,
    ),
    Endpoint(
        "GET",
        "/docs/reference.css",
        _file_handler("reference.css", "text/css", page=True),
        None,
    ),
    Endpoint(
        "GET",
        "/docs/swagger-ui-bundle.js",
        _file_handler("swagger-ui-bundle.js", "text/javascript", page=True),
        None,
    ),
    Endpoint(
        "GET",
        "/docs/swagger-ui.css",
        _file_handler("swagger-ui.css", "text/css", page=True),
        None,
    ),
)
