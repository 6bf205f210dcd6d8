"""The gateway's abuse limits and input limits, in-process: the real aiohttp app
(`create_app`, its middlewares and views) served by aiohttp's TestServer, with a fake
boundary instead of RabbitMQ (`tests/support/fake_boundary.py`). No broker, no database.

- per-credential rate limit (`RATE_LIMIT_PER_SECOND`): 429 with Retry-After;
- failed authentications: no task-store round trip each time;
- cross-site browser requests: 403;
- a body that trickles in: 408 at the deadline, connection closed;
- limits of docs/reference/contract.md §4-5 (offset, dates, lengths): 400 naming the field,
  the task-store never asked;
- a failure inside a service: 503 with Retry-After at once.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from humantask_gateway.limits import ExpiringMap, TokenBuckets
from humantask_gateway.settings import GatewaySettings
from humantask_shared.core.errors import Unavailable
from humantask_shared.core.messages.commands import Authenticate, CreateTask, ListTasks
from tests.support.fake_boundary import CUSTOMER_KEY as GOOD_KEY
from tests.support.fake_boundary import OTHER_CUSTOMER_KEY as OTHER_KEY
from tests.support.fake_boundary import WORKER_TOKEN
from tests.support.gateway import basic

from .conftest import GatewayFactory

TASK_ID = "0123456789abcdef01234567"

VALID_TASK = {
    "callback_url": "http://www.example.com/callback",
    "instruction": "Is this big or small?",
    "attachment_type": "text",
    "attachment": "car",
    "categories": ["big", "small"],
}


# -- rate limit per credential -----------------------------------------------------------


def test_the_rate_limit_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert GatewaySettings().rate_limit_per_second == 100
    monkeypatch.setenv("RATE_LIMIT_PER_SECOND", "0")
    assert GatewaySettings().rate_limit_per_second == 0


async def test_over_the_rate_limit_is_429_with_retry_after(gateway: GatewayFactory) -> None:
    gw = await gateway(rate_limit_per_second=5)
    statuses = [(await gw.call("GET", "/v1/tasks", GOOD_KEY))[0] for _ in range(5)]
    assert statuses == [200] * 5
    status, headers, body = await gw.call("GET", "/v1/tasks", GOOD_KEY)
    assert status == 429
    assert int(headers["Retry-After"]) >= 1
    assert body["status_code"] == 429 and "rate limit" in body["error"]
    assert headers["Content-Type"].startswith("application/json")
    # Per credential: another customer is not slowed down by the first.
    assert (await gw.call("GET", "/v1/tasks", OTHER_KEY))[0] == 200


async def test_a_burst_over_the_limit_is_partly_429(gateway: GatewayFactory) -> None:
    # 10 a second: the bucket refills by one token in 100 ms, far less than the burst
    # takes even on a busy machine (at the default, 100 a second, a slow burst of 130
    # could be refilled as it goes and never see a 429).
    gw = await gateway(rate_limit_per_second=10)
    statuses = await asyncio.gather(*(gw.call("GET", "/v1/tasks", GOOD_KEY) for _ in range(40)))
    counts = {code: [s for s, _, _ in statuses].count(code) for code in (200, 429)}
    assert 10 <= counts[200] < 40 and counts[429] >= 1
    assert counts[200] + counts[429] == 40


def test_the_default_rate_limit_is_100_a_second() -> None:
    assert GatewaySettings().rate_limit_per_second == 100  # docs/reference/contract.md §2


async def test_a_rate_limit_of_zero_turns_it_off(gateway: GatewayFactory) -> None:
    gw = await gateway(rate_limit_per_second=0)
    statuses = [(await gw.call("GET", "/v1/tasks", GOOD_KEY))[0] for _ in range(30)]
    assert statuses == [200] * 30


# -- failed authentications: no round trip each time ------------------------------------


async def test_a_refused_key_is_refused_again_without_asking_the_task_store(
    gateway: GatewayFactory,
) -> None:
    gw = await gateway()
    for _ in range(20):
        status, headers, body = await gw.call("GET", "/v1/tasks", "live_wrong_key")
        assert status == 401
        assert headers["WWW-Authenticate"] == 'Basic realm="humantask"'
        assert body == {"status_code": 401, "error": "invalid credentials"}
    assert gw.store.count(Authenticate) == 1


async def test_a_customer_key_refused_on_worker_endpoints_still_works_for_customers(
    gateway: GatewayFactory,
) -> None:
    gw = await gateway()
    for _ in range(3):
        assert (await gw.call("POST", "/v1/work/claim", GOOD_KEY))[0] == 401
    assert (await gw.call("GET", "/v1/tasks", GOOD_KEY))[0] == 200
    assert (await gw.call("POST", "/v1/work/claim", WORKER_TOKEN))[0] != 401


async def test_many_different_bad_keys_from_one_address_are_429_past_its_budget(
    gateway: GatewayFactory,
) -> None:
    gw = await gateway(auth_failures_per_second=1, rate_limit_per_second=0)
    assert (await gw.call("GET", "/v1/tasks", GOOD_KEY))[0] == 200  # verified before
    statuses = [(await gw.call("GET", "/v1/tasks", f"live_guess_{n}"))[0] for n in range(30)]
    assert statuses[:10] == [401] * 10  # bursts of 10 seconds' worth
    assert set(statuses[10:]) == {429}
    # Each unknown key is looked up once (a key that exists must be served), never twice.
    assert gw.store.count(Authenticate) == 1 + 30
    assert {(await gw.call("GET", "/v1/tasks", f"live_guess_{n}"))[0] for n in range(30)} == {401}
    assert gw.store.count(Authenticate) == 1 + 30
    status, headers, body = await gw.call("GET", "/v1/tasks", "live_guess_more")
    assert status == 429 and int(headers["Retry-After"]) >= 1
    assert "failed authentications" in body["error"]
    # A credential that worked from this address keeps working meanwhile.
    assert (await gw.call("GET", "/v1/tasks", GOOD_KEY))[0] == 200


async def test_malformed_credentials_cost_no_round_trip(gateway: GatewayFactory) -> None:
    gw = await gateway()
    for headers in ({}, {"Authorization": "Bearer x"}, {"Authorization": "Basic !!!"}):
        assert (await gw.call("GET", "/v1/tasks", headers=headers))[0] == 401
    assert gw.store.asked == []


# -- cross-site requests ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/tasks"),
        ("POST", "/v1/task/categorize"),
        ("POST", "/v1/work/claim"),
        ("GET", f"/v1/task/{TASK_ID}"),
    ],
)
async def test_cross_site_browser_requests_to_the_api_are_403(
    gateway: GatewayFactory,
    method: str,
    path: str,
) -> None:
    gw = await gateway()
    status, _, body = await gw.call(
        method,
        path,
        GOOD_KEY,
        headers={"Sec-Fetch-Site": "cross-site"},
        json=VALID_TASK if method == "POST" else None,
    )
    assert status == 403
    assert body == {
        "status_code": 403,
        "error": "cross-site requests from browsers are not allowed",
    }
    assert gw.store.asked == []


@pytest.mark.parametrize("site", ["same-origin", "same-site", "none"])
async def test_other_fetch_sites_are_served(gateway: GatewayFactory, site: str) -> None:
    gw = await gateway()
    assert (await gw.call("GET", "/v1/tasks", GOOD_KEY, headers={"Sec-Fetch-Site": site}))[0] == 200


async def test_the_workbench_page_opens_from_a_link_on_another_site(
    gateway: GatewayFactory,
) -> None:
    gw = await gateway()
    status, _, _ = await gw.call("GET", "/work", headers={"Sec-Fetch-Site": "cross-site"})
    assert status == 200


# -- a body that trickles in --------------------------------------------------------------


async def test_a_trickling_body_is_cut_off_with_408(gateway: GatewayFactory) -> None:
    gw = await gateway(request_body_timeout_seconds=0.5)
    host, port = gw.server.host, gw.server.port
    reader, writer = await asyncio.open_connection(host, port)
    auth = basic(GOOD_KEY)["Authorization"]
    writer.write(
        f"POST /v1/task/categorize HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{".encode()
    )
    await writer.drain()
    started = time.monotonic()

    async def trickle() -> None:
        for _ in range(100):  # a byte every 100 ms would take 100 s
            await asyncio.sleep(0.1)
            writer.write(b" ")
            await writer.drain()

    trickling = asyncio.create_task(trickle())
    chunks: list[bytes] = []
    try:
        async with asyncio.timeout(15):
            while chunk := await reader.read(65536):  # until the server closes
                chunks.append(chunk)
                trickling.cancel()  # answered: send no more
    except ConnectionResetError:
        # A trickled byte reached the closed connection; the answer was read before.
        pass
    finally:
        trickling.cancel()
        writer.close()
    # Far sooner than the 100 s the trickle would take (the bound leaves room for a busy box).
    assert time.monotonic() - started < 10
    answer = b"".join(chunks)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408")
    assert b'"status_code":408' in body.replace(b" ", b"") and b"in time" in body
    assert not [c for c in gw.store.asked if isinstance(c, CreateTask)]


async def test_a_body_sent_in_time_is_read(gateway: GatewayFactory) -> None:
    gw = await gateway(request_body_timeout_seconds=5)
    status, _, body = await gw.call("POST", "/v1/task/categorize", GOOD_KEY, json=VALID_TASK)
    assert status == 200 and body["status"] == "pending"


# -- limits of the contract: 400 naming the field, the task-store never asked -------------


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("offset=9223372036854775808", "offset"),
        ("offset=10001", "offset"),
        ("offset=-1", "offset"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=99999999999999999999999", "limit"),
        ("start_time=9999-12-31T23:59:59-05:00", "start_time"),
        ("end_time=9999-12-31T23:30:00-01:00", "end_time"),
        ("start_time=0001-01-01T00:00:00%2B01:00", "start_time"),
        ("end_time=1969-12-31T23:59:59Z", "end_time"),
        ("start_time=1970-01-01T00:30:00%2B01:00", "start_time"),
        ("start_time=not-a-date", "start_time"),
        ("unique_id=" + "x" * 257, "unique_id"),
    ],
)
async def test_list_queries_out_of_range_are_400_naming_the_field(
    gateway: GatewayFactory,
    query: str,
    field: str,
) -> None:
    gw = await gateway()
    status, _, body = await gw.call("GET", f"/v1/tasks?{query}", GOOD_KEY)
    assert status == 400, body
    assert body["error"].startswith(f"{field}: ")
    assert gw.store.count(ListTasks) == 0


@pytest.mark.parametrize(
    "query",
    [
        "offset=10000",
        "limit=1",
        "limit=100",
        "start_time=1970-01-01T00:00:00Z",
        "end_time=9999-12-31T23:59:59Z",
        "end_time=9999-12-31T23:59:59%2B05:00",
        "start_time=2024-01-01T00:00:00",
    ],
)
async def test_list_queries_at_the_limits_are_served(gateway: GatewayFactory, query: str) -> None:
    gw = await gateway()
    status, _, body = await gw.call("GET", f"/v1/tasks?{query}", GOOD_KEY)
    assert status == 200, body
    (command,) = [c for c in gw.store.asked if isinstance(c, ListTasks)]
    for moment in (command.query.start_time, command.query.end_time):
        assert moment is None or (
            moment.utcoffset() is not None and moment.utcoffset().total_seconds() == 0
        )


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"instruction": "x" * 10_001}, "instruction"),
        ({"instruction": ""}, "instruction"),
        ({"attachment": "x" * 10_001}, "attachment"),
        ({"attachment": ""}, "attachment"),
        (
            {"attachment_type": "image", "attachment": "http://example.com/" + "x" * 2030},
            "attachment",
        ),
        ({"categories": [f"c{n}" for n in range(101)]}, "categories"),
        ({"categories": ["a"]}, "categories"),
        ({"categories": ["a", "x" * 257]}, "categories"),
        ({"categories": ["a", "a"]}, "categories"),
        ({"categories": ["a", ""]}, "categories"),
        ({"callback_url": "http://example.com/" + "x" * 2030}, "callback_url"),
        ({"callback_url": "http://☃.example/cb"}, "callback_url"),
        ({"callback_url": "http://exa\u200bmple.com/cb"}, "callback_url"),
        ({"unique_id": "u" * 257}, "unique_id"),
        ({"metadata": {"x": "y" * 16 * 1024}}, "metadata"),
    ],
)
async def test_task_fields_past_their_limits_are_400_naming_the_field(
    gateway: GatewayFactory,
    overrides: dict[str, Any],
    field: str,
) -> None:
    gw = await gateway()
    status, _, body = await gw.call(
        "POST", "/v1/task/categorize", GOOD_KEY, json={**VALID_TASK, **overrides}
    )
    assert status == 400, body
    assert body["error"].startswith(f"{field}"), body
    assert gw.store.count(CreateTask) == 0


async def test_task_fields_at_their_limits_are_accepted(gateway: GatewayFactory) -> None:
    gw = await gateway()
    at_limits = {
        "instruction": "i" * 10_000,
        "attachment": "a" * 10_000,
        "categories": [f"{n:03d}" + "c" * 253 for n in range(100)],
        "unique_id": "u" * 256,
        "callback_url": "http://bücher.example/" + "x" * (2048 - len("http://bücher.example/")),
    }
    status, _, body = await gw.call(
        "POST", "/v1/task/categorize", GOOD_KEY, json={**VALID_TASK, **at_limits}
    )
    assert status == 200, body


# -- a failure inside a service: 503 at once ----------------------------------------------


async def test_a_service_failure_is_503_with_retry_after_and_logged(
    gateway: GatewayFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    gw = await gateway()
    gw.store.fail_with = Unavailable("task.list failed inside the service; try again later")
    with caplog.at_level("WARNING", logger="humantask_gateway.middleware"):
        status, headers, body = await gw.call(
            "GET", "/v1/tasks", GOOD_KEY, headers={"X-Request-Id": "req-503-test"}
        )
    assert status == 503 and headers["Retry-After"] == "1"
    assert body["status_code"] == 503 and headers["X-Request-Id"] == "req-503-test"
    (record,) = [r for r in caplog.records if r.getMessage() == "answering 503"]
    assert record.error == "task.list failed inside the service; try again later"  # type: ignore[attr-defined]


# -- the bounded bookkeeping --------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_buckets_refill_at_their_rate_and_hold_a_burst() -> None:
    clock = FakeClock()
    buckets = TokenBuckets[str](rate=2, burst=2, clock=clock)
    assert [buckets.take("k") for _ in range(2)] == [0, 0]
    assert buckets.take("k") == pytest.approx(0.5)
    clock.now += 0.5
    assert buckets.take("k") == 0
    clock.now += 100
    assert [buckets.take("k") for _ in range(3)][:2] == [0, 0]  # never more than the burst


def test_token_buckets_stay_bounded() -> None:
    clock = FakeClock()
    buckets = TokenBuckets[int](rate=1, burst=1, clock=clock, max_keys=10)
    for key in range(1000):
        buckets.take(key)
    assert len(buckets._buckets) <= 10


def test_refusals_expire_and_stay_bounded() -> None:
    clock = FakeClock()
    refused = ExpiringMap[str](seconds=5, clock=clock, max_keys=10)
    refused.put("k", "invalid credentials")
    assert refused.get("k") == "invalid credentials"
    clock.now += 5
    assert refused.get("k") is None
    for key in range(1000):
        refused.put(str(key))
    assert len(refused._entries) <= 10
    off = ExpiringMap[str](seconds=0, clock=clock)
    off.put("k")
    assert off.get("k") is None
