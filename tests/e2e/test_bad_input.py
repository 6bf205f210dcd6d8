"""Bad input gets a clear JSON error naming the problem: never a 500, never a hang."""

from __future__ import annotations

import io
import time
from typing import Any

import pytest

from .conftest import SEED_TASK_JSON, Api

pytestmark = pytest.mark.e2e

VALID_ID = "0123456789abcdef01234567"


def without(field: str) -> dict[str, Any]:
    return {k: v for k, v in SEED_TASK_JSON.items() if k != field}


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


JSON = {"Content-Type": "application/json"}

# (what is wrong, request body kwargs, expected status, words the error must contain)
CREATE_CASES = [
    ("malformed JSON", {"data": b'{"callback_url": ', "headers": JSON}, 400, ["malformed JSON"]),
    ("JSON that is not an object", {"json": ["a", "b"]}, 400, ["JSON object"]),
    ("invalid UTF-8", {"data": b'{"instruction": "\xff\xfe"}', "headers": JSON}, 400, ["body"]),
    ("deeply nested JSON", {"data": nested(5000).encode(), "headers": JSON}, 400, ["body"]),
    (
        "deeply nested metadata",
        {"data": b'{"metadata": {"a": ' + nested(2000).encode() + b"}}", "headers": JSON},
        400,
        [],
    ),
    (
        "wrong type: instruction",
        {"json": {**SEED_TASK_JSON, "instruction": 42}},
        400,
        ["instruction"],
    ),
    (
        "wrong type: categories",
        {"json": {**SEED_TASK_JSON, "categories": "big"}},
        400,
        ["categories"],
    ),
    (
        "wrong type: category item",
        {"json": {**SEED_TASK_JSON, "categories": ["big", 2]}},
        400,
        ["categories"],
    ),
    ("wrong type: metadata", {"json": {**SEED_TASK_JSON, "metadata": [1]}}, 400, ["metadata"]),
    ("missing callback_url", {"json": without("callback_url")}, 400, ["callback_url"]),
    ("missing instruction", {"json": without("instruction")}, 400, ["instruction"]),
    ("missing attachment_type", {"json": without("attachment_type")}, 400, ["attachment_type"]),
    ("missing attachment", {"json": without("attachment")}, 400, ["attachment"]),
    ("missing categories", {"json": without("categories")}, 400, ["categories"]),
    ("empty body", {"data": b"", "headers": JSON}, 400, ["callback_url"]),
    ("empty instruction", {"json": {**SEED_TASK_JSON, "instruction": "  "}}, 400, ["instruction"]),
    (
        "unknown attachment_type",
        {"json": {**SEED_TASK_JSON, "attachment_type": "pdf"}},
        400,
        ["attachment_type"],
    ),
    ("one category", {"json": {**SEED_TASK_JSON, "categories": ["big"]}}, 400, ["categories"]),
    ("no categories", {"json": {**SEED_TASK_JSON, "categories": []}}, 400, ["categories"]),
    (
        "duplicate categories",
        {"json": {**SEED_TASK_JSON, "categories": ["big", "big"]}},
        400,
        ["categories"],
    ),
    (
        "empty category",
        {"json": {**SEED_TASK_JSON, "categories": ["big", ""]}},
        400,
        ["categories"],
    ),
    (
        "non-URL image attachment",
        {"json": {**SEED_TASK_JSON, "attachment_type": "image", "attachment": "car"}},
        400,
        ["attachment"],
    ),
    (
        "relative callback_url",
        {"json": {**SEED_TASK_JSON, "callback_url": "/callback"}},
        400,
        ["callback_url"],
    ),
    (
        "ftp callback_url",
        {"json": {**SEED_TASK_JSON, "callback_url": "ftp://example.com/x"}},
        400,
        ["callback_url"],
    ),
    (
        "callback_url without host",
        {"json": {**SEED_TASK_JSON, "callback_url": "http://"}},
        400,
        ["callback_url"],
    ),
    (
        "unknown callback_format",
        {"json": {**SEED_TASK_JSON, "callback_format": "xml"}},
        400,
        ["callback_format"],
    ),
    (
        "metadata over 16 KiB",
        {"json": {**SEED_TASK_JSON, "metadata": {"x": "y" * 17000}}},
        400,
        ["metadata"],
    ),
    (
        "metadata in a form",
        {"data": {**SEED_TASK_JSON, "categories[]": "a", "metadata": "{}"}},
        400,
        ["metadata"],
    ),
    (
        "invalid UTF-8 in a form",
        {
            "data": b"instruction=%ff%fe",
            "headers": {"Content-Type": "application/x-www-form-urlencoded"},
        },
        400,
        ["UTF-8"],
    ),
    (
        "2 MiB body",
        {"data": io.BytesIO(b"x" * (2 * 1024 * 1024)), "headers": JSON},
        413,
        ["too large"],
    ),
    (
        "wrong content type",
        {"data": b"hello", "headers": {"Content-Type": "text/plain"}},
        415,
        ["Content-Type"],
    ),
    # The limits of API.md section 5.
    (
        "instruction over 10,000 characters",
        {"json": {**SEED_TASK_JSON, "instruction": "i" * 10_001}},
        400,
        ["instruction"],
    ),
    (
        "text attachment over 10,000 characters",
        {"json": {**SEED_TASK_JSON, "attachment": "a" * 10_001}},
        400,
        ["attachment"],
    ),
    (
        "URL attachment over 2,048 characters",
        {
            "json": {
                **SEED_TASK_JSON,
                "attachment_type": "image",
                "attachment": "http://example.com/" + "x" * 2030,
            }
        },
        400,
        ["attachment"],
    ),
    (
        "101 categories",
        {"json": {**SEED_TASK_JSON, "categories": [f"c{n}" for n in range(101)]}},
        400,
        ["categories"],
    ),
    (
        "category over 256 characters",
        {"json": {**SEED_TASK_JSON, "categories": ["a", "b" * 257]}},
        400,
        ["categories"],
    ),
    (
        "callback_url over 2,048 characters",
        {"json": {**SEED_TASK_JSON, "callback_url": "http://example.com/" + "x" * 2030}},
        400,
        ["callback_url"],
    ),
    (
        "callback_url host not IDNA",
        {"json": {**SEED_TASK_JSON, "callback_url": "http://☃.example/cb"}},
        400,
        ["callback_url"],
    ),
    (
        "unique_id over 256 characters",
        {"json": {**SEED_TASK_JSON, "unique_id": "u" * 257}},
        400,
        ["unique_id"],
    ),
    (
        "XML body",
        {"data": b"<task/>", "headers": {"Content-Type": "application/xml"}},
        415,
        ["Content-Type"],
    ),
]


