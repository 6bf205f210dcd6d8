"""Callbacks end to end (docs/reference/contract.md §7): the real
processes deliver to a real HTTP receiver, retry once, and keep the log.

Until workers complete tasks over HTTP, a test completes its task by publishing the
`task.completed` event the task-store would (`tests/support/callbacks.py`). The stack's
notifier runs with CALLBACK_RETRY_DELAY_SECONDS=2, CALLBACK_TIMEOUT_SECONDS=1 and private
networks allowed (the receiver is on 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aio_pika
import pytest
import standardwebhooks

from humantask_shared.core.credentials import new_callback_secret
from humantask_shared.core.messages.envelope import StampedEvent
from humantask_shared.core.models import CallbackFormat, Task
from humantask_shared.core.timeutil import parse_timestamp
from tests.support.callbacks import (
    SEED_CALLBACK,
    Answer,
    ScriptedReceiver,
    completed,
    example_receiver,
    publish_completion,
)
from tests.support.services import ServiceProcess, free_port, wait_for

from .conftest import SEED_TASK_JSON, Api, Stack, start_service

pytestmark = pytest.mark.e2e

example = example_receiver()


def retry_delay(stack: Stack) -> float:
    return float(stack.env["CALLBACK_RETRY_DELAY_SECONDS"])


def shape(value: Any) -> Any:
    """Keys and nesting, with every scalar replaced by its type."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return type(value).__name__


