"""The Python client's pure parts (clients/python): base URL, backoff, paging, callbacks.

Its calls over HTTP are tested against the running services in tests/e2e/clients.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx
import pytest
import standardwebhooks

import scale
from scale import _core


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
    assert _core.api_root(given) == "http://localhost:8080/v1/"


def test_base_url_from_the_environment_then_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCALE_API_URL", "https://tasks.example.org/v1")
    assert _core.api_root(None) == "https://tasks.example.org/v1/"
    monkeypatch.delenv("SCALE_API_URL")
    assert _core.api_root(None) == "http://localhost:8080/v1/"
    with pytest.raises(ValueError):
        _core.api_root("localhost:8080")


def test_backoff_grows_is_capped_and_follows_retry_after() -> None:
    policy = scale.RetryPolicy(max_retries=5, backoff=1.0, max_backoff=3.0)
    assert 0.5 <= policy.delay(0, None) <= 1.0
    assert 1.0 <= policy.delay(1, None) <= 2.0
    assert policy.delay(4, None) == 3.0
    busy = httpx.Response(503, headers={"Retry-After": "2"})
    assert policy.delay(0, busy) == 2.0
    assert policy.delay(0, httpx.Response(503, headers={"Retry-After": "120"})) == 3.0


def test_next_page_keeps_only_the_links_query() -> None:
    last = httpx.Response(200)
    assert _core.next_page_params(last) is None
    more = httpx.Response(
        200,
        headers={
            "Link": '<http://gateway:8080/v1/tasks?status=pending&offset=2&limit=2>; rel="next"'
        },
    )
    assert _core.next_page_params(more) == {"status": "pending", "offset": "2", "limit": "2"}


def test_errors_by_status_carry_the_servers_message() -> None:
    error = scale.errors.error_for(409, {"status_code": 409, "error": "task is completed"}, "x")
    assert isinstance(error, scale.Conflict) and isinstance(error, scale.ScaleError)
    assert (error.status_code, error.message) == (409, "task is completed")
    other = scale.errors.error_for(502, "<html>bad gateway</html>", "Bad Gateway")
    assert type(other) is scale.APIError and other.message == "Bad Gateway"


SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the Standard Webhooks spec's example


def webhook_headers(secret: str, body: bytes, timestamp: int = 1700000000) -> dict[str, str]:
    return {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": scale.sign(secret, "msg_1", timestamp, body),
    }


def test_sign_matches_the_official_standard_webhooks_library() -> None:
    body = b'{"task_id": "abc"}'
    official = standardwebhooks.Webhook(SECRET)
    stamp = datetime.fromtimestamp(1700000000, tz=UTC)
    assert scale.sign(SECRET, "msg_1", 1700000000, body) == official.sign(
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
    assert scale.verify_callback(SECRET, headers, body)
    official.verify(body, webhook_headers(SECRET, body, now))


def test_verify_callback_refuses_other_secrets_bodies_ids_and_stale_times() -> None:
    body = b"task_id=abc"
    headers = webhook_headers(SECRET, body)
    assert scale.verify_callback(SECRET, headers, body, now=1700000100)
    assert not scale.verify_callback(SECRET, headers, body, now=1700000400)  # a replay
    assert not scale.verify_callback(SECRET, headers, body, now=1699999600)  # from the future
    assert scale.verify_callback(SECRET, headers, body, tolerance_seconds=None, now=0)
    capitalised = {name.title(): value for name, value in headers.items()}  # Webhook-Id ...
    assert scale.verify_callback(SECRET, capitalised, body, now=1700000100)
    assert not scale.verify_callback("whsec_" + "A" * 44, headers, body, now=1700000100)
    assert not scale.verify_callback(SECRET, headers, body + b"&x=1", now=1700000100)
    assert not scale.verify_callback(
        SECRET, {**headers, "webhook-id": "msg_2"}, body, now=1700000100
    )
    # Several signatures (a rotation on the sender's side): any one may match.
    several = {**headers, "webhook-signature": "v1,bm9wZQ== " + headers["webhook-signature"]}
    assert scale.verify_callback(SECRET, several, body, now=1700000100)


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
    assert scale.verify_callback(SECRET, headers, body, tolerance_seconds=None) is False
    assert scale.verify_callback(SECRET, headers, body) is False


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
    assert scale.verify_callback(SECRET, headers, body, tolerance_seconds=None) is False


def test_callback_form_decoding() -> None:
    body = b"task_id=abc&task[params][categories][0]=big&task[params][categories][1]=small"
    assert scale.parse_callback(body) == {
        "task_id": "abc",
        "task": {"params": {"categories": ["big", "small"]}},
    }
    assert scale.parse_callback(b"a[]=1&a[]=2") == {"a": ["1", "2"]}
    assert scale.parse_callback(b'{"task_id": "abc"}', "application/json; charset=utf-8") == {
        "task_id": "abc"
    }
