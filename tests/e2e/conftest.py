"""End-to-end fixtures: the real services as processes, against real RabbitMQ and MongoDB."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.services import ServiceProcess, free_port

DEMO_API_KEY = "live_e2e_demo_key"
BIN = Path(sys.executable).parent


@dataclass
class Stack:
    """The running services and how to reach them."""

    env: dict[str, str]
    gateway_url: str
    processes: dict[str, ServiceProcess] = field(default_factory=dict)
    health_urls: dict[str, str] = field(default_factory=dict)

    def admin(self, *args: str) -> dict[str, Any]:
        """Run `humantask-admin` against the stack's database; its JSON output."""
        result = subprocess.run(
            [str(BIN / "humantask-admin"), *args],
            env={**self.env},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return json.loads(result.stdout)


def service_env(amqp_url: str, mongodb_url: str, **extra: object) -> dict[str, str]:
    import os

    env = {key: value for key, value in os.environ.items()}
    env.update(AMQP_URL=amqp_url, MONGODB_URL=mongodb_url, LOG_LEVEL="INFO")
    env.update({key: str(value) for key, value in extra.items()})
    return env


def start_service(
    name: str, env: Mapping[str, str], port_variable: str
) -> tuple[ServiceProcess, str]:
    """Start `name` on a free port; returns the process and its base URL once ready.

    A gateway also gets a free HEALTH_PORT (its /metrics port) unless `env` names one."""
    port = free_port()
    extra = {port_variable: str(port)}
    if port_variable == "GATEWAY_PORT" and "HEALTH_PORT" not in env:
        extra["HEALTH_PORT"] = str(free_port())
    process = ServiceProcess(name, {**env, **extra}).start()
    base_url = f"http://127.0.0.1:{port}"
    process.wait_ready(f"{base_url}/readyz", deadline_seconds=60)
    return process, base_url


@pytest.fixture(scope="session")
def stack(amqp_url: str, mongodb_url: str) -> Iterator[Stack]:
    env = service_env(
        amqp_url,
        mongodb_url,
        OUTBOX_RELAY_INTERVAL_SECONDS=1,
        RPC_TIMEOUT_SECONDS=10,
        AUTH_CACHE_SECONDS=1,
        # Short, so that retries are quick to test; the receivers run on 127.0.0.1.
        CALLBACK_RETRY_DELAY_SECONDS=2,
        CALLBACK_TIMEOUT_SECONDS=1,
        CALLBACK_ALLOW_PRIVATE_NETWORKS="true",
    )
    # The gateway makes sure of the demo customer, which the task-store makes for this key
    # only. Not in `env`: the other gateways tests start would wait for it at start.
    demo = {**env, "HUMANTASK_DEMO_API_KEY": DEMO_API_KEY}
    taskstore, taskstore_url = start_service("humantask-taskstore", demo, "HEALTH_PORT")
    notifier, notifier_url = start_service("humantask-notifier", env, "HEALTH_PORT")
    gateway, gateway_url = start_service("humantask-gateway", demo, "GATEWAY_PORT")
    stack = Stack(
        env=env,
        gateway_url=gateway_url,
        processes={"taskstore": taskstore, "notifier": notifier, "gateway": gateway},
        health_urls={"taskstore": taskstore_url, "notifier": notifier_url, "gateway": gateway_url},
    )

    # A test may swap a process for another (a restarted notifier): stop what runs then.
    def in_stop_order() -> list[ServiceProcess]:
        return [stack.processes[name] for name in ("gateway", "notifier", "taskstore")]

    try:
        yield stack
    finally:
        for process in in_stop_order():
            process.terminate(timeout=30)
    # Graceful SIGTERM: each service drained and exited cleanly.
    for process in in_stop_order():
        assert process.returncode == 0, process.log_tail()


@dataclass
class Reply:
    status: int
    headers: Mapping[str, str]
    body: Any

    def __repr__(self) -> str:
        return f"<Reply {self.status} {self.body!r}>"


class Api:
    """A thin HTTP client for the gateway, as a customer or worker would call it."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session = session
        self.base_url = base_url

    async def request(self, method: str, path: str, key: str | None = None, **kwargs: Any) -> Reply:
        if key is not None:
            token = base64.b64encode(f"{key}:".encode()).decode()
            kwargs["headers"] = {"Authorization": f"Basic {token}", **kwargs.get("headers", {})}
        url = path if path.startswith("http") else self.base_url + path
        async with self.session.request(method, url, **kwargs) as response:
            raw = await response.read()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
            return Reply(response.status, response.headers, body)

    async def get(self, path: str, key: str | None = None, **kwargs: Any) -> Reply:
        return await self.request("GET", path, key, **kwargs)

    async def post(self, path: str, key: str | None = None, **kwargs: Any) -> Reply:
        return await self.request("POST", path, key, **kwargs)


@pytest.fixture(scope="session")
async def api(stack: Stack) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield Api(session, stack.gateway_url)


@pytest.fixture
def customer(stack: Stack) -> dict[str, Any]:
    """A new customer of its own: `customer_id`, `api_key`, `callback_secret`."""
    return stack.admin("customers", "create", "--name", "e2e customer")


@pytest.fixture(scope="session")
def other_customer(stack: Stack) -> dict[str, Any]:
    return stack.admin("customers", "create", "--name", "someone else")


SEED_CREATE_FORM = [
    ("callback_url", "http://www.example.com/callback"),
    ("instruction", "Is this company public or private?"),
    ("attachment_type", "website"),
    ("attachment", "http://www.google.com/"),
    ("categories[]", "public"),
    ("categories[]", "private"),
]

SEED_TASK_JSON = {
    "callback_url": "http://www.example.com/test_callback",
    "instruction": "Would you say this item is big or small?",
    "attachment_type": "text",
    "attachment": "car",
    "categories": ["big", "small"],
}