def as_form_strings(value: Any) -> Any:
    """What form encoding makes of a JSON value: every scalar a string."""
    if isinstance(value, dict):
        return {key: as_form_strings(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_form_strings(item) for item in value]
    return str(value)


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[ScriptedReceiver]:
    receiver = await ScriptedReceiver().start()
    yield receiver
    await receiver.stop()


@pytest.fixture(scope="module")
async def channel(amqp_url: str) -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        yield await connection.channel()


@dataclass(frozen=True)
class Completion:
    """A task of the test's customer, completed: its receiver path and its event."""

    path: str
    task: Task
    customer_id: str
    event: StampedEvent


CompleteTask = Callable[..., Awaitable[Completion]]


@pytest.fixture
async def complete_task(
    api: Api,
    customer: dict,
    receiver: ScriptedReceiver,
    channel: aio_pika.abc.AbstractChannel,
) -> AsyncIterator[CompleteTask]:
    """Creates a task whose callback goes to a new receiver path answering `answers`, then
    publishes its completion. Cancels the tasks afterwards: the task-store never saw the
    completions, and the worker pool is shared by every test."""
    created: list[str] = []

    async def complete(
        *answers: Answer,
        category: str = "big",
        callback_format: CallbackFormat = "form",
        callback_url: str | None = None,
    ) -> Completion:
        path = f"/callback/{uuid.uuid4().hex}"
        receiver.script(path, *answers)
        body = {
            **SEED_TASK_JSON,
            "callback_url": callback_url or receiver.url(path),
            "callback_format": callback_format,
        }
        reply = await api.post("/v1/task/categorize", customer["api_key"], json=body)
        assert reply.status == 200, reply
        created.append(reply.body["task_id"])
        task = completed(reply.body, category)
        event = await publish_completion(channel, customer["customer_id"], task, callback_format)
        return Completion(path, task, customer["customer_id"], event)

    yield complete
    for task_id in created:
        await api.post(f"/v1/task/{task_id}/cancel", customer["api_key"])


async def publish_again(
    channel: aio_pika.abc.AbstractChannel, completion: Completion, same_event: bool = True
) -> None:
    """The completion's event again (a redelivery), or a new event for the same task."""
    await publish_completion(
        channel,
        completion.customer_id,
        completion.task,
        event=completion.event if same_event else None,
    )


async def callback_log(api: Api, customer: dict, task_id: str) -> list[dict[str, Any]]:
    reply = await api.get(f"/v1/task/{task_id}/callbacks", customer["api_key"])
    assert reply.status == 200, reply
    return reply.body


async def wait_for_log(
    api: Api, customer: dict, task_id: str, count: int, timeout: float = 20
) -> list[dict[str, Any]]:
    async def logged() -> list[dict[str, Any]] | None:
        entries = await callback_log(api, customer, task_id)
        return entries if len(entries) >= count else None

    return await wait_for(
        logged,
        timeout=timeout,
        interval=0.1,
        message=f"{count} attempt(s) in the callback log of {task_id}",
    )


async def assert_no_more_requests(
    receiver: ScriptedReceiver, path: str, count: int, seconds: float
) -> None:
    """Watch `path` for `seconds`: it must still have exactly `count` requests."""
    deadline = time.monotonic() + seconds
    await wait_for(
        lambda: len(receiver.received(path)) > count or time.monotonic() >= deadline,
        timeout=seconds + 5,
        interval=0.1,
    )
    assert len(receiver.received(path)) == count, receiver.received(path)


def replace_notifier(stack: Stack, **env: str | None) -> ServiceProcess:
    """Start a notifier (the stack's env, plus `env`; None unsets a variable) that takes
    the stack notifier's place."""
    process, url = start_service("humantask-notifier", {**stack.env, **env}, "HEALTH_PORT")
    stack.processes["notifier"], stack.health_urls["notifier"] = process, url
    return process


def stop_notifier(stack: Stack) -> None:
    process = stack.processes["notifier"]
    assert process.terminate(timeout=30) == 0, process.log_tail()


async def test_a_200_is_one_attempt_with_the_seeds_body(
    api: Api,
    stack: Stack,
    customer: dict,
    complete_task: CompleteTask,
    receiver: ScriptedReceiver,
) -> None:
    done = await complete_task()

    (request,) = await receiver.wait_for_requests(done.path, 1, timeout=15)
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert b"task[params][categories][0]=big" in request.body
    assert b"response[category]=big" in request.body
    decoded = example.decode_form(request.body)
    assert shape(decoded) == shape(SEED_CALLBACK)  # same keys, same nesting, strings
    task_json = done.task.to_json_dict()
    assert decoded == as_form_strings(
        {"task": task_json, "response": task_json["response"], "task_id": done.task.task_id}
    )

    assert request.headers["X-Callback-Task-Id"] == done.task.task_id
    assert request.headers["X-Callback-Attempt"] == "1"
    assert re.fullmatch(r"humantask-notifier/\S+", request.headers["User-Agent"])

    (entry,) = await wait_for_log(api, customer, done.task.task_id, 1)
    assert entry["attempt"] == 1 and entry["delivered"] is True
    assert entry["status_code"] == 200 and entry["error"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["at"])
    await assert_no_more_requests(receiver, done.path, 1, retry_delay(stack) + 1)


async def test_the_signature_verifies_with_the_readme_receiver(
    customer: dict,
    complete_task: CompleteTask,
    receiver: ScriptedReceiver,
) -> None:
    done = await complete_task(category="small")

    (request,) = await receiver.wait_for_requests(done.path, 1, timeout=15)
    assert re.fullmatch(r"v1,[A-Za-z0-9+/]{43}=", request.headers["webhook-signature"])
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
    assert request.headers["webhook-id"] == done.task.task_id
    secret = customer["callback_secret"]
    assert example.verify_callback(secret, request.headers, request.body)
    assert not example.verify_callback(secret, request.headers, request.body + b"&x=1")
    assert not example.verify_callback(new_callback_secret(), request.headers, request.body)
    # The official Standard Webhooks library (PyPI `standardwebhooks`) verifies it too.
    standardwebhooks.Webhook(secret).verify(request.body, dict(request.headers), json_parse=False)


async def test_json_format_sends_the_same_object_as_json(
    customer: dict,
    complete_task: CompleteTask,
    receiver: ScriptedReceiver,
) -> None:
    done = await complete_task(callback_format="json")

    (request,) = await receiver.wait_for_requests(done.path, 1, timeout=15)
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == {
        "task": done.task.to_json_dict(),
        "response": {"category": "big", "status_code": 200},
        "task_id": done.task.task_id,
    }
    assert example.verify_callback(customer["callback_secret"], request.headers, request.body)


async def test_500_then_200_is_two_attempts_the_second_after_the_delay(
    api: Api,
    stack: Stack,
    customer: dict,
    complete_task: CompleteTask,
    receiver: ScriptedReceiver,
) -> None:
    done = await complete_task(Answer(500), Answer(200))

    first, second = await receiver.wait_for_requests(done.path, 2, timeout=20)
    assert second.arrived - first.arrived >= retry_delay(stack)
    assert [first.headers["X-Callback-Attempt"], second.headers["X-Callback-Attempt"]] == ["1", "2"]
    assert first.body == second.body
    assert example.verify_callback(customer["callback_secret"], second.headers, second.body)
    # One webhook message, two deliveries: the same webhook-id (receivers deduplicate on it).
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == done.task.task_id

    one, two = await wait_for_log(api, customer, done.task.task_id, 2)
    assert (one["attempt"], one["status_code"], one["delivered"]) == (1, 500, False)
    assert "500" in one["error"]
    assert (two["attempt"], two["status_code"], two["delivered"], two["error"]) == (
        2,
        200,
        True,
        None,
    )
    assert one["at"] < two["at"]


async def test_500_twice_is_two_failed_attempts_and_never_a_third(
    api: Api,
    stack: Stack,
    customer: dict,
    complete_task: CompleteTask,
    receiver: ScriptedReceiver,
) -> None:
    done = await complete_task(*[Answer(500)] * 5)

    await receiver.wait_for_requests(done.path, 2, timeout=20)
    log = await wait_for_log(api, customer, done.task.task_id, 2)
    assert [(e["attempt"], e["status_code"], e["delivered"]) for e in log] == [
        (1, 500, False),
        (2, 500, False),
    ]
    await assert_no_more_requests(receiver, done.path, 2, 2 * retry_delay(stack))
    assert len(await callback_log(api, customer, done.task.task_id)) == 2


async def test_a_receiver_slower_than_the_timeout_is_a_failed_attempt(
    api: Api,
    stack: Stack,
    customer: dict,
    complete_task: CompleteTask,
    receiver: ScriptedReceiver,
) -> None:
    timeout = float(stack.env["CALLBACK_TIMEOUT_SECONDS"])
    done = await complete_task(Answer(200, delay=timeout + 1), Answer(200))

    one, two = await wait_for_log(api, customer, done.task.task_id, 2)
    assert (one["status_code"], one["delivered"]) == (None, False)
    assert "timed out" in one["error"]
    assert (two["status_code"], two["delivered"]) == (200, True)
    assert len(receiver.received(done.path)) == 2


async def test_a_refused_connection_is_retried_once(
    api: Api,
    stack: Stack,
    customer: dict,
    complete_task: CompleteTask,
) -> None:
    done = await complete_task(callback_url=f"http://127.0.0.1:{free_port()}/callback")

    one, two = await wait_for_log(api, customer, done.task.task_id, 2)
    for attempt, entry in enumerate((one, two), start=1):
        assert (entry["attempt"], entry["status_code"], entry["delivered"]) == (
            attempt,
            None,
            False,
        )
        assert "could not connect" in entry["error"]
    gap = parse_timestamp(two["at"]) - parse_timestamp(one["at"])
    assert gap.total_seconds() >= retry_delay(stack)


async def test_a_private_address_is_refused_by_default(
    api: Api,
    stack: Stack,
    customer: dict,
    complete_task: CompleteTask,
    receiver: ScriptedReceiver,
) -> None:
    # The stack's notifier allows private networks (its receivers are local); for this
    # test the only notifier running is one without CALLBACK_ALLOW_PRIVATE_NETWORKS.
    stop_notifier(stack)
    try:
        replace_notifier(stack, CALLBACK_ALLOW_PRIVATE_NETWORKS=None)
        # 127.0.0.1 as given, and spelled so that only the HTTP client's own parsing (yarl's
        # IDNA mapping, inet_aton) turns it into 127.0.0.1: all refused by the same check.
        spellings = {
            "127.0.0.1": "127.0.0.1",
            "１２７．０．０．１": "127.0.0.1",
            "127。0。0。1": "127.0.0.1",
            "2130706433": "2130706433",
            "0x7f.1": "0x7f.1",
        }
        done = {}
        for spelling in spellings:
            path = f"/callback/{uuid.uuid4().hex}"
            url = receiver.url(path).replace("127.0.0.1", spelling)
            done[spelling] = (path, await complete_task(callback_url=url))

        for spelling, (path, completion) in done.items():
            one, two = await wait_for_log(api, customer, completion.task.task_id, 2)
            for entry in (one, two):
                assert (entry["status_code"], entry["delivered"]) == (None, False)
                assert entry["error"].startswith(
                    f"refused: {spellings[spelling]} is a loopback address"
                ), entry
            assert receiver.received(path) == []
    finally:
        stop_notifier(stack)
        replace_notifier(stack)


async def test_a_notifier_killed_between_attempts_still_makes_the_second_once(
    api: Api,
    stack: Stack,
    customer: dict,
    complete_task: CompleteTask,
    receiver: ScriptedReceiver,
) -> None:
    done = await complete_task(Answer(500), Answer(200))

    await wait_for_log(api, customer, done.task.task_id, 1)
    stack.processes["notifier"].send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    assert stack.processes["notifier"].wait(timeout=10) == -signal.SIGKILL
    replace_notifier(stack)

    _first, second = await receiver.wait_for_requests(done.path, 2, timeout=30)
    assert second.arrived > killed_at, "the second attempt came before the kill"
    assert second.headers["X-Callback-Attempt"] == "2"
    log = await wait_for_log(api, customer, done.task.task_id, 2)
    assert [(e["attempt"], e["delivered"]) for e in log] == [(1, False), (2, True)]
    await assert_no_more_requests(receiver, done.path, 2, 2 * retry_delay(stack))


async def test_a_duplicated_event_is_called_back_once(
    api: Api,
    stack: Stack,
    customer: dict,
    complete_task: CompleteTask,
    receiver: ScriptedReceiver,
    channel: aio_pika.abc.AbstractChannel,
) -> None:
    done = await complete_task(*[Answer(500)] * 5)
    await publish_again(channel, done)
    await publish_again(channel, done, same_event=False)  # another event, the same task

    await receiver.wait_for_requests(done.path, 2, timeout=20)
    await publish_again(channel, done)  # a late duplicate, after both attempts
    await assert_no_more_requests(receiver, done.path, 2, 2 * retry_delay(stack))
    assert len(await callback_log(api, customer, done.task.task_id)) == 2


async def test_two_notifiers_side_by_side_make_at_most_two_attempts(
    api: Api,
    stack: Stack,
    customer: dict,
    complete_task: CompleteTask,
    receiver: ScriptedReceiver,
    channel: aio_pika.abc.AbstractChannel,
) -> None:
    second_notifier, _ = start_service("humantask-notifier", stack.env, "HEALTH_PORT")
    try:
        # Slow failures widen the window in which both notifiers hold a copy.
        done = await complete_task(*[Answer(500, delay=0.3)] * 5)
        for _ in range(3):
            await publish_again(channel, done)

        await receiver.wait_for_requests(done.path, 2, timeout=30)
        await assert_no_more_requests(receiver, done.path, 2, 2 * retry_delay(stack))
        log = await wait_for_log(api, customer, done.task.task_id, 2)
        assert [entry["attempt"] for entry in log] == [1, 2]
    finally:
        assert second_notifier.terminate(timeout=30) == 0, second_notifier.log_tail()


async def test_the_log_is_empty_before_completion_and_404_for_others(
    api: Api,
    customer: dict,
    other_customer: dict,
) -> None:
    reply = await api.post("/v1/task/categorize", customer["api_key"], json=SEED_TASK_JSON)
    task_id = reply.body["task_id"]
    try:
        assert await callback_log(api, customer, task_id) == []
        theirs = await api.get(f"/v1/task/{task_id}/callbacks", other_customer["api_key"])
        assert theirs.status == 404 and theirs.body["status_code"] == 404
        unknown = await api.get(f"/v1/task/{'0' * 24}/callbacks", customer["api_key"])
        assert unknown.status == 404
        malformed = await api.get("/v1/task/not-an-id/callbacks", customer["api_key"])
        assert malformed.status == 404
        anonymous = await api.get(f"/v1/task/{task_id}/callbacks")
        assert anonymous.status == 401
    finally:
        await api.post(f"/v1/task/{task_id}/cancel", customer["api_key"])


class Tarpit:
    """A receiver that accepts connections and never answers (on 127.0.0.2: a host of
    its own, as far as the notifier's per-host limit is concerned)."""

    host = "127.0.0.2"

    def __init__(self) -> None:
        self.port = free_port()
        self.connections = 0  # so far
        self.open = 0  # now
        self.most_open = 0
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    def url(self) -> str:
        return f"http://{self.host}:{self.port}/callback/{uuid.uuid4().hex}"

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        self._writers.append(writer)
        try:
            await reader.read()  # the request, then nothing until the sender hangs up
        except ConnectionError:
            pass
        finally:
            self.open -= 1

    async def start(self) -> Tarpit:
        self._server = await asyncio.start_server(self._hold, self.host, self.port)
        return self

    async def stop(self) -> None:
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def test_a_tarpit_receiver_does_not_delay_another_customers_callback(
    api: Api,
    stack: Stack,
    other_customer: dict,
    complete_task: CompleteTask,
    receiver: ScriptedReceiver,
    channel: aio_pika.abc.AbstractChannel,
) -> None:
    """One customer's receiver accepts and never answers, with five times the notifier's
    messages in hand queued for it; another customer's callback, completed after them,
    is still delivered on its first attempt, within its timeout."""
    timeout = 3.0
    tarpit = await Tarpit().start()
    stop_notifier(stack)
    try:
        replace_notifier(
            stack,
            PREFETCH_COUNT="4",
            CALLBACK_TIMEOUT_SECONDS=str(timeout),
            CALLBACK_MAX_PER_HOST="2",
            CALLBACK_HOST_BUSY_DELAY_SECONDS="1",
        )
        for _ in range(20):
            await complete_task(callback_url=tarpit.url())
        await wait_for(lambda: tarpit.connections >= 2, timeout=15, message="the tarpit busy")

        path = f"/callback/{uuid.uuid4().hex}"
        body = {**SEED_TASK_JSON, "callback_url": receiver.url(path)}
        reply = await api.post("/v1/task/categorize", other_customer["api_key"], json=body)
        assert reply.status == 200, reply
        task_id = reply.body["task_id"]
        try:
            published = time.monotonic()
            await publish_completion(
                channel, other_customer["customer_id"], completed(reply.body, "big")
            )
            (request,) = await receiver.wait_for_requests(path, 1, timeout=3 * timeout)
            assert request.arrived - published < timeout
            assert request.headers["X-Callback-Attempt"] == "1"
            log = await wait_for_log(api, other_customer, task_id, 1)
            assert [(entry["attempt"], entry["delivered"]) for entry in log] == [(1, True)]
            # The tarpit never had more than its share of the notifier at once.
            assert tarpit.most_open <= 2
        finally:
            await api.post(f"/v1/task/{task_id}/cancel", other_customer["api_key"])
    finally:
        stop_notifier(stack)
        await tarpit.stop()
        replace_notifier(stack)
