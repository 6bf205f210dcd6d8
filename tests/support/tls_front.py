"""An HTTPS front for a gateway, with a CA of its own (trustme), for clients that behave
differently over TLS: Scale's official SDK mounts its retrying adapter (retries after a
5xx, `Retry-After` honoured) on `https://` only.

    front = await TlsFront(gateway_url).start()
    ScaleClient(key, api_instance_url=front.url("/scale/v1"), verify=front.ca_path)
    front.lose_responses("POST", "/scale/v1/task/categorization", 1)
    ...
    await front.stop()

Every request is forwarded as it came; `lose_responses` makes the next ones answer `502`
after the gateway has answered them (what a proxy or a network that drops a response
does: the request took effect, the client never learns it). `seen` lists each request
and the status its client got.
"""

from __future__ import annotations

import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import trustme
from aiohttp import web

from .services import free_port

# What the gateway answers that a proxy passes on (hop-by-hop and length headers are its own).
_PASSED_ON = ("Content-Type", "Retry-After", "WWW-Authenticate", "Link", "Allow")


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    status: int  # what the client got
    upstream_status: int


@dataclass
class TlsFront:
    upstream: str
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    seen: list[Seen] = field(default_factory=list)
    _lost: dict[tuple[str, str], int] = field(default_factory=dict)
    _runner: web.AppRunner | None = None
    _session: aiohttp.ClientSession | None = None
    _directory: tempfile.TemporaryDirectory[str] | None = None

    @property
    def ca_path(self) -> str:
        assert self._directory is not None
        return str(Path(self._directory.name) / "ca.pem")

    def url(self, path: str = "") -> str:
        return f"https://{self.host}:{self.port}{path}"

    def lose_responses(self, method: str, path: str, count: int = 1) -> None:
        """Answer the next `count` requests `method path` with 502, after forwarding them."""
        self._lost[(method, path)] = count

    def statuses(self, method: str, path: str) -> list[int]:
        return [s.status for s in self.seen if (s.method, s.path) == (method, path)]

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._session is not None
        headers = {
            name: value
            for name, value in request.headers.items()
            if name.lower() in ("authorization", "content-type", "user-agent", "x-request-id")
        }
        async with self._session.request(
            request.method,
            self.upstream + request.rel_url.raw_path_qs,
            headers=headers,
            data=await request.read(),
            allow_redirects=False,
        ) as answer:
            body = await answer.read()
            passed = {name: answer.headers[name] for name in _PASSED_ON if name in answer.headers}
            upstream_status = answer.status
        key = (request.method, request.path)
        if self._lost.get(key, 0) > 0:
            self._lost[key] -= 1
            self.seen.append(Seen(request.method, request.path, 502, upstream_status))
            return web.json_response({"status_code": 502, "error": "bad gateway"}, status=502)
        self.seen.append(Seen(request.method, request.path, upstream_status, upstream_status))
        return web.Response(status=upstream_status, body=body, headers=passed)

    async def start(self) -> TlsFront:
        self._directory = tempfile.TemporaryDirectory(prefix="tls-front-")
        authority = trustme.CA()
        authority.cert_pem.write_to_path(self.ca_path)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        authority.issue_cert(self.host, "127.0.0.1").configure_cert(context)
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        app = web.Application(client_max_size=2 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, shutdown_timeout=1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=context).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()
        if self._directory is not None:
            self._directory.cleanup()
