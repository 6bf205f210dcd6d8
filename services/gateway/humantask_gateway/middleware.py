"""Request ids, metrics, and the one place every error becomes JSON
(docs/reference/contract.md §8)."""

from __future__ import annotations

import logging
import re
import time
import uuid

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import Counter, Histogram

from humantask_shared.core.errors import HTTP_STATUS, HumantaskError
from humantask_shared.runtime.logging import request_id_var

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-Id"
_REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

HTTP_REQUESTS = Counter(
    "humantask_gateway_http_requests_total", "HTTP requests", ["method", "route", "status"]
)
HTTP_SECONDS = Histogram("humantask_gateway_http_request_seconds", "HTTP request time", ["route"])

# What aiohttp's own HTTP errors say, in our words.
_HTTP_MESSAGES = {
    404: "no such endpoint",
    405: "method not allowed on this endpoint",
    413: "request body too large (the limit is 1 MiB)",
}


def error_response(status: int, message: str) -> web.Response:
    response = web.json_response({"status_code": status, "error": message}, status=status)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="humantask"'
    if status == 503:
        response.headers["Retry-After"] = "1"
    return response


async def send_now(request: web.Request, response: web.StreamResponse) -> None:
    """Write the whole response now, rather than after the middlewares return: whoever
    holds a slot for the request (overload.py) holds it until the response is written
    (for a large page to a slow reader, until all but the transport's last 64 KiB are).
    A client gone meanwhile is aiohttp's to notice, as for any response."""
    if response.prepared:
        return
    request_id = request_id_var.get()
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
    try:
        await response.prepare(request)
        await response.write_eof()
    except ConnectionError:
        log.info("client gone before its response was written", extra={"path": request.path})


async def send_and_close(request: web.Request, response: web.Response) -> web.Response:
    """Send `response` now and close the connection after it, without first reading the
    rest of the request's body (aiohttp would otherwise linger, reading it, for 10 s)."""
    request_id = request_id_var.get()
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    if request.protocol is not None:
        request.protocol.force_close()  # flushes what was written, then closes
    return response


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give every request an id (the caller's, if sane), shared with logs and messages."""
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = incoming if _REQUEST_ID_PATTERN.match(incoming) else uuid.uuid4().hex
    token = request_id_var.set(request_id)
    started = time.perf_counter()
    route = request.match_info.route.resource
    route_name = route.canonical if route is not None else "unmatched"
    status = 500
    try:
        response = await handler(request)
        status = response.status
        if not response.prepared:
            response.headers[REQUEST_ID_HEADER] = request_id
        return response
    finally:
        HTTP_REQUESTS.labels(request.method, route_name, str(status)).inc()
        HTTP_SECONDS.labels(route_name).observe(time.perf_counter() - started)
        log.info(
            "request",
            extra={
                "method": request.method,
                "path": request.path,
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        request_id_var.reset(token)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except HumantaskError as exc:
        status = HTTP_STATUS.get(exc.code, 500)
        if status >= 500:  # the request id comes with every log line (logging.py)
            log.warning("answering %d", status, extra={"error": exc.message, "path": request.path})
        if status == 408:  # a body too slow to wait for: answer, and hang up
            return await send_and_close(request, error_response(status, exc.message))
        response = error_response(status, exc.message)
        if exc.retry_after_seconds is not None:
            response.headers["Retry-After"] = str(exc.retry_after_seconds)
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = error_response(exc.status, _HTTP_MESSAGES.get(exc.status, exc.reason))
        if exc.status == 405 and "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception:
        log.exception("unhandled error")
        return error_response(500, "internal error")
