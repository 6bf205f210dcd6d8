"""The notifier's HTTP sender against a real local aiohttp receiver: what counts as an
answer, timeouts, refused connections, redirects, huge answers and private addresses."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from humantask_notifier.ports import SendResult
from humantask_notifier.sender import MAX_RESPONSE_BYTES, USER_AGENT, CallbackSender, create_session
from humantask_shared import __version__
from tests.support.services import free_port

TIMEOUT = 1.0


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[web.Request]]]:
    """A local server; its base URL and the requests it got."""
    seen: list[web.Request] = []

    async def record(request: web.Request) -> None:
        await request.read()
        seen.append(request)

    async def ok(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(text="thanks")

    async def error(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(status=500)

    async def slow(request: web.Request) -> web.Response:
        await record(request)
        await asyncio.sleep(TIMEOUT + 1)
        return web.Response()

    async def redirect(request: web.Request) -> web.Response:
        await record(request)
        raise web.HTTPTemporaryRedirect("/ok")

    async def endless(request: web.Request) -> web.StreamResponse:
        await record(request)
        response = web.StreamResponse()
        await response.prepare(request)
        chunk = b"x" * 65536
        while True:  # never finishes: only a capped read gets an answer in time
            await response.write(chunk)

    app = web.Application()
    for path, handler in {
        "/ok": ok,
        "/error": error,
        "/slow": slow,
        "/redirect": redirect,
        "/endless": endless,
    }.items():
        app.router.add_post(path, handler)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


async def post(url: str, allow_private: bool = True) -> SendResult:
    async with create_session(TIMEOUT, allow_private) as session:
        sender = CallbackSender(session, TIMEOUT, allow_private)
        return await sender.post(
            url,
            b"task_id=1",
            {"X-Callback-Attempt": "1", "Content-Type": "application/x-www-form-urlencoded"},
        )


async def test_a_200_with_our_headers_and_user_agent(receiver: tuple[str, list]) -> None:
    base, seen = receiver
    assert await post(base + "/ok") == SendResult(status_code=200)
    (request,) = seen
    assert request.headers["User-Agent"] == USER_AGENT == f"humantask-notifier/{__version__}"
    assert request.headers["X-Callback-Attempt"] == "1"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"


async def test_other_statuses_are_answers_not_errors(receiver: tuple[str, list]) -> None:
    base, _ = receiver
    assert await post(base + "/error") == SendResult(status_code=500)


async def test_redirects_are_not_followed(receiver: tuple[str, list]) -> None:
    base, seen = receiver
    assert await post(base + "/redirect") == SendResult(status_code=307)
    assert [request.path for request in seen] == ["/redirect"]


async def test_a_slow_receiver_times_out(receiver: tuple[str, list]) -> None:
    base, _ = receiver
    started = time.monotonic()
    result = await post(base + "/slow")
    assert result.status_code is None and result.error == f"timed out after {TIMEOUT:g} s"
    assert time.monotonic() - started < TIMEOUT + 0.9


async def test_an_endless_answer_is_read_only_up_to_the_cap(receiver: tuple[str, list]) -> None:
    base, _ = receiver
    assert MAX_RESPONSE_BYTES <= 1024 * 1024
    assert await post(base + "/endless") == SendResult(status_code=200)


async def test_a_refused_connection_is_an_error() -> None:
    result = await post(f"http://127.0.0.1:{free_port()}/")
    assert result.status_code is None
    assert result.error is not None and result.error.startswith("could not connect to 127.0.0.1")


async def test_an_unresolvable_host_is_an_error() -> None:
    result = await post("http://no-such-host.invalid/callback")
    assert result.status_code is None
    # Normally the resolver says so at once; a resolver that does not answer times out.
    assert result.error is not None
    assert "could not resolve no-such-host.invalid" in result.error or "timed out" in result.error


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("127.0.0.1", "127.0.0.1 is a loopback address"),
        ("localhost", "localhost does not resolve to a public address"),
        (
            "[::ffff:127.0.0.1]",
            "::ffff:7f00:1 is an IPv6 address that embeds a loopback IPv4 address",
        ),
        # Unicode spellings of 127.0.0.1: yarl maps them to ASCII before aiohttp connects.
        ("１２７．０．０．１", "127.0.0.1 is a loopback address"),  # fullwidth digits and dots
        ("127。0。0。1", "127.0.0.1 is a loopback address"),  # ideographic full stops
        ("127．0．0．1", "127.0.0.1 is a loopback address"),  # fullwidth full stops
        ("ｌｏｃａｌｈｏｓｔ", "localhost does not resolve to a public address"),
        # Legacy IPv4 forms that getaddrinfo reads as 127.0.0.1.
        ("2130706433", "2130706433 is a loopback address"),
        ("0x7f.1", "0x7f.1 is a loopback address"),
        ("0x7f000001", "0x7f000001 is a loopback address"),
        ("0177.0.0.1", "0177.0.0.1 is a loopback address"),
        ("127.1", "127.1 is a loopback address"),
    ],
)
async def test_private_addresses_are_refused_by_default_and_nothing_is_sent(
    receiver: tuple[str, list],
    host: str,
    reason: str,
) -> None:
    base, seen = receiver
    url = base.replace("127.0.0.1", host) + "/ok"
    result = await post(url, allow_private=False)
    assert result.status_code is None
    assert result.error == f"refused: {reason} (CALLBACK_ALLOW_PRIVATE_NETWORKS is off)"
    assert seen == []
    # The same URL does reach the local receiver: the refusal was about the address.
    assert await post(url, allow_private=True) == SendResult(status_code=200)


@pytest.mark.parametrize(
    "host", ["[::1]", "[fe80::1%25eth0]", "[::ffff:7f00:1]", "0", "169.254.169.254"]
)
async def test_other_non_public_literals_are_refused(host: str) -> None:
    result = await post(f"http://{host}:{free_port()}/cb", allow_private=False)
    assert result.status_code is None
    assert result.error is not None and result.error.startswith("refused: ")


async def test_refusals_do_not_reveal_what_a_name_resolved_to() -> None:
    # localhost resolves to 127.0.0.1 (and ::1) here: neither appears in the error, and
    # a name that does not resolve at all reads the same.
    refused = await post(f"http://localhost:{free_port()}/cb", allow_private=False)
    missing = await post("http://no-such-host.invalid/cb", allow_private=False)
    assert refused.error is not None and missing.error is not None
    for address in ("127.0.0.1", "::1"):
        assert address not in refused.error
    assert refused.error.replace("localhost", "X") == missing.error.replace(
        "no-such-host.invalid", "X"
    )


async def test_a_redirect_to_another_address_is_not_followed(receiver: tuple[str, list]) -> None:
    """A receiver answering with a redirect to an inside address gets a failed attempt;
    the sender never goes where the redirect points (even with private networks allowed)."""
    _base, seen = receiver
    inside: list[web.Request] = []

    async def record(request: web.Request) -> web.Response:
        inside.append(request)
        return web.Response()

    async def redirect_inside(request: web.Request) -> web.Response:
        seen.append(request)
        raise web.HTTPFound(f"http://127.0.0.1:{inside_port}/metadata")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    inside_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", inside_port).start()
    outer = web.Application()
    outer.router.add_post("/go", redirect_inside)
    outer_runner = web.AppRunner(outer)
    await outer_runner.setup()
    outer_port = free_port()
    await web.TCPSite(outer_runner, "127.0.0.1", outer_port).start()
    try:
        assert await post(f"http://127.0.0.1:{outer_port}/go") == SendResult(status_code=302)
    finally:
        await outer_runner.cleanup()
        await runner.cleanup()
    assert len(seen) == 1 and inside == []


@pytest.mark.parametrize("url", ["ftp://example.com/x", "http:///nohost", "not a url"])
async def test_only_http_urls_are_sent_to(url: str) -> None:
    result = await post(url)
    assert result.status_code is None and result.error is not None
    assert result.error.startswith("refused: ")


async def test_a_connection_closed_without_an_answer_is_an_error() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()  # the request line arrived; close without answering
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        result = await post(f"http://127.0.0.1:{port}/callback")
    finally:
        server.close()
        await server.wait_closed()
    assert result.status_code is None
    assert result.error is not None and result.error.startswith("connection failed: ")
