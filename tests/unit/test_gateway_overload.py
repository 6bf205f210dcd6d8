"""Load shedding (overload.py), in-process: a tiny aiohttp app with the middleware and a
handler that holds every request until the test lets it go. No sleeps: the test waits for
the handler to have the requests it expects."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from prometheus_client import REGISTRY

from humantask_gateway.middleware import request_context
from humantask_gateway.overload import shed_load
from humantask_gateway.settings import GatewaySettings
from humantask_shared.runtime.health import add_health_routes


class HeldHandler:
    """A view that counts the requests inside it and answers none until `release`."""

    def __init__(self) -> None:
        self.inside = 0
        self.changed = asyncio.Condition()
        self.released = asyncio.Event()

    async def view(self, _request: web.Request) -> web.Response:
        async with self.changed:
            self.inside += 1
            self.changed.notify_all()
        await self.released.wait()
        return web.json_response({"ok": True})

    async def wait_inside(self, count: int) -> None:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(lambda: self.inside >= count), 5)


@asynccontextmanager
async def held_gateway(max_in_flight: int) -> AsyncIterator[tuple[str, HeldHandler]]:
    handler = HeldHandler()
    app = web.Application(middlewares=[request_context, shed_load(max_in_flight)])
    add_health_routes(app, with_metrics=False)
    app.router.add_post("/v1/task/categorize", handler.view)
    server = TestServer(app)
    await server.start_server()
    try:
        yield str(server.make_url("")), handler
    finally:
        handler.released.set()
        await server.close()


def metric(name: str) -> float:
    value = REGISTRY.get_sample_value(name)
    assert value is not None, name
    return value


Send = Callable[..., Coroutine[Any, Any, tuple[int, dict[str, str], Any]]]


@pytest.fixture
async def send() -> AsyncIterator[Send]:
    async with ClientSession() as session:

        async def request(method: str, url: str) -> tuple[int, dict[str, str], Any]:
            async with session.request(method, url) as response:
                return response.status, dict(response.headers), await response.json()

        yield request


async def test_past_the_bound_requests_are_503_with_retry_after_at_once(send: Send) -> None:
    async with held_gateway(max_in_flight=3) as (url, handler):
        held = [asyncio.ensure_future(send("POST", f"{url}/v1/task/categorize")) for _ in range(3)]
        await handler.wait_inside(3)
        shed_before = metric("humantask_gateway_shed_requests_total")
        assert metric("humantask_gateway_requests_in_flight") >= 3

        status, headers, body = await send("POST", f"{url}/v1/task/categorize")

        assert status == 503
        assert int(headers["Retry-After"]) >= 1
        assert body["status_code"] == 503 and "overloaded" in body["error"]
        assert metric("humantask_gateway_shed_requests_total") == shed_before + 1
        assert handler.inside == 3  # the shed request never reached the view

        handler.released.set()
        assert [status for status, _, _ in await asyncio.gather(*held)] == [200, 200, 200]


async def test_health_endpoints_are_never_shed(send: Send) -> None:
    async with held_gateway(max_in_flight=1) as (url, handler):
        held = asyncio.ensure_future(send("POST", f"{url}/v1/task/categorize"))
        await handler.wait_inside(1)

        assert (await send("GET", f"{url}/healthz"))[0] == 200
        assert (await send("GET", f"{url}/readyz"))[0] == 200
        assert (await send("POST", f"{url}/v1/task/categorize"))[0] == 503

        handler.released.set()
        assert (await held)[0] == 200


async def test_capacity_returns_when_requests_finish(send: Send) -> None:
    async with held_gateway(max_in_flight=1) as (url, handler):
        handler.released.set()
        for _ in range(3):  # one after the other: never two in flight
            assert (await send("POST", f"{url}/v1/task/categorize"))[0] == 200
        assert handler.inside == 3


async def test_a_bound_of_zero_admits_everything(send: Send) -> None:
    async with held_gateway(max_in_flight=0) as (url, handler):
        held = [asyncio.ensure_future(send("POST", f"{url}/v1/task/categorize")) for _ in range(20)]
        await handler.wait_inside(20)
        handler.released.set()
        assert {status for status, _, _ in await asyncio.gather(*held)} == {200}


def test_the_bound_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert GatewaySettings().gateway_max_in_flight > 0  # on unless turned off
    monkeypatch.setenv("GATEWAY_MAX_IN_FLIGHT", "0")
    assert GatewaySettings().gateway_max_in_flight == 0
