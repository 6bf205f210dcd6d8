"""Running a service process: JSON logs, uvloop, graceful SIGTERM via aiohttp's runner."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from .logging import configure_logging
from .settings import CommonSettings

log = logging.getLogger(__name__)


def _new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # uvloop is optional (e.g. on Windows); asyncio's loop works too
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run_service(
    service: str,
    app: web.Application,
    port: int,
    settings: CommonSettings,
    max_request_line: int | None = None,
) -> None:
    """Serve `app` until SIGTERM/SIGINT, then run its cleanup contexts in reverse order:
    consumers drain first, connections close last. `max_request_line`: the longest
    request line (method, URL) read, past aiohttp's 8190 bytes."""
    configure_logging(service, settings.log_level)
    log.info("starting", extra={"port": port})
    # The request handler's own settings, through the runner.
    handler: dict[str, Any] = (
        {} if max_request_line is None else {"max_line_size": max_request_line}
    )
    web.run_app(
        app,
        port=port,
        print=None,
        access_log=None,
        shutdown_timeout=settings.shutdown_grace_seconds,
        loop=_new_event_loop(),
        **handler,
    )
    log.info("stopped")
