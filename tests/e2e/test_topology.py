"""The AsyncAPI contract covers every queue a running system declares.

The three services run on a vhost of their own; every queue in it (as `rabbitmqctl
list_queues` sees it) must be a channel address of `contracts/asyncapi.yaml`, a
per-process or per-setting queue matching its parameterised address. Under
`AMQP_QUEUE_TYPE=quorum` the durable ones are quorum queues, the exclusive ones classic,
and the API still answers.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pymongo
import pytest
import yaml
from conftest import _Containers, with_database  # tests/conftest.py

from tests.support.rabbitmq import queue_types

from .conftest import SEED_TASK_JSON, Stack, service_env, start_service
from .isolated import api_for, own_amqp_url

pytestmark = pytest.mark.e2e

ASYNCAPI = Path(__file__).resolve().parents[2] / "contracts" / "asyncapi.yaml"
DEMO_KEY = "live_topology_demo_key"


def address_pattern(address: str) -> re.Pattern[str]:
    """`{owner}.replies.{id}` matches `gateway.replies.0f3c...`; a plain address itself."""
    parts = re.split(r"\{\w+\}", address)
    return re.compile("[^.]+".join(re.escape(part) for part in parts))


def channel_addresses() -> list[str]:
    document: dict[str, Any] = yaml.safe_load(ASYNCAPI.read_text(encoding="utf-8"))
    return [channel["address"] for channel in document["channels"].values()]


def test_an_address_pattern_takes_parameters_and_nothing_else() -> None:
    assert address_pattern("{owner}.replies.{id}").fullmatch("gateway.replies.0f3c")
    assert not address_pattern("{owner}.replies.{id}").fullmatch("gateway.commands.0f3c")
    assert address_pattern("a.b-c").fullmatch("a.b-c")
    assert not address_pattern("a.b-c").fullmatch("aXb-c")


@contextlib.contextmanager
def running_system(
    name: str, mongodb_url: str, session_id: str, containers: _Containers, **settings: object
) -> Iterator[Stack]:
    """The three services on a vhost and a database of their own."""
    database = f"{urlsplit(mongodb_url).path.strip('/')}_{name}"
    own_mongodb_url = with_database(mongodb_url, database)
    with own_amqp_url(name, session_id, containers) as amqp_url:
        env = service_env(amqp_url, own_mongodb_url, HUMANTASK_DEMO_API_KEY=DEMO_KEY, **settings)
        stack = Stack(env=env, gateway_url="")
        try:
            for service in ("taskstore", "notifier"):
                stack.processes[service], _ = start_service(
                    f"humantask-{service}", env, "HEALTH_PORT"
                )
            stack.processes["gateway"], stack.gateway_url = start_service(
                "humantask-gateway", env, "GATEWAY_PORT"
            )
            yield stack
        finally:
            for service in ("gateway", "notifier", "taskstore"):
                if service in stack.processes:
                    stack.processes[service].terminate(timeout=30)
            with pymongo.MongoClient(own_mongodb_url) as client:
                client.drop_database(database)
    for process in stack.processes.values():
        assert process.returncode == 0, process.log_tail()


@pytest.fixture(params=["classic", "quorum"])
async def running_queues(
    request: pytest.FixtureRequest, mongodb_url: str, test_session_id: str, _containers: Any
) -> tuple[str, dict[str, str]]:
    """AMQP_QUEUE_TYPE and the queues (name -> type) of a system running with it, once it
    answered a request."""
    queue_type: str = request.param
    with running_system(
        f"topology_{queue_type}",
        mongodb_url,
        test_session_id,
        _containers,
        AMQP_QUEUE_TYPE=queue_type,
        CALLBACK_RETRY_DELAY_SECONDS=2,
    ) as stack:
        async with api_for(stack) as api:  # a command round trip through the queues
            created = await api.post("/v1/task/categorize", DEMO_KEY, json=SEED_TASK_JSON)
            assert created.status == 200, created
        return queue_type, queue_types(stack.env["AMQP_URL"])


async def test_every_queue_of_a_running_system_is_in_the_asyncapi_contract(
    running_queues: tuple[str, dict[str, str]],
) -> None:
    queue_type, queues = running_queues
    patterns = [address_pattern(address) for address in channel_addresses()]
    assert queues, "no queue listed"
    missing = [name for name in queues if not any(p.fullmatch(name) for p in patterns)]
    assert missing == [], f"queues the AsyncAPI contract does not describe: {missing}"
    # What a running system declares, one of each at least.
    for expected in (
        "taskstore.commands",
        "taskstore.commands.dead-letter",
        "notifier.commands",
        "notifier.task-completed",
        "notifier.callback-retry",
        "notifier.callback-retry.delay-2000ms",
    ):
        assert expected in queues
    assert any(re.fullmatch(r"gateway\.replies\.[0-9a-f]{32}", name) for name in queues)
    assert any(re.fullmatch(r"notifier\.credentials\.[0-9a-f]{32}", name) for name in queues)

    exclusive = {n for n in queues if ".replies." in n or ".credentials." in n}
    assert {queues[name] for name in exclusive} == {"classic"}
    assert {queues[name] for name in set(queues) - exclusive} == {queue_type}
