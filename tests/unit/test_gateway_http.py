"""The gateway's HTTP contract, in-process (docs/reference/contract.md §3, §5, §6, §8): the app
of its factory with a fake boundary (`tests/support/fake_boundary.py`), no broker, no database.

Bad input of every kind is a 4xx JSON error naming the problem, and never reaches the
task-store; credentials of the wrong kind are 401; unknown paths and methods are JSON
404/405; domain errors of the services map to their statuses. What needs the real
services (durability, the pool, callbacks) stays in `tests/e2e`.
"""

from __future__ import annotations

import io
from typing import Any

import pytest

from humantask_shared import __version__
from humantask_shared.core.errors import (
    Conflict,
    HumantaskError,
    NotFound,
    QuotaExceeded,
    StorageQuotaExceeded,
    Unavailable,
)
from humantask_shared.core.messages.commands import (
    CancelTask,
    ClaimWork,
    CreateTask,
    GetTask,
    ListTasks,
    ReleaseWork,
    SubmitWork,
)
from tests.support.fake_boundary import CUSTOMER_KEY, OTHER_CUSTOMER_KEY, WORKER_TOKEN

from .conftest import GatewayFactory

pytestmark = pytest.mark.timeout(60)

VALID_ID = "0123456789abcdef01234567"
SEED_TASK_JSON = {
    "callback_url": "http://www.example.com/test_callback",
    "instruction": "Would you say this item is big or small?",
    "attachment_type": "text",
    "attachment": "car",
    "categories": ["big", "small"],
}
SEED_CREATE_FORM = [
    ("callback_url", "http://www.example.com/callback"),
    ("instruction", "Is this company public or private?"),
    ("attachment_type", "website"),
    ("attachment", "http://www.google.com/"),
    ("categories[]", "public"),
    ("categories[]", "private"),
]
JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def without(field: str) -> dict[str, Any]:
    return {k: v for k, v in SEED_TASK_JSON.items() if k != field}


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def assert_error(status: int, body: Any, expected: int, *words: str) -> None:
    assert status == expected, body
    assert body == {"status_code": expected, "error": body["error"]}, body
    for word in words:
        assert word in body["error"], body


# -- bodies of a new task ---------------------------------------------------------------

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
    # The limits of docs/reference/contract.md §5.
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
async def test_bad_create_requests_are_4xx_naming_the_problem(
    gateway: GatewayFactory, case: str, kwargs: dict, status: int, words: list[str]
) -> None:
    gw = await gateway()
    for path in ("/v1/task/categorize", "/v1/task/categorization"):
        reply_status, _, body = await gw.call("POST", path, CUSTOMER_KEY, **_fresh(kwargs))
        assert_error(reply_status, body, status, *words)
    assert gw.store.count(CreateTask) == 0


