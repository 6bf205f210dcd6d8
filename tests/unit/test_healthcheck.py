"""The image's HEALTHCHECK (`python -m humantask_shared.runtime.healthcheck`): healthy only when
the service's /readyz on HEALTH_PORT answers 200."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from humantask_shared.runtime import healthcheck
from tests.support.services import free_port


@pytest.fixture
def health_port(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """A /readyz answering the status held in the list it yields."""
    status = [200]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # http.server's name
            self.send_response(status[0] if self.path == "/readyz" else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    monkeypatch.setenv("HEALTH_PORT", str(server.server_address[1]))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield status
    finally:
        server.shutdown()
        server.server_close()


def test_healthy_when_ready(health_port: list[int]) -> None:
    healthcheck.main()


def test_unhealthy_when_not_ready(health_port: list[int]) -> None:
    health_port[0] = 503
    with pytest.raises(SystemExit) as raised:
        healthcheck.main()
    assert raised.value.code == 1


def test_unhealthy_when_nothing_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEALTH_PORT", str(free_port()))
    with pytest.raises(SystemExit) as raised:
        healthcheck.main()
    assert raised.value.code == 1
