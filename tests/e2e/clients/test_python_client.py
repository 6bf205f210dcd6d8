"""The Python client (`clients/python`, `import scale`) against the running services."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

import scale
from tests.e2e.conftest import Stack
from tests.support.callbacks import ScriptedReceiver
from tests.support.services import free_port, wait_for

from .conftest import NOWHERE, complete_as_worker

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


@pytest.fixture
def api(stack: Stack, client_customer: dict[str, Any]) -> Any:
    with scale.authorize(client_customer["api_key"], base_url=stack.gateway_url) as client:
        yield client


def gateway_503_count(health_url: str) -> float:
    """How many 503s the gateway has answered, from its own /metrics (on its HEALTH_PORT)."""
    metrics = httpx.get(f"{health_url}/metrics", timeout=30).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("humantask_gateway_http_requests_total{") and 'status="503"' in line
    )


# -- the seed's calls ---------------------------------------------------------------


def test_seed_example_create_then_get(api: scale.Client) -> None:
    task = api.tasks.createCategorization(**SEED_CREATE)
    assert isinstance(task, scale.Task)
    assert task.status == "pending" and task.type == "categorization"
    assert task.params == scale.TaskParams(
        attachment_type="website",
        attachment="http://www.google.com/",
        categories=["public", "private"],
    )
    assert task.instruction == SEED_CREATE["instruction"]
    assert task.created_at.tzinfo is not None and task.completed_at is None
    assert task.response is None

    assert api.tasks.get(task.task_id) == task
    assert api.tasks.create_categorization == api.tasks.createCategorization


def test_base_url_comes_from_scale_api_url(
    stack: Stack, client_customer: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCALE_API_URL", f"{stack.gateway_url}/v1/")
    with scale.authorize(client_customer["api_key"]) as api:
        assert api.base_url == f"{stack.gateway_url}/v1/"
        task = api.tasks.createCategorization(**BIG_OR_SMALL)
        assert api.tasks.get(task.task_id).task_id == task.task_id


def test_metadata_unique_id_and_json_callbacks_round_trip_the_api(api: scale.Client) -> None:
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


def test_list_follows_the_link_header_across_pages(api: scale.Client) -> None:
    created = [
        api.tasks.createCategorization(**{**BIG_OR_SMALL, "attachment": f"item {n}"})
        for n in range(5)
    ]
    newest_first = [task.task_id for task in reversed(created)]

    pages_of_two = list(api.tasks.list(limit=2))
    assert all(isinstance(task, scale.Task) for task in pages_of_two)
    assert [task.task_id for task in pages_of_two] == newest_first
    assert [task.task_id for task in api.tasks.list()] == newest_first
    assert [task.task_id for task in api.tasks.list(limit=2, offset=3)] == newest_first[3:]


def test_list_filters(api: scale.Client) -> None:
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


def test_cancel_then_cancel_again(api: scale.Client) -> None:
    task = api.tasks.createCategorization(**BIG_OR_SMALL)
    canceled = api.tasks.cancel(task.task_id)
    assert canceled.status == "canceled" and canceled.canceled_at is not None
    assert api.tasks.cancel(task.task_id) == canceled
    assert api.tasks.get(task.task_id).status == "canceled"


# -- errors: one exception class per status, with the server's message --------------


def raised(call: Any, error: type[scale.ScaleError]) -> scale.ScaleError:
    with pytest.raises(error) as caught:
        call()
    assert isinstance(caught.value, scale.ScaleError)
    return caught.value


def test_bad_parameters_are_bad_request(api: scale.Client) -> None:
    error = raised(
        lambda: api.tasks.createCategorization(**{**SEED_CREATE, "categories": ["public"]}),
        scale.BadRequest,
    )
    assert error.status_code == 400
    assert "categories" in error.message
    assert error.body == {"status_code": 400, "error": error.message}


def test_unknown_key_is_unauthorized(stack: Stack) -> None:
    with scale.authorize("live_not_a_real_key", base_url=stack.gateway_url) as api:
        error = raised(lambda: api.tasks.get("0123456789abcdef01234567"), scale.Unauthorized)
    assert error.status_code == 401 and "credentials" in error.message


def test_unknown_or_foreign_task_is_not_found(api: scale.Client, stack: Stack) -> None:
    error = raised(lambda: api.tasks.get("0123456789abcdef01234567"), scale.NotFound)
    assert error.status_code == 404 and "0123456789abcdef01234567" in error.message
    raised(lambda: api.tasks.cancel("not-an-id"), scale.NotFound)

    foreign = api.tasks.createCategorization(**BIG_OR_SMALL)
    other = stack.admin("customers", "create", "--name", "another client")
    with scale.authorize(other["api_key"], base_url=stack.gateway_url) as theirs:
        raised(lambda: theirs.tasks.get(foreign.task_id), scale.NotFound)


def test_wrong_method_is_method_not_allowed(api: scale.Client) -> None:
    error = raised(lambda: api.request("DELETE", "tasks"), scale.MethodNotAllowed)
    assert error.status_code == 405 and "method" in error.message


def test_unique_id_clash_is_conflict(api: scale.Client) -> None:
    first = api.tasks.createCategorization(**BIG_OR_SMALL, unique_id="clash")
    error = raised(
        lambda: api.tasks.createCategorization(
            **{**BIG_OR_SMALL, "attachment": "bus"}, unique_id="clash"
        ),
        scale.Conflict,
    )
    assert error.status_code == 409 and first.task_id in error.message


def test_huge_body_is_payload_too_large(api: scale.Client) -> None:
    huge = {**BIG_OR_SMALL, "instruction": "x" * (1024 * 1024 + 1)}
    error = raised(lambda: api.tasks.createCategorization(**huge), scale.PayloadTooLarge)
    assert error.status_code == 413 and "too large" in error.message


def test_other_content_type_is_unsupported_media_type(api: scale.Client) -> None:
    error = raised(
        lambda: api.request(
            "POST", "task/categorize", content="car", headers={"Content-Type": "text/plain"}
        ),
        scale.UnsupportedMediaType,
    )
    assert error.status_code == 415 and "Content-Type" in error.message


def test_503_is_retried_with_backoff_then_raised(
    unavailable_gateway: str, unavailable_gateway_health: str, client_customer: dict[str, Any]
) -> None:
    before = gateway_503_count(unavailable_gateway_health)
    with scale.authorize(
        client_customer["api_key"],
        base_url=unavailable_gateway,
        max_retries=2,
        backoff=0.01,
        max_backoff=0.05,
    ) as api:
        started = time.monotonic()
        error = raised(lambda: api.tasks.get("0123456789abcdef01234567"), scale.ServiceUnavailable)
    assert error.status_code == 503 and "did not answer in time" in error.message
    # One call, three requests: the first and two retries (Retry-After capped by max_backoff).
    assert gateway_503_count(unavailable_gateway_health) - before == 3
    assert time.monotonic() - started < 10


def test_unreachable_server_is_a_connection_error() -> None:
    with scale.authorize(
        "live_key", base_url=f"http://127.0.0.1:{free_port()}", max_retries=1, backoff=0.01
    ) as api:
        error = raised(lambda: api.tasks.get("0123456789abcdef01234567"), scale.APIConnectionError)
    assert error.status_code is None


# -- the asyncio client -------------------------------------------------------------


async def test_async_client_creates_gets_lists_and_cancels(
    stack: Stack, client_customer: dict[str, Any]
) -> None:
    async with scale.authorize_async(client_customer["api_key"], base_url=stack.gateway_url) as api:
        created = [await api.tasks.createCategorization(**BIG_OR_SMALL) for _ in range(3)]
        assert all(task.status == "pending" for task in created)
        assert await api.tasks.get(created[0].task_id) == created[0]
        listed = [task.task_id async for task in api.tasks.list(limit=2)]
        assert listed == [task.task_id for task in reversed(created)]
        assert (await api.tasks.cancel(created[0].task_id)).status == "canceled"
        with pytest.raises(scale.NotFound) as caught:
            await api.tasks.get("0123456789abcdef01234567")
        assert caught.value.status_code == 404
        with pytest.raises(scale.BadRequest):
            await api.tasks.create_categorization(**{**BIG_OR_SMALL, "categories": ["big"]})


async def test_async_client_retries_503(unavailable_gateway: str) -> None:
    async with scale.authorize_async(
        "live_key", base_url=unavailable_gateway, max_retries=1, backoff=0.01, max_backoff=0.05
    ) as api:
        with pytest.raises(scale.ServiceUnavailable):
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
        async with scale.authorize_async(
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
            assert scale.verify_callback(secret, callback.headers, callback.body)
            assert not scale.verify_callback(secret, callback.headers, callback.body + b"&x=1")
            assert not scale.verify_callback("whsec_wrong", callback.headers, callback.body)
            payload = scale.parse_callback(callback.body, callback.headers["Content-Type"])
            assert payload["task_id"] == task.task_id
            assert payload["response"]["category"] == "big"
            assert payload["task"]["params"]["categories"] == ["big", "small"]

            done = await api.tasks.get(task.task_id)
            assert done.status == "completed" and done.completed_at is not None
            assert done.response == scale.TaskResponse(category="big", status_code=200)

            async def delivered() -> scale.CallbackAttempt | None:
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

            with pytest.raises(scale.Conflict) as caught:
                await api.tasks.cancel(task.task_id)
            assert caught.value.status_code == 409
    finally:
        await receiver.stop()
