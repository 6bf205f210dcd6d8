"""What one customer may cost the others, through the real services
(docs/operations/hardening.md, "Lists" and "Quotas"): quotas refused with a clear 429 or
403 and set per customer by `humantask-admin`, pages cut at their byte budget with a
`Link` to the rest, and cursors the task-store did not sign refused."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from .conftest import Api, Stack
from .isolated import api_for, isolated_stack

pytestmark = pytest.mark.e2e

TASK: dict[str, Any] = {
    "callback_url": "http://www.example.com/callback",
    "instruction": "Is this big or small?",
    "attachment_type": "text",
    "attachment": "car",
    "categories": ["big", "small"],
}
PAGE_BYTES = 64 * 1024


@pytest.fixture(scope="module")
def limits_stack(mongodb_url: str, test_session_id: str, _containers: Any) -> Iterator[Stack]:
    with isolated_stack(
        "limits",
        mongodb_url=mongodb_url,
        session_id=test_session_id,
        containers=_containers,
        QUOTA_PENDING_TASKS=2,
        LIST_PAGE_MAX_BYTES=PAGE_BYTES,
    ) as stack:
        yield stack


@pytest.fixture
async def api(limits_stack: Stack) -> AsyncIterator[Api]:
    async with api_for(limits_stack) as api:
        yield api


def next_link(headers: Any) -> str | None:
    match = re.match(r'<([^>]+)>; rel="next"', headers.get("Link", ""))
    return None if match is None else match.group(1)


async def test_the_pending_tasks_quota_is_a_429_and_the_operator_can_raise_it(
    api: Api, limits_stack: Stack
) -> None:
    customer = limits_stack.admin("customers", "create", "--name", "quota")
    key = customer["api_key"]
    created = [await api.post("/v1/task/categorize", key, json=TASK) for _ in range(2)]
    assert [reply.status for reply in created] == [200, 200]
    refused = await api.post("/v1/task/categorize", key, json=TASK)
    assert refused.status == 429, refused
    assert refused.body["error"].startswith("quota: "), refused.body
    assert refused.headers["Retry-After"] == "30"

    # A task out of `pending` frees its place.
    task_id = created[0].body["task_id"]
    assert (await api.post(f"/v1/task/{task_id}/cancel", key)).status == 200
    assert (await api.post("/v1/task/categorize", key, json=TASK)).status == 200
    assert (await api.post("/v1/task/categorize", key, json=TASK)).status == 429

    raised = limits_stack.admin(
        "customers", "set-quota", customer["customer_id"], "--pending-tasks", "3"
    )
    assert raised["pending_tasks_limit"] == 3 and raised["pending_tasks_limit_is"] == "customer"
    assert raised["pending_tasks"] == 2
    assert (await api.post("/v1/task/categorize", key, json=TASK)).status == 200

    # Bytes do not drain: past the stored-bytes quota it is a 403.
    used = limits_stack.admin("customers", "quota", customer["customer_id"])["stored_bytes"]
    limits_stack.admin(
        "customers", "set-quota", customer["customer_id"], "--pending-tasks", "0",
        "--stored-bytes", str(used + 10),
    )  # fmt: skip
    forbidden = await api.post("/v1/task/categorize", key, json=TASK)
    assert forbidden.status == 403, forbidden
    assert "stored-bytes quota" in forbidden.body["error"]


async def test_a_page_stops_at_its_byte_budget_and_links_to_the_rest(
    api: Api, limits_stack: Stack
) -> None:
    customer = limits_stack.admin("customers", "create", "--name", "pages")
    key = customer["api_key"]
    limits_stack.admin("customers", "set-quota", customer["customer_id"], "--pending-tasks", "0")
    large = {**TASK, "instruction": "\N{GRINNING FACE}" * 5_000}  # 20 KB of UTF-8
    made = [
        (await api.post("/v1/task/categorize", key, json=large)).body["task_id"] for _ in range(6)
    ]

    seen: list[str] = []
    url: str | None = "/v1/tasks?limit=100"
    pages = 0
    while url is not None:
        page = await api.get(url, key)
        assert page.status == 200, page
        assert (
            len(page.body) >= 1
            and len(json.dumps(page.body, ensure_ascii=False).encode()) <= PAGE_BYTES
        )
        seen += [task["task_id"] for task in page.body]
        url, pages = next_link(page.headers), pages + 1
    assert seen == made[::-1] and pages >= 2


async def test_a_next_token_it_did_not_give_out_is_a_400_naming_it(
    api: Api, limits_stack: Stack
) -> None:
    customer = limits_stack.admin("customers", "create", "--name", "tokens")
    key = customer["api_key"]
    for _ in range(2):
        assert (await api.post("/v1/task/categorize", key, json=TASK)).status == 200
    first = await api.get("/v1/tasks?limit=1&status=pending", key)
    link = next_link(first.headers)
    assert link is not None
    token = parse_qs(urlsplit(link).query)["next_token"][0]
    payload, _, signature = token.rpartition(".")
    cursor = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    cursor[2] = 5e-324  # the span: what the next page costs
    forged = base64.urlsafe_b64encode(json.dumps(cursor).encode()).decode().rstrip("=")
    for query in (
        f"limit=1&status=pending&next_token={forged}.{signature}",
        f"limit=1&status=canceled&next_token={token}",  # another query's
    ):
        refused = await api.get(f"/v1/tasks?{query}", key)
        assert refused.status == 400, refused
        assert refused.body["error"].startswith("next_token: "), refused.body
    assert (await api.get(link, key)).status == 200