@pytest.mark.parametrize(
    ("case", "kwargs", "status", "words"), CREATE_CASES, ids=[c[0] for c in CREATE_CASES]
)
async def test_bad_create_requests(
    api: Api, other_customer: dict, case: str, kwargs: dict, status: int, words: list[str]
) -> None:
    reply = await api.post("/v1/task/categorize", other_customer["api_key"], **kwargs)
    assert reply.status == status, reply
    assert reply.body["status_code"] == status
    for word in words:
        assert word in reply.body["error"], reply.body


QUERY_CASES = [
    ("limit=0", "limit"),
    ("limit=101", "limit"),
    ("limit=ten", "limit"),
    ("limit=1.5", "limit"),
    ("offset=-1", "offset"),
    ("offset=x", "offset"),
    ("start_time=yesterday", "start_time"),
    ("end_time=2016-13-45", "end_time"),
    ("status=done", "status"),
    ("type=transcription", "type"),
    # Values that overflowed inside the task-store (no reply, a 503 after 10 s).
    ("offset=9223372036854775808", "offset"),
    ("offset=10001", "offset"),
    ("limit=99999999999999999999", "limit"),
    ("start_time=9999-12-31T23:59:59-05:00", "start_time"),
    ("end_time=9999-12-31T23:30:00-01:00", "end_time"),
    ("start_time=0001-01-01T00:00:00%2B01:00", "start_time"),
    ("end_time=1969-12-31T23:59:59Z", "end_time"),
    ("unique_id=" + "u" * 257, "unique_id"),
    # Cursors: only what the Link header gave out, and not together with an offset.
    ("next_token=garbage", "next_token"),
    ("next_token=WzEsMiwzXQ", "next_token"),
    ("next_token=" + "A" * 5000, "next_token"),
    (
        "offset=5&next_token=WzE3MDQwNzA5MjM0NTYsIjAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMCIsNjAuMF0",
        "offset",
    ),
]


@pytest.mark.parametrize(("query", "field"), QUERY_CASES)
async def test_bad_list_queries(api: Api, other_customer: dict, query: str, field: str) -> None:
    started = time.monotonic()
    reply = await api.get(f"/v1/tasks?{query}", other_customer["api_key"])
    assert time.monotonic() - started < 5, "answered at once, not after the RPC timeout"
    assert reply.status == 400, reply
    assert reply.body["error"].startswith(field), reply.body


@pytest.mark.parametrize(
    "task_id", ["zzz", "0123456789ABCDEF01234567", "0123456789abcdef0123456", VALID_ID]
)
async def test_invalid_or_unknown_ids_are_404(api: Api, other_customer: dict, task_id: str) -> None:
    for method, path in [("GET", f"/v1/task/{task_id}"), ("POST", f"/v1/task/{task_id}/cancel")]:
        reply = await api.request(method, path, other_customer["api_key"])
        assert reply.status == 404, (method, path, reply)
        assert reply.body["status_code"] == 404


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/", 404),
        ("GET", "/v2/tasks", 404),
        ("POST", "/v1/task", 404),
        ("GET", "/v1/taskz", 404),
        ("DELETE", "/v1/tasks", 405),
        ("PUT", "/v1/task/categorize", 405),
        ("GET", "/v1/task/categorize", 404),
        ("DELETE", f"/v1/task/{VALID_ID}", 405),
        ("GET", f"/v1/task/{VALID_ID}/cancel", 405),
    ],
)
async def test_unknown_paths_and_methods(
    api: Api, other_customer: dict, method: str, path: str, status: int
) -> None:
    reply = await api.request(method, path, other_customer["api_key"])
    assert reply.status == status, reply
    assert reply.body == {"status_code": status, "error": reply.body["error"]}


async def test_services_survive_bad_input(api: Api, stack) -> None:
    # After everything above, both services still answer and are ready.
    assert (await api.get("/readyz")).status == 200
    for process in stack.processes.values():
        assert process.running, process.log_tail()
