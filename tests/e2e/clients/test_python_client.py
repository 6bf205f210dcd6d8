"""The Python client (`clients/python`, `import humantask`) against the running services:
the calls, every error class with the gateway's request id, retries on the gateway's real
429 (a stack with a low rate limit) and real 503s (a gateway that gives the task-store
1 ms; a task-store stopped, then started again), and pages asked for only when needed."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import humantask
from tests.e2e.conftest import Stack, start_service
from tests.e2e.isolated import isolated_stack
from tests.support.callbacks import ScriptedReceiver
from tests.support.services import free_port, wait_for, wait_until

from .conftest import (
    NOWHERE,
    answered,
    complete_as_worker,
    metrics_url,
    spend_rate_limit,
)

pytestmark = pytest.mark.e2e

SEED_CREATE = {
    "callback_url": "http://www.example.com/callback",
    "instruction": "Is this company public or private?",
    "attachment_type": "website",
    "attachment": "http://www.google.com/",
    "categories": ["public", "private"],
}
BIG_OR_SMALL = {
    "callback_url": NOWHERE,
    "instruction": "Would you say this item is big or small?",
    "attachment_type": "text",
    "attachment": "car",
    "categories": ["big", "small"],
}


# The id the gateway gives a request when the caller sends none (X-Request-Id).
REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture
def api(stack: Stack, client_customer: dict[str, Any]) -> Any:
    with humantask.authorize(client_customer["api_key"], base_url=stack.gateway_url) as client:
        yield client


def gateway_503_count(health_url: str) -> float:
    """How many 503s the gateway has answered, from its own /metrics (on its HEALTH_PORT)."""
    return answered(health_url, status="503")


# -- Scale's v1 calls ---------------------------------------------------------------


def test_seed_example_create_then_get(api: humantask.Client) -> None:
    task = api.tasks.createCategorization(**SEED_CREATE)
    assert isinstance(task, humantask.Task)
    assert task.status == "pending" and task.type == "categorization"
    assert task.params == humantask.TaskParams(
        attachment_type="website",
        attachment="http://www.google.com/",
        categories=["public", "private"],
    )
    assert task.instruction == SEED_CREATE["instruction"]
    assert task.created_at.tzinfo is not None and task.completed_at is None
    assert task.response is None

    assert api.tasks.get(task.task_id) == task
    assert api.tasks.create_categorization == api.tasks.createCategorization


def test_base_url_and_key_come_from_humantask_url_and_humantask_api_key(
    stack: Stack, client_customer: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUMANTASK_URL", f"{stack.gateway_url}/v1/")
    monkeypatch.setenv("HUMANTASK_API_KEY", client_customer["api_key"])
    with humantask.authorize() as api:
        assert api.base_url == f"{stack.gateway_url}/v1/"
        task = api.tasks.createCategorization(**BIG_OR_SMALL)
        assert api.tasks.get(task.task_id).task_id == task.task_id


def test_the_deprecated_scale_api_url_still_works(
    stack: Stack, client_customer: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HUMANTASK_URL", raising=False)
    monkeypatch.setenv("SCALE_API_URL", stack.gateway_url)
    with (
        pytest.warns(DeprecationWarning, match="HUMANTASK_URL"),
        humantask.authorize(client_customer["api_key"]) as api,
    ):
        assert api.tasks.list_page(limit=1).items == []


def test_metadata_unique_id_and_json_callbacks_round_trip_the_api(api: humantask.Client) -> None:
    task = api.tasks.createCategorization(
        **BIG_OR_SMALL, metadata={"sku": "car-1"}, unique_id="car-1", callback_format="json"
    )
    assert task.metadata == {"sku": "car-1"} and task.unique_id == "car-1"
    assert (
        api.tasks.createCategorization(
            **BIG_OR_SMALL, metadata={"sku": "car-1"}, unique_id="car-1", callback_format="json"
        )
        == task
    )


def test_list_follows_the_link_header_across_pages(api: humantask.Client) -> None:
    created = [
        api.tasks.createCategorization(**{**BIG_OR_SMALL, "attachment": f"item {n}"})
        for n in range(5)
    ]
    newest_first = [task.task_id for task in reversed(created)]

    pages_of_two = list(api.tasks.list(limit=2))
    assert all(isinstance(task, humantask.Task) for task in pages_of_two)
    assert [task.task_id for task in pages_of_two] == newest_first
    assert [task.task_id for task in api.tasks.list()] == newest_first
    assert [task.task_id for task in api.tasks.list(limit=2, offset=3)] == newest_first[3:]

    page = api.tasks.list_page(limit=2)
    assert [task.task_id for task in page.items] == newest_first[:2]
    assert page.has_next and page.next_token
    later = api.tasks.list_page(limit=2, next_token=page.next_token)
    assert [task.task_id for task in later] == newest_first[2:4]
    following = page.next_page()
    assert following is not None and following.items == later.items


def test_list_asks_for_page_two_only_when_the_caller_gets_to_it(
    api: humantask.Client, stack: Stack
) -> None:
    first = api.tasks.createCategorization(**BIG_OR_SMALL)
    for _ in range(2):
        api.tasks.createCategorization(**BIG_OR_SMALL)
    metrics = metrics_url(stack)

    def list_requests() -> float:
        return answered(metrics, method="GET", route="/v1/tasks", status="200")

    before = list_requests()
    listed = api.tasks.list(limit=2, start_time=first.created_at)
    assert list_requests() == before
    next(listed)
    next(listed)
    assert list_requests() == before + 1  # page 2 not asked for yet
    assert next(listed).task_id == first.task_id
    assert list_requests() == before + 2


def test_list_filters(api: humantask.Client) -> None:
    first, second, third = (api.tasks.createCategorization(**BIG_OR_SMALL) for _ in range(3))
    api.tasks.cancel(second.task_id)

    def ids(**filters: Any) -> list[str]:
        return [task.task_id for task in api.tasks.list(**filters)]

    assert ids(status="canceled") == [second.task_id]
    assert ids(status="pending", type="categorization", limit=1) == [third.task_id, first.task_id]
    assert ids(status="completed") == []
    assert ids(start_time=second.created_at, end_time=third.created_at) == [second.task_id]
    assert ids(start_time=datetime.now(UTC) + timedelta(hours=1)) == []
    unique = api.tasks.createCategorization(**BIG_OR_SMALL, unique_id="only-me")
    assert ids(unique_id="only-me") == [unique.task_id]


def test_cancel_then_cancel_again(api: humantask.Client) -> None:
    task = api.tasks.createCategorization(**BIG_OR_SMALL)
    canceled = api.tasks.cancel(task.task_id)
    assert canceled.status == "canceled" and canceled.canceled_at is not None
    assert api.tasks.cancel(task.task_id) == canceled
    assert api.tasks.get(task.task_id).status == "canceled"


# -- errors: one exception class per status, with the server's message --------------


def raised(call: Any, error: type[humantask.HumantaskError]) -> humantask.HumantaskError:
    with pytest.raises(error) as caught:
        call()
    assert isinstance(caught.value, humantask.HumantaskError)
    if caught.value.status_code is not None:
        assert caught.value.request_id is not None
        assert REQUEST_ID.match(caught.value.request_id), caught.value.request_id
        assert caught.value.request_id in str(caught.value)
    return caught.value


def test_bad_parameters_are_bad_request(api: humantask.Client) -> None:
    error = raised(
        lambda: api.tasks.createCategorization(**{**SEED_CREATE, "categories": ["public"]}),
        humantask.BadRequest,
    )
    assert error.status_code == 400
    assert "categories" in error.message
    assert error.body == {"status_code": 400, "error": error.message}


def test_unknown_key_is_unauthorized(stack: Stack) -> None:
    with humantask.authorize("live_not_a_real_key", base_url=stack.gateway_url) as api:
        error = raised(lambda: api.tasks.get("0123456789abcdef01234567"), humantask.Unauthorized)
    assert error.status_code == 401 and "credentials" in error.message


def test_unknown_or_foreign_task_is_not_found(api: humantask.Client, stack: Stack) -> None:
    error = raised(lambda: api.tasks.get("0123456789abcdef01234567"), humantask.NotFound)
    assert error.status_code == 404 and "0123456789abcdef01234567" in error.message
    raised(lambda: api.tasks.cancel("not-an-id"), humantask.NotFound)

    foreign = api.tasks.createCategorization(**BIG_OR_SMALL)
    other = stack.admin("customers", "create", "--name", "another client")
    with humantask.authorize(other["api_key"], base_url=stack.gateway_url) as theirs:
        raised(lambda: theirs.tasks.get(foreign.task_id), humantask.NotFound)


def test_wrong_method_is_method_not_allowed(api: humantask.Client) -> None:
    error = raised(lambda: api.request("DELETE", "tasks"), humantask.MethodNotAllowed)
    assert error.status_code == 405 and "method" in error.message


def test_unique_id_clash_is_conflict(api: humantask.Client) -> None:
    first = api.tasks.createCategorization(**BIG_OR_SMALL, unique_id="clash")
    error = raised(
        lambda: api.tasks.createCategorization(
            **{**BIG_OR_SMALL, "attachment": "bus"}, unique_id="clash"
        ),
        humantask.Conflict,
    )
    assert error.status_code == 409 and first.task_id in error.message


def test_huge_body_is_payload_too_large(api: humantask.Client) -> None:
    huge = {**BIG_OR_SMALL, "instruction": "x" * (1024 * 1024 + 1)}
    error = raised(lambda: api.tasks.createCategorization(**huge), humantask.PayloadTooLarge)
    assert error.status_code == 413 and "too large" in error.message


def test_other_content_type_is_unsupported_media_type(api: humantask.Client) -> None:
    error = raised(
        lambda: api.request(
            "POST", "task/categorize", content="car", headers={"Content-Type": "text/plain"}
        ),
        humantask.UnsupportedMediaType,
    )
    assert error.status_code == 415 and "Content-Type" in error.message


def test_503_is_retried_with_backoff_then_raised(
    unavailable_gateway: str, unavailable_gateway_health: str, client_customer: dict[str, Any]
) -> None:
    before = gateway_503_count(unavailable_gateway_health)
    with humantask.authorize(
        client_customer["api_key"],
        base_url=unavailable_gateway,
        max_retries=2,
        backoff=0.01,
        max_backoff=0.05,
    ) as api:
        started = time.monotonic()
        error = raised(
            lambda: api.tasks.get("0123456789abcdef01234567"), humantask.ServiceUnavailable
        )
        assert error.status_code == 503 and "did not answer in time" in error.message
        assert isinstance(error, humantask.ServerError) and error.retry_after == 1.0
        # One call, three requests: the first and two retries (Retry-After capped by max_backoff).
        assert gateway_503_count(unavailable_gateway_health) - before == 3
        assert time.monotonic() - started < 10

        # A create without unique_id might have been carried out: it is sent once.
        before = gateway_503_count(unavailable_gateway_health)
        raised(lambda: api.tasks.createCategorization(**BIG_OR_SMALL), humantask.ServiceUnavailable)
        assert gateway_503_count(unavailable_gateway_health) - before == 1
        # With a unique_id it is retried like a get.
        raised(
            lambda: api.tasks.createCategorization(**BIG_OR_SMALL, unique_id="retried"),
            humantask.ServiceUnavailable,
        )
        assert gateway_503_count(unavailable_gateway_health) - before == 4


# -- retries on the gateway's own 429 -----------------------------------------------


def test_429_is_retried_after_retry_after_except_a_create_without_unique_id(
    rate_limited_stack: Stack,
) -> None:
    key = rate_limited_stack.admin("customers", "create", "--name", "python limited")["api_key"]
    url, metrics = rate_limited_stack.gateway_url, metrics_url(rate_limited_stack)
    with humantask.authorize(key, base_url=url, max_retries=3, max_backoff=5) as api:
        spend_rate_limit(url, key)
        before = answered(metrics, status="429")
        error = raised(
            lambda: api.tasks.createCategorization(**BIG_OR_SMALL), humantask.RateLimited
        )
        assert error.status_code == 429 and error.retry_after is not None
        assert 1 <= error.retry_after <= 2
        assert answered(metrics, status="429") - before == 1

        task = api.tasks.createCategorization(**BIG_OR_SMALL, unique_id="limited-1")
        assert task.unique_id == "limited-1"
        assert answered(metrics, status="429") - before >= 2, "no 429 met: no retry shown"

        spend_rate_limit(url, key)
        seen = answered(metrics, status="429")
        assert api.tasks.get(task.task_id) == task
        assert api.tasks.cancel(task.task_id).status == "canceled"
        assert answered(metrics, status="429") > seen, "no 429 met: no retry shown"


# -- a task-store stopped, then started again -----------------------------------------


@pytest.fixture(scope="module")
def outage_stack(mongodb_url: str, test_session_id: str, _containers: Any) -> Iterator[Stack]:
    """A stack of its own whose task-store the test stops; the gateway gives it 1 s."""
    with isolated_stack(
        "client_outage",
        mongodb_url=mongodb_url,
        session_id=test_session_id,
        containers=_containers,
        RPC_TIMEOUT_SECONDS=1,
    ) as stack:
        yield stack


def test_a_stopped_task_store_is_503_and_retries_last_until_it_is_back(
    outage_stack: Stack,
) -> None:
    key = outage_stack.admin("customers", "create", "--name", "outage")["api_key"]
    url, metrics = outage_stack.gateway_url, metrics_url(outage_stack)
    with humantask.authorize(key, base_url=url) as api:
        task = api.tasks.createCategorization(**BIG_OR_SMALL, unique_id="outage-1")

    outage_stack.processes["taskstore-1"].terminate(timeout=30)
    with humantask.authorize(key, base_url=url, max_retries=0) as api:
        error = raised(lambda: api.tasks.get(task.task_id), humantask.ServiceUnavailable)
    assert "did not answer in time" in error.message

    # A client with retries to spare waits through the outage: it meets 503s, the
    # task-store starts again meanwhile, and its call then succeeds.
    before = answered(metrics, status="503")
    outcome: dict[str, Any] = {}

    def call() -> None:
        with humantask.authorize(
            key, base_url=url, max_retries=40, backoff=0.2, max_backoff=1
        ) as patient:
            try:
                outcome["task"] = patient.tasks.get(task.task_id)
                outcome["created"] = patient.tasks.createCategorization(
                    **BIG_OR_SMALL, unique_id="outage-1"
                )
            except humantask.HumantaskError as exc:
                outcome["error"] = exc

    waiting = threading.Thread(target=call)
    waiting.start()
    try:
        wait_until(
            lambda: answered(metrics, status="503") >= before + 2,
            timeout=30,
            message="the client's retries meeting the gateway's 503",
        )
    finally:
        process, health = start_service("humantask-taskstore", outage_stack.env, "HEALTH_PORT")
        outage_stack.processes["taskstore-1"] = process
        outage_stack.health_urls["taskstore-1"] = health
        waiting.join(timeout=120)
    assert not waiting.is_alive()
    assert "error" not in outcome, outcome
    assert outcome["task"] == task and outcome["created"] == task


def test_unreachable_server_is_a_connection_error() -> None:
    with humantask.authorize(
        "live_key", base_url=f"http://127.0.0.1:{free_port()}", max_retries=1, backoff=0.01
    ) as api:
        error = raised(
            lambda: api.tasks.get("0123456789abcdef01234567"), humantask.APIConnectionError
        )
    assert error.status_code is None and error.request_id is None


# -- the asyncio client -------------------------------------------------------------


async def test_async_client_creates_gets_lists_and_cancels(
    stack: Stack, client_customer: dict[str, Any]
) -> None:
    async with humantask.authorize_async(
        client_customer["api_key"], base_url=stack.gateway_url
    ) as api:
        created = [await api.tasks.createCategorization(**BIG_OR_SMALL) for _ in range(3)]
        assert all(task.status == "pending" for task in created)
        assert await api.tasks.get(created[0].task_id) == created[0]
        listed = [task.task_id async for task in api.tasks.list(limit=2)]
        assert listed == [task.task_id for task in reversed(created)]
        page = await api.tasks.list_page(limit=2)
        assert [task.task_id for task in page] == listed[:2]
        following = await page.next_page()
        assert following is not None and [task.task_id for task in following] == listed[2:]
        assert (await api.tasks.cancel(created[0].task_id)).status == "canceled"
        with pytest.raises(humantask.NotFound) as caught:
            await api.tasks.get("0123456789abcdef01234567")
        assert caught.value.status_code == 404
        with pytest.raises(humantask.BadRequest):
            await api.tasks.create_categorization(**{**BIG_OR_SMALL, "categories": ["big"]})


async def test_async_client_retries_503(unavailable_gateway: str) -> None:
    async with humantask.authorize_async(
        "live_key", base_url=unavailable_gateway, max_retries=1, backoff=0.01, max_backoff=0.05
    ) as api:
        with pytest.raises(humantask.ServiceUnavailable):
            await api.tasks.get("0123456789abcdef01234567")


# -- the whole round trip: a worker completes the task, the callback arrives --------


@pytest.mark.parametrize("callback_format", ["form", "json"])
async def test_worker_completes_and_the_signed_callback_arrives(
    stack: Stack,
    client_customer: dict[str, Any],
    worker_tokens: list[str],
    callback_format: str,
) -> None:
    receiver = await ScriptedReceiver().start()
    path = f"/python-client/{callback_format}"
    try:
        async with humantask.authorize_async(
            client_customer["api_key"], base_url=stack.gateway_url
        ) as api:
            task = await api.tasks.createCategorization(
                **{**BIG_OR_SMALL, "callback_url": receiver.url(path)},
                callback_format=callback_format,
            )
            assert await api.tasks.callbacks(task.task_id) == []
            await complete_as_worker(stack.gateway_url, worker_tokens, task.task_id, "big")
            [callback] = await receiver.wait_for_requests(path, 1, timeout=60)

            secret = client_customer["callback_secret"]
            assert humantask.verify_callback(secret, callback.headers, callback.body)
            assert not humantask.verify_callback(secret, callback.headers, callback.body + b"&x=1")
            assert not humantask.verify_callback("whsec_wrong", callback.headers, callback.body)
            payload = humantask.parse_callback(callback.body, callback.headers["Content-Type"])
            assert payload["task_id"] == task.task_id
            assert payload["response"]["category"] == "big"
            assert payload["task"]["params"]["categories"] == ["big", "small"]

            done = await api.tasks.get(task.task_id)
            assert done.status == "completed" and done.completed_at is not None
            assert done.response == humantask.TaskResponse(category="big", status_code=200)

            async def delivered() -> humantask.CallbackAttempt | None:
                return next(
                    (a for a in await api.tasks.callbacks(task.task_id) if a.delivered), None
                )

            attempt = await wait_for(
                delivered,
                timeout=30,
                interval=0.1,
                message="the delivered callback in the task's callback log",
            )
            assert (attempt.attempt, attempt.status_code, attempt.error) == (1, 200, None)

            with pytest.raises(humantask.Conflict) as caught:
                await api.tasks.cancel(task.task_id)
            assert caught.value.status_code == 409
    finally:
        await receiver.stop()
