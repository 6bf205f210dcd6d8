"""The Python client (clients/python, `import humantask`) on its own: configuration, retries,
errors, pagination and forward compatibility against a scripted local HTTP server
(tests/support/scripted_http.py), and the callback helpers.

Its calls against the real services are in tests/e2e/clients/test_python_client.py.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
import standardwebhooks

import humantask
from humantask import _http
from tests.support.scripted_http import Reply, ScriptedServer

TASK = {
    "task_id": "5774cc78b01249ab09f089dd",
    "created_at": "2016-06-30T07:38:32.861Z",
    "callback_url": "http://www.example.com/callback",
    "type": "categorization",
    "status": "pending",
    "instruction": "Is this company public or private?",
    "params": {
        "attachment_type": "website",
        "attachment": "http://www.google.com/",
        "categories": ["public", "private"],
    },
}
CREATE = {
    "callback_url": "http://www.example.com/callback",
    "instruction": "Is this company public or private?",
    "attachment_type": "website",
    "attachment": "http://www.google.com/",
    "categories": ["public", "private"],
}
FAST = {"backoff": 0.01, "max_backoff": 0.05}


def error_body(status: int, message: str) -> dict[str, Any]:
    return {"status_code": status, "error": message}


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as running:
        yield running


@pytest.fixture
def api(server: ScriptedServer) -> Iterator[humantask.Client]:
    with humantask.authorize("live_test", base_url=server.url, max_retries=2, **FAST) as client:
        yield client


# -- configuration ------------------------------------------------------------------


@pytest.mark.parametrize(
    "given",
    [
        "http://localhost:8080",
        "http://localhost:8080/",
        "http://localhost:8080/v1",
        "http://localhost:8080/v1/",
    ],
)
def test_base_url_with_or_without_v1(given: str) -> None:
    assert _http.api_root(given) == "http://localhost:8080/v1/"


def test_base_url_from_humantask_url_then_the_deprecated_scale_api_url_then_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HUMANTASK_URL", raising=False)
    monkeypatch.delenv("SCALE_API_URL", raising=False)
    assert _http.api_root(None) == "http://localhost:8080/v1/"
    monkeypatch.setenv("SCALE_API_URL", "https://old.example.org")
    with pytest.warns(DeprecationWarning, match="HUMANTASK_URL"):
        assert _http.api_root(None) == "https://old.example.org/v1/"
    monkeypatch.setenv("HUMANTASK_URL", "https://tasks.example.org/v1")
    assert _http.api_root(None) == "https://tasks.example.org/v1/"
    assert _http.api_root("http://given:8080") == "http://given:8080/v1/"
    with pytest.raises(ValueError):
        _http.api_root("localhost:8080")


def test_api_key_from_humantask_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUMANTASK_API_KEY", raising=False)
    with pytest.raises(ValueError, match="HUMANTASK_API_KEY"):
        humantask.authorize(base_url="http://localhost:8080")
    monkeypatch.setenv("HUMANTASK_API_KEY", "live_from_env")
    with humantask.authorize(base_url="http://localhost:8080") as api:
        request = api._http.build_request("GET", "tasks")
        assert api._http.auth is not None
        flow = api._http.auth.sync_auth_flow(request)
        assert (
            next(flow).headers["Authorization"] == httpx.BasicAuth("live_from_env", "")._auth_header
        )


# -- Retry-After and the backoff ------------------------------------------------------


NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("2", 2.0),
        ("0.5", 0.5),
        ("0", 0.0),
        ("-3", 0.0),
        (format_datetime(NOW + timedelta(seconds=7), usegmt=True), 7.0),
        ("Fri, 02 Jan 2026 03:04:35 GMT", 30.0),
        (format_datetime(NOW - timedelta(minutes=1), usegmt=True), 0.0),
        ("", None),
        (None, None),
        ("soon", None),
        ("nan", None),
        ("inf", None),
    ],
)
def test_retry_after_is_seconds_or_an_http_date(header: str | None, seconds: float | None) -> None:
    assert _http.retry_after_seconds(header, now=NOW) == seconds


def test_full_jitter_stays_between_zero_and_the_capped_exponential() -> None:
    policy = humantask.RetryPolicy(max_retries=10, backoff=1.0, max_backoff=6.0)
    rng_state = random.getstate()
    try:
        random.seed(1234)
        for retry, bound in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 6.0), (9, 6.0), (5000, 6.0)]:
            waits = [policy.delay(retry, None) for _ in range(300)]
            assert all(0.0 <= wait <= bound for wait in waits), (retry, max(waits))
            # Full jitter: spread over the whole range, not bunched near its top.
            assert min(waits) < 0.1 * bound and max(waits) > 0.9 * bound, retry
    finally:
        random.setstate(rng_state)


def test_retry_after_is_honoured_and_capped() -> None:
    policy = humantask.RetryPolicy(max_retries=5, backoff=1.0, max_backoff=3.0)
    assert policy.delay(0, httpx.Response(503, headers={"Retry-After": "2"})) == 2.0
    assert policy.delay(4, httpx.Response(429, headers={"Retry-After": "1.5"})) == 1.5
    assert policy.delay(0, httpx.Response(429, headers={"Retry-After": "120"})) == 3.0
    later = format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    assert policy.delay(0, httpx.Response(429, headers={"Retry-After": later})) == 3.0


def test_which_calls_and_answers_are_retried() -> None:
    policy = humantask.RetryPolicy(max_retries=2)
    get = humantask._tasks.get("abc")
    create = humantask._tasks.create(**CREATE, extra={})
    with_unique_id = humantask._tasks.create(**CREATE, unique_id="order-1", extra={})
    for status in (429, 502, 503, 504):
        assert policy.retry_delay(get, 0, httpx.Response(status)) is not None, status
        assert policy.retry_delay(with_unique_id, 1, httpx.Response(status)) is not None
        assert policy.retry_delay(create, 0, httpx.Response(status)) is None, status
        assert policy.retry_delay(get, 2, httpx.Response(status)) is None, "out of retries"
    for status in (200, 400, 401, 404, 409, 500, 501):
        assert policy.retry_delay(get, 0, httpx.Response(status)) is None, status
    assert policy.retry_delay(get, 0, None) is not None  # no answer at all
    assert policy.retry_delay(create, 0, None) is None
    assert humantask._tasks.cancel("abc").retryable


# -- retries against a server ------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_a_get_is_retried_on_429_502_503_504(
    server: ScriptedServer, api: humantask.Client, status: int
) -> None:
    server.script(Reply(status, error_body(status, "not now")), Reply(200, TASK))
    assert api.tasks.get(TASK["task_id"]).task_id == TASK["task_id"]
    assert len(server.requests) == 2


def test_retry_after_in_seconds_is_waited_for(server: ScriptedServer) -> None:
    server.script(
        Reply(429, error_body(429, "slow down"), {"Retry-After": "0.3"}), Reply(200, TASK)
    )
    with humantask.authorize("live_test", base_url=server.url, max_backoff=5) as api:
        api.tasks.get(TASK["task_id"])
    first, second = server.requests
    assert second.at - first.at >= 0.3


def test_retry_after_as_an_http_date_is_waited_for(server: ScriptedServer) -> None:
    # HTTP dates have whole seconds: two seconds ahead is at least one second's wait.
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=2), usegmt=True)
    server.script(Reply(503, error_body(503, "busy"), {"Retry-After": when}), Reply(200, TASK))
    with humantask.authorize("live_test", base_url=server.url, max_backoff=5) as api:
        api.tasks.get(TASK["task_id"])
    first, second = server.requests
    assert 0.9 <= second.at - first.at <= 4


def test_retry_after_beyond_max_backoff_is_capped(server: ScriptedServer) -> None:
    server.script(Reply(503, error_body(503, "busy"), {"Retry-After": "3600"}), Reply(200, TASK))
    with humantask.authorize("live_test", base_url=server.url, max_backoff=0.2) as api:
        started = time.monotonic()
        api.tasks.get(TASK["task_id"])
    assert time.monotonic() - started < 3
    assert len(server.requests) == 2


def test_retries_give_up_with_the_last_answer(
    server: ScriptedServer, api: humantask.Client
) -> None:
    server.script(Reply(503, error_body(503, "task-store did not answer in time")))
    with pytest.raises(humantask.ServiceUnavailable) as caught:
        api.tasks.get(TASK["task_id"])
    assert len(server.requests) == 3  # the first and max_retries=2 more
    assert isinstance(caught.value, humantask.ServerError)
    assert caught.value.message == "task-store did not answer in time"


def test_a_create_without_unique_id_is_never_retried(
    server: ScriptedServer, api: humantask.Client
) -> None:
    for reply in (
        Reply(503, error_body(503, "busy")),
        Reply(429, error_body(429, "slow down"), {"Retry-After": "0"}),
        Reply(502),
        Reply(hang_up=True),
    ):
        server.script(reply, Reply(200, TASK))
        with pytest.raises(humantask.HumantaskError):
            api.tasks.create_categorization(**CREATE)
        assert len(server.requests) == 1, reply


def test_a_create_with_unique_id_is_retried_with_the_same_body(
    server: ScriptedServer, api: humantask.Client
) -> None:
    server.script(Reply(503, error_body(503, "busy")), Reply(hang_up=True), Reply(200, TASK))
    task = api.tasks.create_categorization(**CREATE, unique_id="order-1")
    assert task.task_id == TASK["task_id"]
    assert len(server.requests) == 3
    assert len({request.body for request in server.requests}) == 1
    assert b'"unique_id":"order-1"' in server.requests[0].body.replace(b" ", b"")


def test_a_500_is_not_retried(server: ScriptedServer, api: humantask.Client) -> None:
    server.script(Reply(500, error_body(500, "internal error")), Reply(200, TASK))
    with pytest.raises(humantask.ServerError) as caught:
        api.tasks.get(TASK["task_id"])
    assert type(caught.value) is humantask.ServerError and caught.value.status_code == 500
    assert len(server.requests) == 1


def test_a_broken_connection_is_retried(server: ScriptedServer, api: humantask.Client) -> None:
    server.script(Reply(hang_up=True), Reply(200, TASK))
    assert api.tasks.cancel(TASK["task_id"]).task_id == TASK["task_id"]
    assert len(server.requests) == 2


def test_a_timeout_is_retried_then_raised(server: ScriptedServer) -> None:
    server.script(Reply(200, TASK, delay=1.0))
    with (
        humantask.authorize(
            "live_test", base_url=server.url, timeout=0.2, max_retries=1, **FAST
        ) as api,
        pytest.raises(humantask.APITimeoutError) as caught,
    ):
        api.tasks.get(TASK["task_id"])
    assert isinstance(caught.value, humantask.APIConnectionError)
    assert caught.value.status_code is None
    assert len(server.requests) == 2


def test_a_timeout_then_an_answer(server: ScriptedServer) -> None:
    server.script(Reply(200, TASK, delay=1.0), Reply(200, TASK))
    with humantask.authorize("live_test", base_url=server.url, timeout=0.2, **FAST) as api:
        assert api.tasks.get(TASK["task_id"]).task_id == TASK["task_id"]


def test_no_server_is_a_connection_error_after_the_retries() -> None:
    with ScriptedServer() as gone:
        url = gone.url
    with (
        humantask.authorize("live_test", base_url=url, max_retries=1, **FAST) as api,
        pytest.raises(humantask.APIConnectionError) as caught,
    ):
        api.tasks.get(TASK["task_id"])
    assert caught.value.status_code is None and caught.value.request_id is None


def test_max_retries_zero_sends_once(server: ScriptedServer) -> None:
    server.script(Reply(503, error_body(503, "busy")))
    with (
        humantask.authorize("live_test", base_url=server.url, max_retries=0) as api,
        pytest.raises(humantask.ServiceUnavailable),
    ):
        api.tasks.get(TASK["task_id"])
    assert len(server.requests) == 1


def test_request_retries_what_is_idempotent(server: ScriptedServer, api: humantask.Client) -> None:
    server.script(Reply(503, error_body(503, "busy")), Reply(200, {"ok": True}))
    with pytest.raises(humantask.ServiceUnavailable):
        api.request("POST", "task/categorize", json=CREATE)
    assert len(server.requests) == 1
    server.script(Reply(503, error_body(503, "busy")), Reply(200, {"ok": True}))
    assert api.request("POST", "task/x/cancel", idempotent=True) == {"ok": True}
    server.script(Reply(503, error_body(503, "busy")), Reply(200, [TASK]))
    assert api.request("GET", "tasks") == [TASK]


# -- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, humantask.BadRequest),
        (401, humantask.Unauthorized),
        (403, humantask.APIError),
        (404, humantask.NotFound),
        (405, humantask.MethodNotAllowed),
        (409, humantask.Conflict),
        (413, humantask.PayloadTooLarge),
        (415, humantask.UnsupportedMediaType),
        (429, humantask.RateLimited),
        (500, humantask.ServerError),
        (502, humantask.ServerError),
        (503, humantask.ServiceUnavailable),
        (504, humantask.ServerError),
    ],
)
def test_an_error_class_per_kind_with_status_message_and_request_id(
    server: ScriptedServer, status: int, error_class: type[humantask.APIError]
) -> None:
    server.script(
        Reply(
            status, error_body(status, f"the {status} message"), {"X-Request-Id": f"req-{status}"}
        )
    )
    with (
        humantask.authorize("live_test", base_url=server.url, max_retries=0) as api,
        pytest.raises(error_class) as caught,
    ):
        api.tasks.get(TASK["task_id"])
    error = caught.value
    assert type(error) is error_class and isinstance(error, humantask.HumantaskError)
    assert (error.status_code, error.message, error.request_id) == (
        status,
        f"the {status} message",
        f"req-{status}",
    )
    assert error.body == error_body(status, f"the {status} message")
    assert f"req-{status}" in str(error) and str(status) in str(error)


def test_rate_limited_carries_retry_after(server: ScriptedServer) -> None:
    server.script(
        Reply(429, error_body(429, "slow down"), {"Retry-After": "3", "X-Request-Id": "r1"})
    )
    with (
        humantask.authorize("live_test", base_url=server.url, max_retries=0) as api,
        pytest.raises(humantask.RateLimited) as caught,
    ):
        api.tasks.create_categorization(**CREATE)
    assert (caught.value.retry_after, caught.value.request_id) == (3.0, "r1")


def test_an_error_without_a_json_body_keeps_the_reason(server: ScriptedServer) -> None:
    server.script(Reply(502, None))
    with (
        humantask.authorize("live_test", base_url=server.url, max_retries=0) as api,
        pytest.raises(humantask.ServerError) as caught,
    ):
        api.tasks.get(TASK["task_id"])
    assert caught.value.message == "Bad Gateway" and caught.value.request_id is None


# -- forward compatibility --------------------------------------------------------------


def test_unknown_statuses_types_and_fields_are_kept(
    server: ScriptedServer, api: humantask.Client
) -> None:
    newer = {
        **TASK,
        "status": "in_review",
        "type": "transcription",
        "priority": 7,
        "params": {**TASK["params"], "language": "fr"},
        "response": {
            "category": "public",
            "status_code": 200,
            "confidence": 0.93,
            "votes": {"public": 3},
            "reviewer": "x",
        },
    }
    server.script(Reply(200, newer))
    task = api.tasks.get(TASK["task_id"])
    assert (task.status, task.type) == ("in_review", "transcription")
    assert task.status not in humantask.TASK_STATUSES
    assert task.model_extra == {"priority": 7}
    assert task.params.model_extra == {"language": "fr"}
    assert task.response is not None
    assert (task.response.confidence, task.response.votes) == (0.93, {"public": 3})


def test_a_gold_task_without_callback_url_reads(
    server: ScriptedServer, api: humantask.Client
) -> None:
    gold = {key: value for key, value in TASK.items() if key != "callback_url"}
    server.script(Reply(200, {**gold, "gold_category": "public"}))
    task = api.tasks.get(TASK["task_id"])
    assert task.callback_url is None and task.gold_category == "public"


def test_create_sends_parameters_this_client_has_no_name_for(
    server: ScriptedServer, api: humantask.Client
) -> None:
    server.script(Reply(200, TASK))
    api.tasks.create_categorization(**CREATE, min_workers=3)
    assert b'"min_workers":3' in server.requests[0].body.replace(b" ", b"")


# -- pagination -------------------------------------------------------------------------


def tasks(*ids: str) -> list[dict[str, Any]]:
    return [{**TASK, "task_id": task_id} for task_id in ids]


def next_link(server: ScriptedServer, token: str) -> dict[str, str]:
    # The host the server names is not asked: only the link's query is taken.
    url = f"http://gateway.internal/v1/tasks?limit=2&status=pending&next_token={token}"
    return {"Link": f'<{url}>; rel="next"'}


def test_list_is_lazy_page_by_page(server: ScriptedServer, api: humantask.Client) -> None:
    server.script(
        Reply(200, tasks("a", "b"), next_link(server, "t1")),
        Reply(200, tasks("c", "d"), next_link(server, "t2")),
        Reply(200, tasks("e")),
    )
    listed = api.tasks.list(status="pending", limit=2)
    assert server.requests == []  # nothing asked before the first task is
    assert next(listed).task_id == "a"
    assert len(server.requests) == 1
    assert next(listed).task_id == "b"
    assert len(server.requests) == 1  # page 2 not asked for yet
    assert next(listed).task_id == "c"
    assert len(server.requests) == 2
    assert server.requests[1].query == {"limit": "2", "status": "pending", "next_token": "t1"}
    assert [task.task_id for task in listed] == ["d", "e"]
    assert len(server.requests) == 3
    assert server.requests[0].query == {"limit": "2", "status": "pending"}


def test_list_page_gives_one_page_and_the_way_on(
    server: ScriptedServer, api: humantask.Client
) -> None:
    server.script(Reply(200, tasks("a", "b"), next_link(server, "t1")), Reply(200, tasks("c")))
    page = api.tasks.list_page(status="pending", limit=2)
    assert [task.task_id for task in page.items] == ["a", "b"] and len(page) == 2
    assert page.has_next and page.next_token == "t1"
    assert len(server.requests) == 1
    last = page.next_page()
    assert last is not None and [task.task_id for task in last] == ["c"]
    assert not last.has_next and last.next_token is None and last.next_page() is None
    server.script(Reply(200, tasks("c")))
    api.tasks.list_page(status="pending", limit=2, next_token="t1")
    assert server.requests[0].query == {"status": "pending", "limit": "2", "next_token": "t1"}


def test_a_page_is_retried_like_any_get(server: ScriptedServer, api: humantask.Client) -> None:
    server.script(
        Reply(200, tasks("a"), next_link(server, "t1")),
        Reply(503, error_body(503, "busy")),
        Reply(200, tasks("b")),
    )
    assert [task.task_id for task in api.tasks.list()] == ["a", "b"]
    assert len(server.requests) == 3


# -- the asyncio client -------------------------------------------------------------------


async def test_async_client_retries_and_raises_like_the_blocking_one(
    server: ScriptedServer,
) -> None:
    async with humantask.authorize_async("live_test", base_url=server.url, **FAST) as api:
        server.script(
            Reply(429, error_body(429, "slow down"), {"Retry-After": "0"}), Reply(200, TASK)
        )
        assert (await api.tasks.get(TASK["task_id"])).task_id == TASK["task_id"]
        assert len(server.requests) == 2

        server.script(Reply(503, error_body(503, "busy"), {"X-Request-Id": "r9"}), Reply(200, TASK))
        with pytest.raises(humantask.ServiceUnavailable) as caught:
            await api.tasks.create_categorization(**CREATE)
        assert caught.value.request_id == "r9" and len(server.requests) == 1

        server.script(Reply(hang_up=True), Reply(200, TASK))
        await api.tasks.create_categorization(**CREATE, unique_id="order-2")
        assert len(server.requests) == 2


async def test_async_timeout(server: ScriptedServer) -> None:
    server.script(Reply(200, TASK, delay=1.0))
    async with humantask.authorize_async(
        "live_test", base_url=server.url, timeout=0.2, max_retries=1, **FAST
    ) as api:
        with pytest.raises(humantask.APITimeoutError):
            await api.tasks.get(TASK["task_id"])
    assert len(server.requests) == 2


async def test_async_list_is_lazy(server: ScriptedServer) -> None:
    server.script(Reply(200, tasks("a"), next_link(server, "t1")), Reply(200, tasks("b")))
    async with humantask.authorize_async("live_test", base_url=server.url) as api:
        listed = api.tasks.list(limit=1)
        assert server.requests == []
        assert (await anext(listed)).task_id == "a"
        assert len(server.requests) == 1
        assert [task.task_id async for task in listed] == ["b"]
        assert len(server.requests) == 2
        page = await api.tasks.list_page(limit=1)
        assert page.next_token == "t1" or page.next_token is None


SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the Standard Webhooks spec's example


def webhook_headers(secret: str, body: bytes, timestamp: int = 1700000000) -> dict[str, str]:
    return {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": humantask.sign(secret, "msg_1", timestamp, body),
    }


def test_sign_matches_the_official_standard_webhooks_library() -> None:
    body = b'{"task_id": "abc"}'
    official = standardwebhooks.Webhook(SECRET)
    stamp = datetime.fromtimestamp(1700000000, tz=UTC)
    assert humantask.sign(SECRET, "msg_1", 1700000000, body) == official.sign(
        "msg_1", stamp, body.decode()
    )
    # and what the library signs, verify_callback accepts
    now = int(time.time())
    headers = {
        "webhook-id": "msg_2",
        "webhook-timestamp": str(now),
        "webhook-signature": official.sign(
            "msg_2", datetime.fromtimestamp(now, tz=UTC), body.decode()
        ),
    }
    assert humantask.verify_callback(SECRET, headers, body)
    official.verify(body, webhook_headers(SECRET, body, now))


def test_verify_callback_refuses_other_secrets_bodies_ids_and_stale_times() -> None:
    body = b"task_id=abc"
    headers = webhook_headers(SECRET, body)
    assert humantask.verify_callback(SECRET, headers, body, now=1700000100)
    assert not humantask.verify_callback(SECRET, headers, body, now=1700000400)  # a replay
    assert not humantask.verify_callback(SECRET, headers, body, now=1699999600)  # from the future
    assert humantask.verify_callback(SECRET, headers, body, tolerance_seconds=None, now=0)
    capitalised = {name.title(): value for name, value in headers.items()}  # Webhook-Id ...
    assert humantask.verify_callback(SECRET, capitalised, body, now=1700000100)
    assert not humantask.verify_callback("whsec_" + "A" * 44, headers, body, now=1700000100)
    assert not humantask.verify_callback(SECRET, headers, body + b"&x=1", now=1700000100)
    assert not humantask.verify_callback(
        SECRET, {**headers, "webhook-id": "msg_2"}, body, now=1700000100
    )
    # Several signatures (a rotation on the sender's side): any one may match.
    several = {**headers, "webhook-signature": "v1,bm9wZQ== " + headers["webhook-signature"]}
    assert humantask.verify_callback(SECRET, several, body, now=1700000100)


@pytest.mark.parametrize(
    "timestamp",
    [
        "x",
        "",
        " 1700000000",
        "1700000000.5",
        "-1700000000",
        "1" * 40,
        "\u0661\u0667\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660",  # Arabic-Indic digits
        "\uff11\uff17\uff10\uff10\uff10\uff10\uff10\uff10\uff10\uff10",  # fullwidth digits
        "\u00b9\u2077",  # superscripts: str.isdigit() says yes
    ],
)
def test_verify_callback_says_no_to_a_malformed_timestamp_without_raising(timestamp: str) -> None:
    body = b"task_id=abc"
    headers = {**webhook_headers(SECRET, body), "webhook-timestamp": timestamp}
    assert humantask.verify_callback(SECRET, headers, body, tolerance_seconds=None) is False
    assert humantask.verify_callback(SECRET, headers, body) is False


@pytest.mark.parametrize(
    "broken",
    [
        {"webhook-id": ""},
        {"webhook-signature": ""},
        {"webhook-signature": "v1,\u00e9\ud800"},
        {"webhook-id": "\ud800"},
    ],
)
def test_verify_callback_says_no_to_other_malformed_headers_without_raising(broken: dict) -> None:
    body = b"task_id=abc"
    headers = {**webhook_headers(SECRET, body), **broken}
    assert humantask.verify_callback(SECRET, headers, body, tolerance_seconds=None) is False


def test_callback_form_decoding() -> None:
    body = b"task_id=abc&task[params][categories][0]=big&task[params][categories][1]=small"
    assert humantask.parse_callback(body) == {
        "task_id": "abc",
        "task": {"params": {"categories": ["big", "small"]}},
    }
    assert humantask.parse_callback(b"a[]=1&a[]=2") == {"a": ["1", "2"]}
    assert humantask.parse_callback(b'{"task_id": "abc"}', "application/json; charset=utf-8") == {
        "task_id": "abc"
    }


# -- Scale's calls: projects, batches, audits, tags (/scale/v1) ---------------------------


PROJECT = {
    "type": "categorization",
    "name": "kittens",
    "param_history": [
        {"version": 0, "created_at": "2016-06-30T07:38:32.861Z", "instruction": "one"},
        {"version": 1, "created_at": "2016-06-30T07:39:32.861Z", "instruction": "two"},
    ],
    "created_at": "2016-06-30T07:38:32.861Z",
}
BATCH = {
    "name": "b 1",
    "project": "kittens",
    "status": "staging",
    "callback": "",
    "metadata": {},
    "created_at": "2016-06-30T07:38:32.861Z",
}


def test_projects_and_batches_are_asked_of_scale_v1(
    server: ScriptedServer, api: humantask.Client
) -> None:
    asked: list[tuple[str, str]] = []

    def take() -> None:
        asked.extend((r.method, r.path) for r in server.requests)

    server.script(Reply(200, PROJECT))
    project = api.projects.create("kittens", {"instruction": "one"})
    assert (project.version, project.params) == (1, {"instruction": "two"})
    api.projects.set_params("kittens", patch=True, instruction="two")
    assert server.requests[1].body == b'{"instruction":"two","patch":true}'
    take()
    server.script(Reply(200, [PROJECT]))
    assert [p.name for p in api.projects.list()] == ["kittens"]
    take()
    server.script(Reply(200, BATCH))
    batch = api.batches.create("kittens", "b 1", callback="https://example.com/b")
    assert batch.status == "staging"
    api.batches.finalize("b 1")
    take()
    server.script(
        Reply(200, {"status": "in_progress", "pending": 2, "completed": 1, "canceled": 0})
    )
    assert api.batches.status("b 1").pending == 2
    take()
    server.script(
        Reply(200, {"docs": [BATCH], "totalDocs": 2, "limit": 1, "offset": 0, "has_more": True}),
        Reply(200, {"docs": [BATCH], "totalDocs": 2, "limit": 1, "offset": 1, "has_more": False}),
    )
    assert len(list(api.batches.list(project="kittens"))) == 2
    assert [r.query.get("offset") for r in server.requests] == ["0", "1"]
    take()
    assert asked == [
        ("POST", "/scale/v1/projects"),
        ("POST", "/scale/v1/projects/kittens/setParams"),
        ("GET", "/scale/v1/projects"),
        ("POST", "/scale/v1/batches"),
        ("POST", "/scale/v1/batches/b%201/finalize"),
        ("GET", "/scale/v1/batches/b%201/status"),
        ("GET", "/scale/v1/batches"),
        ("GET", "/scale/v1/batches"),
    ]


def test_a_placed_task_and_the_task_edits_are_asked_of_scale_v1(
    server: ScriptedServer, api: humantask.Client
) -> None:
    scale_task = {**TASK, "project": "kittens", "tags": ["cute"], "updated_at": TASK["created_at"]}
    server.script(Reply(200, scale_task))
    task = api.tasks.create_categorization(project="kittens", attachment="a cat", tags=["cute"])
    assert (task.project, task.tags) == ("kittens", ["cute"])
    api.tasks.create_categorization(**CREATE)
    api.tasks.audit(task.task_id, accepted=False, comments="no")
    api.tasks.add_tags(task.task_id, ["x"])
    api.tasks.delete_tags(task.task_id, ["x"])
    api.tasks.set_metadata(task.task_id, {"k": 1})
    api.tasks.set_unique_id(task.task_id, None)
    api.tasks.cancel(task.task_id, clear_unique_id=True)
    asked = [(r.method, r.path, r.query) for r in server.requests]
    base = f"/scale/v1/task/{task.task_id}"
    assert asked == [
        ("POST", "/scale/v1/task/categorization", {}),
        ("POST", "/v1/task/categorize", {}),
        ("POST", f"{base}/audit", {}),
        ("PUT", f"{base}/tags", {}),
        ("DELETE", f"{base}/tags", {}),
        ("POST", f"{base}/setMetadata", {}),
        ("DELETE", f"{base}/unique_id", {}),
        ("POST", f"{base}/cancel", {"clear_unique_id": "true"}),
    ]
    assert server.requests[2].body == b'{"accepted":false,"comments":"no"}'


def test_an_audit_is_not_retried_but_a_tag_change_is(
    server: ScriptedServer, api: humantask.Client
) -> None:
    server.script(Reply(503, error_body(503, "busy")))
    with pytest.raises(humantask.ServiceUnavailable):
        api.tasks.audit(TASK["task_id"], accepted=True)
    assert len(server.requests) == 1
    server.script(Reply(503, error_body(503, "busy")), Reply(200, TASK))
    api.tasks.set_tags(TASK["task_id"], ["a"])
    assert len(server.requests) == 2  # the 503, then the retry
