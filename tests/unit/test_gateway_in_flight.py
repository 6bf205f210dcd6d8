"""Requests in flight and what one request may cost the gateway, in-process
(docs/operations/hardening.md):

- one credential holds at most `GATEWAY_MAX_IN_FLIGHT_PER_CREDENTIAL` requests at once
  (past that `429` with `Retry-After`), so trickled bodies from one credential cannot
  take every slot of `GATEWAY_MAX_IN_FLIGHT`;
- a request keeps its slots until its response is written, not merely made: a large
  page going to a slow reader still counts;
- form bodies: a field-count cap checked before parsing, and a task's bytes bounded
  (`MAX_TASK_BYTES`), so no body costs the event loop more than a few milliseconds.

No sleeps: raw connections hold requests open, and the test waits on conditions.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY

from humantask_gateway.bodies import MAX_FORM_FIELDS
from humantask_gateway.settings import GatewaySettings
from humantask_shared.core.messages.commands import CreateTask, ListTasks
from humantask_shared.core.models import Task, TaskParams
from humantask_shared.core.timeutil import utcnow
from tests.support.fake_boundary import CUSTOMER_KEY, OTHER_CUSTOMER_KEY
from tests.support.gateway import Gateway, basic
from tests.support.services import wait_for

from .conftest import GatewayFactory

pytestmark = pytest.mark.timeout(60)

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
VALID_TASK = {
    "callback_url": "http://www.example.com/callback",
    "instruction": "Is this big or small?",
    "attachment_type": "text",
    "attachment": "car",
    "categories": ["big", "small"],
}


@asynccontextmanager
async def trickling_create(gw: Gateway, key: str) -> AsyncIterator[None]:
    """A task creation whose body never finishes arriving: it holds its slots until
    the body deadline (keep that long in these tests)."""
    _, writer = await asyncio.open_connection(gw.server.host, gw.server.port)
    auth = basic(key)["Authorization"]
    writer.write(
        f"POST /v1/task/categorize HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{".encode()
    )
    await writer.drain()
    try:
        yield
    finally:
        writer.close()


async def in_flight_is(gw: Gateway, key: str, count: int) -> None:
    """Wait until `key` holds `count` slots, as the gateway sees it."""

    async def holding() -> bool:
        status = (await gw.call("GET", "/v1/tasks", key))[0]
        return status == 429 if count else status == 200

    await wait_for(holding, timeout=10, message=f"{key} holding {count}")


def in_flight() -> float:
    return REGISTRY.get_sample_value("humantask_gateway_requests_in_flight") or 0.0


def test_the_per_credential_cap_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = GatewaySettings()
    assert 0 < settings.gateway_max_in_flight_per_credential < settings.gateway_max_in_flight
    monkeypatch.setenv("GATEWAY_MAX_IN_FLIGHT_PER_CREDENTIAL", "0")
    assert GatewaySettings().gateway_max_in_flight_per_credential == 0


async def test_one_credential_cannot_take_every_slot(gateway: GatewayFactory) -> None:
    gw = await gateway(
        gateway_max_in_flight=4,
        gateway_max_in_flight_per_credential=2,
        request_body_timeout_seconds=30,
        rate_limit_per_second=0,
    )
    async with trickling_create(gw, CUSTOMER_KEY), trickling_create(gw, CUSTOMER_KEY):
        await in_flight_is(gw, CUSTOMER_KEY, 2)
        status, headers, body = await gw.call("GET", "/v1/tasks", CUSTOMER_KEY)
        assert status == 429 and int(headers["Retry-After"]) >= 1
        assert body == {
            "status_code": 429,
            "error": "too many requests in flight with this credential (at most 2); "
            "retry after a moment",
        }
        # The trickled requests held two of the four slots: everybody else is served.
        assert (await gw.call("GET", "/v1/tasks", OTHER_CUSTOMER_KEY))[0] == 200
        assert (await gw.call("GET", "/healthz"))[0] == 200
    await in_flight_is(gw, CUSTOMER_KEY, 0)


async def test_a_cap_of_zero_turns_it_off(gateway: GatewayFactory) -> None:
    gw = await gateway(
        gateway_max_in_flight_per_credential=0,
        request_body_timeout_seconds=30,
        rate_limit_per_second=0,
    )
    async with trickling_create(gw, CUSTOMER_KEY), trickling_create(gw, CUSTOMER_KEY):
        await wait_for(lambda: in_flight() >= 2, timeout=10, message="both trickles in flight")
        assert (await gw.call("GET", "/v1/tasks", CUSTOMER_KEY))[0] == 200


# -- slots are held until the response is written ---------------------------------------


def big_task(number: int) -> Task:
    """About 180 KB of JSON: every field at its limit, in four-byte characters (a page of
    100 is far more than the kernel's socket buffers of a loopback connection hold)."""
    return Task(
        task_id=f"{number:024x}",
        created_at=utcnow() - timedelta(seconds=number),
        callback_url="http://www.example.com/callback",
        status="pending",
        instruction="\U0001f600" * 10_000,
        params=TaskParams(
            attachment_type="text",
            attachment="\U0001f600" * 10_000,
            categories=[f"{n:03d}" + "\U0001f600" * 253 for n in range(100)],
        ),
    )


@asynccontextmanager
async def slow_reader(gw: Gateway, key: str) -> AsyncIterator[asyncio.StreamReader]:
    """A client that asks for a page of ~18 MB and reads nothing until told to."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (gw.server.host, gw.server.port))
    reader, writer = await asyncio.open_connection(sock=sock)
    auth = basic(key)["Authorization"]
    writer.write(f"GET /v1/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\r\n".encode())
    await writer.drain()
    try:
        yield reader
    finally:
        writer.close()


async def read_response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return head, await reader.readexactly(length)


@pytest.mark.parametrize(
    ("settings", "probe_key", "busy"),
    [
        ({"gateway_max_in_flight": 1}, OTHER_CUSTOMER_KEY, 503),
        ({"gateway_max_in_flight_per_credential": 1}, CUSTOMER_KEY, 429),
    ],
)
async def test_a_slot_is_held_until_the_response_is_written(
    gateway: GatewayFactory, settings: dict[str, Any], probe_key: str, busy: int
) -> None:
    gw = await gateway(rate_limit_per_second=0, **settings)
    for number in range(100):
        task = big_task(number)
        gw.store.tasks[task.task_id] = ("c1", task)
    probe = "/v1/tasks?limit=1"

    async with slow_reader(gw, CUSTOMER_KEY) as reader:
        await wait_for(lambda: gw.store.count(ListTasks) == 1, timeout=10)
        # The page is made; its writing waits for the reader. Until it has read it, the
        # request still holds its slot (give the gateway time to finish the page).
        statuses = []
        for _ in range(20):
            statuses.append((await gw.call("GET", probe, probe_key))[0])
            await asyncio.sleep(0.05)
        assert set(statuses) == {busy}, statuses

        head, body = await read_response(reader)
        assert head.startswith(b"HTTP/1.1 200") and len(body) > 15_000_000

    async def served() -> bool:
        return (await gw.call("GET", probe, probe_key))[0] == 200

    await wait_for(served, timeout=10, message="the slot given back once written")


# -- form bodies and task sizes -----------------------------------------------------------


async def test_a_form_with_too_many_fields_is_400_before_it_is_parsed(
    gateway: GatewayFactory,
) -> None:
    gw = await gateway()
    body = "&".join(["callback_url=http%3A%2F%2Fwww.example.com%2Fcb"] + ["x=1"] * 300)
    status, _, answer = await gw.call(
        "POST", "/v1/task/categorize", CUSTOMER_KEY, data=body, headers=FORM
    )
    assert status == 400
    assert answer == {
        "status_code": 400,
        "error": f"body: too many form fields (at most {MAX_FORM_FIELDS})",
    }
    assert gw.store.count(CreateTask) == 0


async def test_a_form_at_the_field_cap_is_read(gateway: GatewayFactory) -> None:
    gw = await gateway()
    fields = [
        ("callback_url", VALID_TASK["callback_url"]),
        ("instruction", VALID_TASK["instruction"]),
        ("attachment_type", "text"),
        ("attachment", "car"),
    ]
    fields += [("categories[]", f"c{n}") for n in range(100)]
    fields += [(f"extra{n}", "ignored") for n in range(MAX_FORM_FIELDS - len(fields))]
    status, _, answer = await gw.call(
        "POST", "/v1/task/categorize", CUSTOMER_KEY, data=fields, headers=FORM
    )
    assert status == 200, answer


@pytest.mark.parametrize("encoding", ["json", "form"])
async def test_a_task_over_max_task_bytes_is_400(gateway: GatewayFactory, encoding: str) -> None:
    gw = await gateway()
    # Every field within its limit in characters; four bytes each, about 140 KB.
    task = {
        **VALID_TASK,
        "instruction": "\U0001f600" * 10_000,
        "categories": [f"{n:03d}" + "\U0001f600" * 253 for n in range(100)],
    }
    kwargs: dict[str, Any] = (
        {"json": task}
        if encoding == "json"
        else {
            "data": [(k, v) for k, v in task.items() if k != "categories"]
            + [("categories[]", c) for c in task["categories"]],
            "headers": FORM,
        }
    )
    status, _, answer = await gw.call("POST", "/v1/task/categorize", CUSTOMER_KEY, **kwargs)
    assert status == 400, answer
    limit = GatewaySettings().max_task_bytes
    assert answer["error"].startswith(f"body: a task may take at most {limit} bytes")
    assert gw.store.count(CreateTask) == 0


async def test_a_form_body_far_over_max_task_bytes_is_refused_unparsed(
    gateway: GatewayFactory,
) -> None:
    gw = await gateway(max_task_bytes=2048)
    body = "instruction=" + "%F0%9F%98%80" * 2000  # 24 kB for 8,000 bytes of text
    status, _, answer = await gw.call(
        "POST", "/v1/task/categorize", CUSTOMER_KEY, data=body, headers=FORM
    )
    assert status == 400
    assert answer["error"].startswith("body: a task may take at most 2048 bytes")


def test_max_task_bytes_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert GatewaySettings().max_task_bytes == 128 * 1024
    monkeypatch.setenv("MAX_TASK_BYTES", "65536")
    assert GatewaySettings().max_task_bytes == 65536
