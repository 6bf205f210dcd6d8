"""A real HTTP server on 127.0.0.1 that answers from a script, for the client's edge cases.

    with ScriptedServer() as server:
        server.script(Reply(503, headers={"Retry-After": "1"}), Reply(200, {"task_id": ...}))
        ...  # a client pointed at server.url
        assert len(server.requests) == 2

Each request takes the next reply of the script; once it is used up, the last reply
answers everything. A reply may hang up without answering (`hang_up`) or wait before
it answers (`delay`, for the client's timeout). It runs in threads of its own, so the
blocking client and the asyncio one can both be tested against it.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    hang_up: bool = False


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (its timeout) before a delayed reply is no error here."""


class ScriptedServer:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._script: list[Reply] = [Reply(200, [])]
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler())
        # A short poll: shutdown() waits for the loop to notice, once per test.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._script = list(replies)
            self.requests.clear()

    def _next(self, received: Received) -> Reply:
        with self._lock:
            self.requests.append(received)
            return self._script.pop(0) if len(self._script) > 1 else self._script[0]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urlsplit(self.path)
                reply = server._next(
                    Received(
                        self.command,
                        url.path,
                        dict(parse_qsl(url.query)),
                        {name.lower(): value for name, value in self.headers.items()},
                        body,
                        time.monotonic(),
                    )
                )
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.hang_up:
                    self.close_connection = True
                    return
                payload = b"" if reply.body is None else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _answer  # noqa: N815 - http.server's names

        return Handler

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