def _fresh(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The kwargs again, with a stream body rewound (a case is sent more than once)."""
    data = kwargs.get("data")
    if isinstance(data, io.BytesIO):
        return {**kwargs, "data": io.BytesIO(data.getvalue())}
    return kwargs


async def test_the_seed_form_and_json_create_a_task(gateway: GatewayFactory) -> None:
    gw = await gateway()
    status, _, task = await gw.call(
        "POST", "/v1/task/categorize", CUSTOMER_KEY, data=SEED_CREATE_FORM
    )
    assert status == 200, task
    assert task["status"] == "pending"
    assert task["params"]["categories"] == ["public", "private"]
    status, _, task = await gw.call(
        "POST", "/v1/task/categorization", CUSTOMER_KEY, json=SEED_TASK_JSON
    )
    assert status == 200 and task["params"]["categories"] == ["big", "small"], task


async def test_unknown_fields_are_ignored_as_scale_did(gateway: GatewayFactory) -> None:
    gw = await gateway()
    status, _, task = await gw.call(
        "POST", "/v1/task/categorize", CUSTOMER_KEY, json={**SEED_TASK_JSON, "urgency": "day"}
    )
    assert status == 200, task
    assert "urgency" not in task


# -- query strings of the list ------------------------------------------------------------


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
    # A cursor without its signature (what tokens were before they were signed).
    ("next_token=WzE3MDQwNzA5MjM0NTYsIjAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMCIsNjAuMF0", "next_token"),
    (
        "offset=5&next_token=WzE3MDQwNzA5MjM0NTYsIjAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMCIsNjAuMF0"
        ".ssssssssssssssssssssss",
        "offset",
    ),
]


@pytest.mark.parametrize(("query", "field"), QUERY_CASES)
async def test_bad_list_queries_are_400_naming_the_field(
    gateway: GatewayFactory, query: str, field: str
) -> None:
    gw = await gateway()
    status, _, body = await gw.call("GET", f"/v1/tasks?{query}", CUSTOMER_KEY)
    assert_error(status, body, 400)
    assert body["error"].startswith(field), body
    assert gw.store.count(ListTasks) == 0


# -- task ids in paths ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "task_id", ["zzz", "0123456789ABCDEF01234567", "0123456789abcdef0123456", VALID_ID + "0"]
)
async def test_ids_that_cannot_exist_are_404_without_asking(
    gateway: GatewayFactory, task_id: str
) -> None:
    gw = await gateway()
    for method, path in [
        ("GET", f"/v1/task/{task_id}"),
        ("POST", f"/v1/task/{task_id}/cancel"),
        ("GET", f"/v1/task/{task_id}/callbacks"),
    ]:
        status, _, body = await gw.call(method, path, CUSTOMER_KEY)
        assert_error(status, body, 404, task_id)
    assert not [c for c in gw.store.asked if isinstance(c, (GetTask, CancelTask))]


async def test_another_customers_task_is_404(gateway: GatewayFactory) -> None:
    gw = await gateway()
    _, _, task = await gw.call("POST", "/v1/task/categorize", CUSTOMER_KEY, json=SEED_TASK_JSON)
    for method, path in [
        ("GET", f"/v1/task/{task['task_id']}"),
        ("POST", f"/v1/task/{task['task_id']}/cancel"),
        ("GET", f"/v1/task/{task['task_id']}/callbacks"),
    ]:
        status, _, body = await gw.call(method, path, OTHER_CUSTOMER_KEY)
        assert_error(status, body, 404)
    assert (await gw.call("GET", f"/v1/task/{task['task_id']}", CUSTOMER_KEY))[2] == task


@pytest.mark.parametrize("task_id", [VALID_ID, "zzz", "0123456789ABCDEF01234567", VALID_ID + "0"])
async def test_worker_task_ids_not_held_are_409_all_alike(
    gateway: GatewayFactory, task_id: str
) -> None:
    gw = await gateway()
    for action in ("submit", "release"):
        status, _, body = await gw.call(
            "POST", f"/v1/work/{task_id}/{action}", WORKER_TOKEN, json={"category": "big"}
        )
        assert status == 409, (action, body)
        assert body == {
            "status_code": 409,
            "error": f"you do not hold a live lease on task {task_id}: claim a task first",
        }


# -- bodies of a submit ---------------------------------------------------------------------

# (what is wrong, request kwargs, expected status, words the error must contain)
BAD_SUBMITS = [
    ("malformed JSON", {"data": b'{"category": ', "headers": JSON}, 400, ["malformed JSON"]),
    ("JSON that is not an object", {"json": ["big"]}, 400, ["JSON object"]),
    ("missing category", {"json": {"label": "big"}}, 400, ["category", "required"]),
    ("empty body", {"data": b"", "headers": JSON}, 400, ["category", "required"]),
    ("category of the wrong type", {"json": {"category": 1}}, 400, ["category"]),
    ("category as a list", {"json": {"category": ["big"]}}, 400, ["category"]),
    ("null category", {"json": {"category": None}}, 400, ["category"]),
    ("empty category", {"json": {"category": ""}}, 400, ["category"]),
    ("category array in a form", {"data": b"category[]=big", "headers": FORM}, 400, ["category"]),
    ("invalid UTF-8", {"data": b'{"category": "\xff"}', "headers": JSON}, 400, ["body"]),
    ("deeply nested JSON", {"data": b"[" * 5000 + b"]" * 5000, "headers": JSON}, 400, ["body"]),
    (
        "wrong content type",
        {"data": b"big", "headers": {"Content-Type": "text/plain"}},
        415,
        ["Content-Type"],
    ),
    (
        "2 MiB body",
        {"data": io.BytesIO(b"x" * (2 * 1024 * 1024)), "headers": JSON},
        413,
        ["too large"],
    ),
]


@pytest.mark.parametrize(
    ("case", "kwargs", "status", "words"), BAD_SUBMITS, ids=[c[0] for c in BAD_SUBMITS]
)
async def test_bad_submit_bodies_are_4xx_and_keep_the_lease(
    gateway: GatewayFactory, case: str, kwargs: dict, status: int, words: list[str]
) -> None:
    gw = await gateway()
    await gw.call("POST", "/v1/task/categorize", CUSTOMER_KEY, json=SEED_TASK_JSON)
    claim_status, _, item = await gw.call("POST", "/v1/work/claim", WORKER_TOKEN)
    assert claim_status == 200, item
    path = f"/v1/work/{item['task_id']}/submit"
    reply_status, _, body = await gw.call("POST", path, WORKER_TOKEN, **kwargs)
    assert_error(reply_status, body, status, *words)
    assert gw.store.count(SubmitWork) == 0
    status, _, completed = await gw.call("POST", path, WORKER_TOKEN, data={"category": "big"})
    assert status == 200 and completed["response"]["category"] == "big", completed


async def test_claim_with_nothing_to_do_is_204(gateway: GatewayFactory) -> None:
    gw = await gateway()
    status, _, body = await gw.call("POST", "/v1/work/claim", WORKER_TOKEN)
    assert (status, body) == (204, b"")


# -- credentials (docs/reference/contract.md §3) ------------------------------------------------

CUSTOMER_ROUTES = [
    ("POST", "/v1/task/categorize"),
    ("POST", "/v1/task/categorization"),
    ("GET", "/v1/tasks"),
    ("GET", f"/v1/task/{VALID_ID}"),
    ("POST", f"/v1/task/{VALID_ID}/cancel"),
    ("GET", f"/v1/task/{VALID_ID}/callbacks"),
]
WORKER_ROUTES = [
    ("POST", "/v1/work/claim"),
    ("POST", f"/v1/work/{VALID_ID}/submit"),
    ("POST", f"/v1/work/{VALID_ID}/release"),
]


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Basic " + "bGl2ZV9ub3RfYV9yZWFsX2tleTo=", "Bearer abc", "Basic !!!notbase64"],
    ids=["none", "empty", "unknown key", "not Basic", "not base64"],
)
async def test_missing_or_unknown_credentials_are_401_with_www_authenticate(
    gateway: GatewayFactory, authorization: str | None
) -> None:
    gw = await gateway()
    headers = {} if authorization is None else {"Authorization": authorization}
    for method, path in CUSTOMER_ROUTES + WORKER_ROUTES:
        status, reply_headers, body = await gw.call(
            method, path, headers=headers, json=SEED_TASK_JSON if method == "POST" else None
        )
        assert_error(status, body, 401)
        assert reply_headers["WWW-Authenticate"] == 'Basic realm="humantask"', (method, path)
    assert gw.store.count(CreateTask) == gw.store.count(ClaimWork) == 0


async def test_customer_keys_and_worker_tokens_never_open_each_others_endpoints(
    gateway: GatewayFactory,
) -> None:
    gw = await gateway()
    for method, path in WORKER_ROUTES:
        status, headers, body = await gw.call(method, path, CUSTOMER_KEY, json={"category": "a"})
        assert_error(status, body, 401)
        assert headers["WWW-Authenticate"] == 'Basic realm="humantask"'
    for method, path in CUSTOMER_ROUTES:
        status, headers, body = await gw.call(method, path, WORKER_TOKEN, json=SEED_TASK_JSON)
        assert_error(status, body, 401)
    commands = (CreateTask, GetTask, ListTasks, CancelTask, ClaimWork, SubmitWork, ReleaseWork)
    assert not [c for c in gw.store.asked if isinstance(c, commands)]


# -- routing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/", 404),
        ("GET", "/v2/tasks", 404),
        ("POST", "/v1/task", 404),
        ("GET", "/v1/taskz", 404),
        ("GET", "/metrics", 404),  # HEALTH_PORT only
        ("DELETE", "/v1/tasks", 405),
        ("PUT", "/v1/task/categorize", 405),
        ("GET", "/v1/task/categorize", 404),  # the path of a task with that id
        ("DELETE", f"/v1/task/{VALID_ID}", 405),
        ("GET", f"/v1/task/{VALID_ID}/cancel", 405),
        ("GET", "/v1/work/claim", 405),
        ("PUT", "/v1/work/claim", 405),
        ("GET", f"/v1/work/{VALID_ID}/submit", 405),
        ("DELETE", f"/v1/work/{VALID_ID}/release", 405),
        ("POST", "/work", 405),
    ],
)
async def test_unknown_paths_are_404_and_wrong_methods_405_in_json(
    gateway: GatewayFactory, method: str, path: str, status: int
) -> None:
    gw = await gateway()
    reply_status, headers, body = await gw.call(method, path, CUSTOMER_KEY)
    assert_error(reply_status, body, status)
    if status == 405:
        assert headers["Allow"], headers


async def test_the_workbench_page_and_its_assets_are_served(gateway: GatewayFactory) -> None:
    gw = await gateway()
    status, headers, page = await gw.call("GET", "/work")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert b"<title>humantask workbench</title>" in page
    for asset, content_type in [
        ("/work/workbench.js", "text/javascript"),
        ("/work/workbench.css", "text/css"),
    ]:
        status, headers, _ = await gw.call("GET", asset)
        assert status == 200, asset
        assert headers["Content-Type"].startswith(content_type)
    script = (await gw.call("GET", "/work/workbench.js"))[2]
    assert b"innerHTML" not in script and b"insertAdjacentHTML" not in script


@pytest.mark.parametrize("path", ["/work", "/healthz", "/v1/tasks"])
async def test_a_get_route_answers_head_too(gateway: GatewayFactory, path: str) -> None:
    gw = await gateway()
    status, _, body = await gw.call("HEAD", path, CUSTOMER_KEY)
    assert status == 200 and not body


async def test_health_answers_on_the_public_port_and_request_ids_are_echoed(
    gateway: GatewayFactory,
) -> None:
    gw = await gateway()
    healthy = {"status": "ok", "version": __version__}
    assert (await gw.call("GET", "/healthz"))[:3:2] == (200, healthy)
    assert (await gw.call("GET", "/readyz"))[0] == 200  # no checks without a broker
    _, headers, _ = await gw.call("GET", "/v1/tasks", CUSTOMER_KEY, headers={"X-Request-Id": "t-1"})
    assert headers["X-Request-Id"] == "t-1"
    _, headers, _ = await gw.call("GET", "/v1/tasks", CUSTOMER_KEY, headers={"X-Request-Id": "a b"})
    assert len(headers["X-Request-Id"]) == 32  # not sane: one of ours instead


# -- the services' domain errors ------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotFound(f"no task with task_id {VALID_ID}"), 404),
        (Conflict(f"task {VALID_ID} is completed and cannot be canceled"), 409),
        (Unavailable("the service did not answer in time"), 503),
        (HumantaskError("something unforeseen"), 500),
    ],
)
@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("POST", "/v1/task/categorize", {"json": SEED_TASK_JSON}),
        ("GET", f"/v1/task/{VALID_ID}", {}),
        ("POST", f"/v1/task/{VALID_ID}/cancel", {}),
        ("GET", "/v1/tasks", {}),
        ("GET", f"/v1/task/{VALID_ID}/callbacks", {}),
    ],
)
async def test_domain_errors_map_to_their_status_with_the_services_message(
    gateway: GatewayFactory,
    error: HumantaskError,
    status: int,
    method: str,
    path: str,
    kwargs: dict[str, Any],
) -> None:
    gw = await gateway()
    gw.store.fail_with = error
    reply_status, headers, body = await gw.call(method, path, CUSTOMER_KEY, **kwargs)
    assert reply_status == status
    assert body == {"status_code": status, "error": error.message}
    assert ("Retry-After" in headers) == (status == 503)
    if status == 503:
        assert headers["Retry-After"] == "1"


@pytest.mark.parametrize(
    ("error", "status", "retry_after"),
    [
        (QuotaExceeded("quota: this customer has 5 pending tasks, as many as ..."), 429, "30"),
        (StorageQuotaExceeded("quota: ... past its stored-bytes quota of 100"), 403, None),
    ],
)
async def test_a_create_past_a_quota_is_429_or_403_naming_it(
    gateway: GatewayFactory, error: HumantaskError, status: int, retry_after: str | None
) -> None:
    """Pending tasks drain as workers finish them: 429 and when to try again. Bytes do
    not (only retention or the operator frees them): 403, retrying will not help."""
    gw = await gateway()
    gw.store.fail_with = error
    reply_status, headers, body = await gw.call(
        "POST", "/v1/task/categorize", CUSTOMER_KEY, json=SEED_TASK_JSON
    )
    assert (reply_status, body) == (status, {"status_code": status, "error": error.message})
    assert body["error"].startswith("quota: ")
    assert headers.get("Retry-After") == retry_after


async def test_the_notifiers_errors_map_the_same_way(gateway: GatewayFactory) -> None:
    gw = await gateway()
    _, _, task = await gw.call("POST", "/v1/task/categorize", CUSTOMER_KEY, json=SEED_TASK_JSON)
    gw.notifier.fail_with = Unavailable("no service is running that handles callback.list")
    status, headers, body = await gw.call(
        "GET", f"/v1/task/{task['task_id']}/callbacks", CUSTOMER_KEY
    )
    assert (status, headers["Retry-After"]) == (503, "1")
    assert "callback.list" in body["error"]
