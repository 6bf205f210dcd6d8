"""The gateway in-process: the app of its factory on a local port (aiohttp's
TestServer), a `FakeBoundary` behind it, and a client that speaks HTTP Basic."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict

from humantask_gateway.app import create_app
from humantask_gateway.settings import GatewaySettings

from .fake_boundary import FakeBoundary, FakeNotifier, FakeTaskStore


def basic(credential: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{credential}:".encode()).decode()}


class Gateway:
    def __init__(self, server: TestServer, session: ClientSession, boundary: FakeBoundary) -> None:
        self.server, self.session, self.boundary = server, session, boundary

    @property
    def store(self) -> FakeTaskStore:
        return self.boundary.taskstore

    @property
    def notifier(self) -> FakeNotifier:
        return self.boundary.notifier

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    async def call(
        self, method: str, path: str, key: str | None = None, **kwargs: Any
    ) -> tuple[int, CIMultiDict[str], Any]:
        """(status, headers, body): the body parsed when it is JSON, else its bytes."""
        headers = {**(basic(key) if key is not None else {}), **kwargs.pop("headers", {})}
        async with self.session.request(
            method, self.url(path), headers=headers, **kwargs
        ) as response:
            body = (
                await response.json()
                if response.content_type == "application/json"
                else await response.read()
            )
            return response.status, response.headers.copy(), body


@asynccontextmanager
async def in_process_gateway(**settings: Any) -> AsyncIterator[Gateway]:
    """The gateway with `settings` (GatewaySettings fields), serving on a local port."""
    boundary = FakeBoundary()
    server = TestServer(create_app(GatewaySettings(**settings), boundary))
    await server.start_server()
    try:
        async with ClientSession() as session:
            yield Gateway(server, session, boundary)
    finally:
        await server.close()
