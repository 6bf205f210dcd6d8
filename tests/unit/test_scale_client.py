"""The Python client's pure parts (clients/python): base URL, backoff, paging, callbacks.

Its calls over HTTP are tested against the running services in tests/e2e/clients.
"""

from __future__ import annotations

import httpx
import pytest
import scale
from scale import _core


@pytest.mark.parametrize("given", [
    "http://localhost:8080", "http://localhost:8080/", "http://localhost:8080/v1",
    "http://localhost:8080/v1/",
])
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
    more = httpx.Response(200, headers={
        "Link": '<http://gateway:8080/v1/tasks?status=pending&offset=2&limit=2>; rel="next"'})
    assert _core.next_page_params(more) == {"status": "pending", "offset": "2", "limit": "2"}


def test_errors_by_status_carry_the_servers_message() -> None:
    error = scale.errors.error_for(409, {"status_code": 409, "error": "task is completed"}, "x")
    assert isinstance(error, scale.Conflict) and isinstance(error, scale.ScaleError)
    assert (error.status_code, error.message) == (409, "task is completed")
    other = scale.errors.error_for(502, "<html>bad gateway</html>", "Bad Gateway")
    assert type(other) is scale.APIError and other.message == "Bad Gateway"


def test_callback_signature_and_form_decoding() -> None:
    body = b"task_id=abc&task[params][categories][0]=big&task[params][categories][1]=small"
    headers = {"x-callback-timestamp": "1700000000",
               "X-Callback-Signature": scale.sign("whsec_s", 1700000000, body)}
    assert scale.verify_callback("whsec_s", headers, body, now=1700000100)
    assert not scale.verify_callback("whsec_s", headers, body, now=1700000400)
    assert scale.verify_callback("whsec_s", headers, body, tolerance_seconds=None, now=0)
    not_a_time = {"X-Callback-Timestamp": "x", "X-Callback-Signature": headers["X-Callback-Signature"]}
    assert not scale.verify_callback("whsec_s", not_a_time, body, tolerance_seconds=None)
    assert scale.parse_callback(body) == {
        "task_id": "abc", "task": {"params": {"categories": ["big", "small"]}}}
    assert scale.parse_callback(b"a[]=1&a[]=2") == {"a": ["1", "2"]}
    assert scale.parse_callback(b'{"task_id": "abc"}', "application/json; charset=utf-8") == {
        "task_id": "abc"}
