"""A stack of a test module's own: a gateway and task-store(s) on a RabbitMQ vhost and a
MongoDB database that no other test uses.

The worker pool is global (docs/reference/contract.md §6): a test that claims work gets the oldest
pending task of *anyone*, and the session `stack` holds other tests' tasks. A stack of
its own gives a test a pool that holds only its tasks, and settings of its own (a lease
short enough to watch expire, a crash hook) without slowing down everyone else.

Both the vhost and the database are needed: task-stores on one vhost are competing
consumers of one command queue, so two stacks sharing a vhost would answer each other's
commands from the wrong database.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pymongo
import pytest
from conftest import _Containers, _session_vhost, with_database  # tests/conftest.py

from .conftest import Api, Stack, service_env, start_service


@contextlib.contextmanager
def own_amqp_url(name: str, session_id: str, containers: _Containers) -> Iterator[str]:
    """A vhost of its own on the test broker (rabbitmqctl), or a broker of its own
    (Docker) when the broker comes from a container."""
    base = os.environ.get("AMQP_URL")
    if not base:
        yield containers.rabbitmq_url()
        return
    with _session_vhost(base, f"{session_id}_{name}") as url:
        if url == base:
            reason = (
                f"the `{name}` stack needs a RabbitMQ vhost of its own, and rabbitmqctl is "
                "not usable here (run as root next to the broker, as CI does)"
            )
            if os.environ.get("CI") == "true":
                pytest.fail(reason, pytrace=False)
            pytest.skip(reason)
        yield url


@contextlib.contextmanager
def isolated_stack(
    name: str,
    *,
    mongodb_url: str,
    session_id: str,
    containers: _Containers,
    taskstores: int = 1,
    notifier: bool = False,
    **settings: object,
) -> Iterator[Stack]:
    """Gateway + `taskstores` task-stores (and a notifier if asked) with `settings` as
    environment."""
    database = f"{urlsplit(mongodb_url).path.strip('/')}_{name}"
    own_mongodb_url = with_database(mongodb_url, database)
    with own_amqp_url(name, session_id, containers) as amqp_url:
        env = service_env(
            amqp_url,
            own_mongodb_url,
            **{
                "OUTBOX_RELAY_INTERVAL_SECONDS": 1,
                "RPC_TIMEOUT_SECONDS": 10,
                "AUTH_CACHE_SECONDS": 1,
                **settings,
            },
        )
        stack = Stack(env=env, gateway_url="")
        try:
            for number in range(1, taskstores + 1):
                process, url = start_service("humantask-taskstore", env, "HEALTH_PORT")
                stack.processes[f"taskstore-{number}"], stack.health_urls[f"taskstore-{number}"] = (
                    process,
                    url,
                )
            if notifier:
                stack.processes["notifier"], stack.health_urls["notifier"] = start_service(
                    "humantask-notifier", env, "HEALTH_PORT"
                )
            stack.processes["gateway"], stack.gateway_url = start_service(
                "humantask-gateway", env, "GATEWAY_PORT"
            )
            stack.health_urls["gateway"] = stack.gateway_url
            yield stack
        finally:
            for process in reversed(list(stack.processes.values())):
                process.terminate(timeout=30)
            client: pymongo.MongoClient[Any] = pymongo.MongoClient(own_mongodb_url)
            with client:
                client.drop_database(database)
    # Graceful SIGTERM: whatever still belonged to the stack drained and exited cleanly.
    for process in stack.processes.values():
        assert process.returncode == 0, process.log_tail()


@contextlib.asynccontextmanager
async def api_for(stack: Stack) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield Api(session, stack.gateway_url)


async def cancel_pending(api: Api, key: str) -> None:
    """Cancel every pending task of the customer with `key`: leave the pool empty."""
    while True:
        page = await api.get("/v1/tasks?status=pending&limit=100", key)
        assert page.status == 200, page
        if not page.body:
            return
        for task in page.body:
            canceled = await api.post(f"/v1/task/{task['task_id']}/cancel", key)
            assert canceled.status in (200, 409), canceled


@contextlib.asynccontextmanager
async def empty_pool(api: Api, key: str) -> AsyncIterator[None]:
    """The pool holds only what the test inside creates (as the customer with `key`)."""
    await cancel_pending(api, key)
    yield
    await cancel_pending(api, key)
