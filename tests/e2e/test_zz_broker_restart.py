"""The services ride out a RabbitMQ restart: requests fail fast with 503 while the broker
is away, and everything works again once it is back, without restarting any service.

Named to run last: it restarts the broker every other test depends on.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import aiohttp
import pytest

from tests.support.services import wait_for

from .conftest import SEED_TASK_JSON, Api, Stack

pytestmark = pytest.mark.e2e


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=120)


def broker_is_ours() -> bool:
    """Only restart a broker we run ourselves (CI, `make services-up`), as root."""
    return (
        shutil.which("rabbitmqctl") is not None
        and os.geteuid() == 0
        and (
            os.environ.get("AMQP_URL", "").find("127.0.0.1") >= 0 or os.environ.get("CI") == "true"
        )
    )


async def all_ready(stack: Stack) -> bool:
    async with aiohttp.ClientSession() as session:
        for url in stack.health_urls.values():
            async with session.get(url + "/readyz") as response:
                if response.status != 200:
                    return False
    return True


@pytest.mark.skipif(not broker_is_ours(), reason="needs a local RabbitMQ this test may restart")
async def test_services_recover_after_a_broker_restart(
    api: Api, stack: Stack, customer: dict
) -> None:
    key = customer["api_key"]
    before = await api.post("/v1/task/categorize", key, json=SEED_TASK_JSON)
    assert before.status == 200

    rabbitmqctl("stop_app")
    try:
        during = await api.get("/v1/tasks", key)
        assert during.status == 503, during
        assert during.headers["Retry-After"]
        assert (await api.get("/readyz")).status == 503
    finally:
        rabbitmqctl("start_app")
        rabbitmqctl("await_startup")

    await wait_for(
        lambda: all_ready(stack),
        timeout=60,
        interval=0.5,
        ignore=(aiohttp.ClientError,),
        message="every service ready again after the broker restart",
    )

    async def create_works() -> bool:
        reply = await api.post("/v1/task/categorize", key, json=SEED_TASK_JSON)
        return reply.status == 200

    await wait_for(
        create_works, timeout=30, interval=0.5, message="creating a task after the restart"
    )
    listed = await api.get("/v1/tasks", key)
    assert before.body["task_id"] in {task["task_id"] for task in listed.body}
    for process in stack.processes.values():
        assert process.running, process.log_tail()
