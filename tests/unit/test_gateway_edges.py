"""Smaller limits at the edge, in-process (docs/operations/hardening.md):

- `Link` headers are built on `PUBLIC_BASE_URL` when it is set (behind a TLS proxy the
  request's own URL says `http://` and the gateway's inside address);
- a submitted `category` is at most 256 characters, like the task's, and the error
  does not echo it;
- worker tokens have a rate limit of their own (`WORKER_RATE_LIMIT_PER_SECOND`),
  `RATE_LIMIT_PER_SECOND` stays the customers'.
"""

from __future__ import annotations

import pytest

from humantask_gateway.settings import GatewaySettings
from humantask_shared.core.messages.commands import SubmitWork
from tests.support.fake_boundary import CUSTOMER_KEY, WORKER_TOKEN
from tests.support.gateway import Gateway

from .conftest import GatewayFactory

TASK = {
    "callback_url": "http://www.example.com/callback",
    "instruction": "Is this big or small?",
    "attachment_type": "text",
    "attachment": "car",
    "categories": ["big", "small"],
}


async def create_tasks(gw: Gateway, count: int) -> None:
    for _ in range(count):
        assert (await gw.call("POST", "/v1/task/categorize", CUSTOMER_KEY, json=TASK))[0] == 200


# -- Link headers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("https://api.example.com", "https://api.example.com/v1/tasks?"),
        ("https://api.example.com/", "https://api.example.com/v1/tasks?"),
        ("https://example.com/humantask/", "https://example.com/humantask/v1/tasks?"),
    ],
)
async def test_links_are_built_on_the_public_base_url(
    gateway: GatewayFactory, base: str, expected: str
) -> None:
    gw = await gateway(public_base_url=base)
    await create_tasks(gw, 3)
    status, headers, body = await gw.call("GET", "/v1/tasks?limit=1", CUSTOMER_KEY)
    assert status == 200 and len(body) == 1
    link = headers["Link"]
    assert link.startswith(f"<{expected}") and link.endswith('>; rel="next"'), link
    assert "limit=1" in link and "next_token=" in link


async def test_without_a_public_base_url_links_follow_the_request(
    gateway: GatewayFactory,
) -> None:
    gw = await gateway()
    await create_tasks(gw, 2)
    _, headers, _ = await gw.call("GET", "/v1/tasks?limit=1", CUSTOMER_KEY)
    assert headers["Link"].startswith(f"<{gw.url('/v1/tasks')}?")


@pytest.mark.parametrize(
    "value", ["api.example.com", "ftp://api.example.com", "https://", "https://x.example/?a=1"]
)
def test_a_public_base_url_that_is_not_one_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("PUBLIC_BASE_URL", value)
    with pytest.raises(ValueError, match="public_base_url"):
        GatewaySettings()


# -- the submitted category ----------------------------------------------------------------


async def claimed_task(gw: Gateway) -> str:
    await create_tasks(gw, 1)
    status, _, item = await gw.call("POST", "/v1/work/claim", WORKER_TOKEN)
    assert status == 200
    return str(item["task_id"])


async def test_a_category_longer_than_a_tasks_can_be_is_400_and_not_echoed(
    gateway: GatewayFactory,
) -> None:
    gw = await gateway()
    task_id = await claimed_task(gw)
    category = "c" * 100_000
    status, _, body = await gw.call(
        "POST", f"/v1/work/{task_id}/submit", WORKER_TOKEN, json={"category": category}
    )
    assert status == 400
    assert body["error"].startswith("category: ")
    assert "256" in body["error"] and len(body["error"]) < 200
    assert gw.store.count(SubmitWork) == 0
    # The lease is kept: a category of the task is still accepted.
    status, _, _ = await gw.call(
        "POST", f"/v1/work/{task_id}/submit", WORKER_TOKEN, json={"category": "big"}
    )
    assert status == 200


# -- the workers' rate limit ---------------------------------------------------------------


def test_the_workers_rate_limit_is_a_setting_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    assert GatewaySettings().worker_rate_limit_per_second == 20
    monkeypatch.setenv("WORKER_RATE_LIMIT_PER_SECOND", "0")
    monkeypatch.setenv("RATE_LIMIT_PER_SECOND", "7")
    settings = GatewaySettings()
    assert settings.worker_rate_limit_per_second == 0 and settings.rate_limit_per_second == 7


async def test_worker_tokens_are_limited_by_the_workers_rate(gateway: GatewayFactory) -> None:
    gw = await gateway(rate_limit_per_second=100, worker_rate_limit_per_second=3)
    statuses = [(await gw.call("POST", "/v1/work/claim", WORKER_TOKEN))[0] for _ in range(4)]
    assert statuses[:3] == [204] * 3
    assert statuses[3] == 429
    status, headers, body = await gw.call("POST", "/v1/work/claim", WORKER_TOKEN)
    assert status == 429 and int(headers["Retry-After"]) >= 1
    assert body["error"] == ("rate limit exceeded: at most 3 requests a second per worker token")
    # Customers are not held to the workers' rate.
    statuses = [(await gw.call("GET", "/v1/tasks", CUSTOMER_KEY))[0] for _ in range(10)]
    assert statuses == [200] * 10


async def test_customers_are_limited_by_their_rate_and_workers_not(
    gateway: GatewayFactory,
) -> None:
    gw = await gateway(rate_limit_per_second=2, worker_rate_limit_per_second=100)
    statuses = [(await gw.call("GET", "/v1/tasks", CUSTOMER_KEY))[0] for _ in range(3)]
    assert statuses == [200, 200, 429]
    statuses = [(await gw.call("POST", "/v1/work/claim", WORKER_TOKEN))[0] for _ in range(5)]
    assert set(statuses) == {204}
