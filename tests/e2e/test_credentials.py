"""Credentials over their lifetime (docs/reference/contract.md §2–3, §7), on the deployment's
permission model.

A stack of its own (a database of its own; a vhost with the per-service RabbitMQ users
of `broker_definitions`, as docker-compose.yml provisions them): a task-store, a notifier
and two gateways, each logged in as its own user, and `humantask-admin` as the admin's.
That the round trips below work at all shows the permissions are enough; the gateways
cache credentials for ten minutes, so only the `credential.changed` event can explain a
revoked key being refused within 2 seconds on both.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aio_pika
import aiohttp
import pymongo
import pytest
import standardwebhooks
from conftest import with_database  # tests/conftest.py

from humantask_shared.core.credentials import credential_hash, new_api_key
from humantask_shared.core.errors import Unauthorized
from humantask_shared.core.messages.base import Command, ResultT
from humantask_shared.core.messages.commands import (
    CreateCustomer,
    EnsureCustomer,
    GetCallbackSecret,
    RotateCallbackSecret,
)
from humantask_shared.core.topology import COMMANDS_EXCHANGE
from humantask_shared.runtime.broker import open_channel
from humantask_shared.runtime.command_client import CommandClient
from humantask_shared.runtime.declaring import declare_exchange
from tests.support.broker_users import BrokerUsers, broker_users
from tests.support.callbacks import Answer, Received, ScriptedReceiver
from tests.support.services import free_port, wait_for

from .conftest import BIN, SEED_TASK_JSON, Api, Stack, service_env, start_service

pytestmark = pytest.mark.e2e

# docs/reference/contract.md §3: a revoked or rotated-away credential is 401 within 2 s.
WITHIN_SECONDS = 2
NO_LEASE_TASK = "0" * 24  # releasing it: 409 for a known worker, 401 for anyone else
NO_TASK = f"/v1/task/{'0' * 24}"  # 404 for a known customer, 401 for anyone else


@dataclass
class LeastPrivilegeStack:
    stack: Stack
    users: BrokerUsers
    gateways: list[str]
    gateway_health: list[str]

    def admin(self, *args: str) -> dict[str, Any]:
        return self.stack.admin(*args)

    def admin_lines(self, *args: str) -> list[dict[str, Any]]:
        return admin_lines(self.stack, *args)


def admin_lines(stack: Stack, *args: str) -> list[dict[str, Any]]:
    """`humantask-admin` as the admin's broker user: each line of its output."""
    result = subprocess.run(
        [str(BIN / "humantask-admin"), *args],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture(scope="module")
def secured(amqp_url: str, mongodb_url: str) -> Iterator[LeastPrivilegeStack]:
    database = f"{urlsplit(mongodb_url).path.strip('/')}_credentials"
    own_mongodb_url = with_database(mongodb_url, database)
    with broker_users(amqp_url, "creds") as users:

        def env(service: str, **settings: object) -> dict[str, str]:
            return service_env(
                users.url(service),
                own_mongodb_url,
                OUTBOX_RELAY_INTERVAL_SECONDS=1,
                RPC_TIMEOUT_SECONDS=10,
                **users.service_env(service),
                **settings,
            )

        stack = Stack(env=env("admin"), gateway_url="")
        try:
            stack.processes["taskstore"], _ = start_service(
                "humantask-taskstore", env("taskstore"), "HEALTH_PORT"
            )
            stack.processes["notifier"], _ = start_service(
                "humantask-notifier",
                env(
                    "notifier",
                    CALLBACK_ALLOW_PRIVATE_NETWORKS="true",
                    CALLBACK_RETRY_DELAY_SECONDS=1,
                    CALLBACK_TIMEOUT_SECONDS=2,
                ),
                "HEALTH_PORT",
            )
            gateways, health = [], []
            for number in (1, 2):
                port = str(free_port())
                process, url = start_service(
                    "humantask-gateway",
                    env("gateway", AUTH_CACHE_SECONDS=600, HEALTH_PORT=port),
                    "GATEWAY_PORT",
                )
                stack.processes[f"gateway-{number}"] = process
                gateways.append(url)
                health.append(f"http://127.0.0.1:{port}")
            stack.gateway_url = gateways[0]
            yield LeastPrivilegeStack(stack, users, gateways, health)
        finally:
            for process in reversed(list(stack.processes.values())):
                process.terminate(timeout=30)
            with pymongo.MongoClient(own_mongodb_url) as client:
                client.drop_database(database)
    for name, process in stack.processes.items():
        assert process.returncode == 0, f"{name}: {process.log_tail()}"


@pytest.fixture(scope="module")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


def apis(session: aiohttp.ClientSession, secured: LeastPrivilegeStack) -> list[Api]:
    return [Api(session, url) for url in secured.gateways]


async def statuses(apis_: list[Api], method: str, path: str, key: str) -> list[int]:
    return [(await api.request(method, path, key)).status for api in apis_]


async def refused_everywhere_within(apis_: list[Api], method: str, path: str, key: str) -> float:
    """Seconds until every gateway answers 401; fails past WITHIN_SECONDS."""
    started = time.monotonic()

    async def all_refused() -> bool:
        return set(await statuses(apis_, method, path, key)) == {401}

    await wait_for(
        all_refused,
        timeout=WITHIN_SECONDS,
        interval=0.05,
        message=f"{method} {path} refused (401) on every gateway",
    )
    return time.monotonic() - started


async def test_a_revoked_api_key_is_refused_on_every_gateway_within_2_seconds(
    http: aiohttp.ClientSession, secured: LeastPrivilegeStack
) -> None:
    gateways = apis(http, secured)
    customer = secured.admin("customers", "create", "--name", "revoked soon")
    key = customer["api_key"]
    assert await statuses(gateways, "GET", NO_TASK, key) == [404, 404]  # known, now cached
    (revoked,) = secured.admin_lines("customers", "revoke", customer["customer_id"])
    assert revoked["revoked"] is True and revoked["customer_id"] == customer["customer_id"]
    await refused_everywhere_within(gateways, "GET", NO_TASK, key)
    # For good: it stays refused, and revoking again changes nothing.
    assert secured.admin_lines("customers", "revoke", customer["customer_id"])[0]["revoked"]
    assert await statuses(gateways, "GET", NO_TASK, key) == [401, 401]
    listed = {line["id"]: line for line in secured.admin_lines("customers", "list")}
    assert listed[customer["customer_id"]]["revoked"] is True


async def test_admin_lists_customers_and_workers_one_per_line_and_never_a_secret(
    secured: LeastPrivilegeStack,
) -> None:
    customer = secured.admin("customers", "create", "--name", "listed")
    worker = secured.admin("workers", "create", "--name", "listed worker")
    customers = secured.admin_lines("customers", "list")
    (line,) = [line for line in customers if line["id"] == customer["customer_id"]]
    assert line == {
        "id": customer["customer_id"],
        "customer_id": customer["customer_id"],
        "name": "listed",
        "created": line["created"],
        "revoked": False,
        "revoked_at": None,
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["created"])
    workers = secured.admin_lines("workers", "list")
    assert [w["name"] for w in workers if w["id"] == worker["worker_id"]] == ["listed worker"]
    everything = json.dumps([customers, workers])
    for secret in (
        customer["api_key"],
        customer["callback_secret"],
        worker["token"],
        credential_hash(customer["api_key"]),
        credential_hash(worker["token"]),
    ):
        assert secret not in everything
    # An unknown id is an error, said on stderr, with a failing exit status.
    failed = subprocess.run(
        [str(BIN / "humantask-admin"), "customers", "revoke", "0" * 24],
        env=secured.stack.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert failed.returncode != 0 and "no customer" in failed.stderr and not failed.stdout


async def test_a_rotated_api_key_replaces_the_old_one_within_2_seconds(
    http: aiohttp.ClientSession, secured: LeastPrivilegeStack
) -> None:
    gateways = apis(http, secured)
    customer = secured.admin("customers", "create", "--name", "rotating")
    old = customer["api_key"]
    created = await gateways[0].post("/v1/task/categorize", old, json=SEED_TASK_JSON)
    assert created.status == 200
    assert await statuses(gateways, "GET", NO_TASK, old) == [404, 404]
    rotated = secured.admin("customers", "rotate-key", customer["customer_id"])
    assert rotated["customer_id"] == customer["customer_id"]
    new = rotated["api_key"]
    assert re.fullmatch(r"live_[0-9a-f]{32}", new) and new != old
    await refused_everywhere_within(gateways, "GET", NO_TASK, old)
    # The same customer: its tasks are still there.
    for api in gateways:
        found = await api.get(f"/v1/task/{created.body['task_id']}", new)
        assert found.status == 200, found
    # Leave the worker pool empty for the callback test below.
    canceled = await gateways[1].post(f"/v1/task/{created.body['task_id']}/cancel", new)
    assert canceled.status == 200, canceled


async def test_a_workers_token_is_revoked_and_rotated_the_same_way(
    http: aiohttp.ClientSession, secured: LeastPrivilegeStack
) -> None:
    gateways = apis(http, secured)
    release = f"/v1/work/{NO_LEASE_TASK}/release"
    worker = secured.admin("workers", "create", "--name", "rotating worker")
    old = worker["token"]
    assert await statuses(gateways, "POST", release, old) == [409, 409]  # known, and cached
    rotated = secured.admin("workers", "rotate-token", worker["worker_id"])
    assert rotated["worker_id"] == worker["worker_id"] and rotated["token"] != old
    await refused_everywhere_within(gateways, "POST", release, old)
    assert await statuses(gateways, "POST", release, rotated["token"]) == [409, 409]

    (revoked,) = secured.admin_lines("workers", "revoke", worker["worker_id"])
    assert revoked["revoked"] is True
    await refused_everywhere_within(gateways, "POST", release, rotated["token"])
    # A revoked worker gets no new token.
    failed = subprocess.run(
        [str(BIN / "humantask-admin"), "workers", "rotate-token", worker["worker_id"]],
        env=secured.stack.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert failed.returncode != 0 and "revoked" in failed.stderr


async def test_callbacks_are_signed_with_the_rotated_secret_from_then_on(
    http: aiohttp.ClientSession, secured: LeastPrivilegeStack
) -> None:
    """Two completions with a rotation between them; the official Standard Webhooks
    library verifies each with the secret of its time."""
    api = apis(http, secured)[0]
    customer = secured.admin("customers", "create", "--name", "secret rotation")
    worker = secured.admin("workers", "create", "--name", "secret rotation")["token"]
    receiver = await ScriptedReceiver().start()
    try:

        async def complete(path: str) -> str:
            created = await api.post(
                "/v1/task/categorize",
                customer["api_key"],
                json={**SEED_TASK_JSON, "callback_url": receiver.url(path)},
            )
            assert created.status == 200, created
            task_id = created.body["task_id"]
            claimed = await api.post("/v1/work/claim", worker)
            assert claimed.status == 200 and claimed.body["task_id"] == task_id, claimed
            submitted = await api.post(
                f"/v1/work/{task_id}/submit", worker, json={"category": "big"}
            )
            assert submitted.status == 200, submitted
            return task_id

        # The first callback fails once: both attempts are one webhook message.
        receiver.script("/before", Answer(503), Answer(200))
        first_task = await complete("/before")
        attempts = await receiver.wait_for_requests("/before", 2, timeout=30)
        old = standardwebhooks.Webhook(customer["callback_secret"])
        for attempt in attempts:
            old.verify(attempt.body, dict(attempt.headers), json_parse=False)
            assert attempt.headers["webhook-id"] == first_task
        assert [a.headers["X-Callback-Attempt"] for a in attempts] == ["1", "2"]

        rotated = secured.admin(
            "customers", "rotate-secret", customer["customer_id"], "--overlap", "0"
        )
        assert rotated["customer_id"] == customer["customer_id"]
        assert rotated["previous_secret_signs_until"] is None
        new_secret = rotated["callback_secret"]
        assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{43}=", new_secret)
        assert new_secret != customer["callback_secret"]

        receiver.script("/after", Answer(200))
        second_task = await complete("/after")
        (delivered,) = await receiver.wait_for_requests("/after", 1, timeout=30)
        assert delivered.headers["webhook-id"] == second_task
        standardwebhooks.Webhook(new_secret).verify(
            delivered.body, dict(delivered.headers), json_parse=False
        )
        with pytest.raises(standardwebhooks.WebhookVerificationError):
            old.verify(delivered.body, dict(delivered.headers), json_parse=False)
    finally:
        await receiver.stop()


async def test_during_a_rotations_overlap_callbacks_verify_with_either_secret(
    http: aiohttp.ClientSession, secured: LeastPrivilegeStack
) -> None:
    """`rotate-secret --overlap`: until the window ends callbacks carry both signatures,
    so a receiver holding either secret verifies them (the official Standard Webhooks
    library); after it, only the new secret's."""
    api = apis(http, secured)[0]
    customer = secured.admin("customers", "create", "--name", "secret overlap")
    worker = secured.admin("workers", "create", "--name", "secret overlap")["token"]
    receiver = await ScriptedReceiver().start()
    overlap = 10
    try:

        async def complete(path: str) -> Received:
            created = await api.post(
                "/v1/task/categorize",
                customer["api_key"],
                json={**SEED_TASK_JSON, "callback_url": receiver.url(path)},
            )
            assert created.status == 200, created
            claimed = await api.post("/v1/work/claim", worker)
            assert claimed.status == 200, claimed
            task_id = claimed.body["task_id"]
            submitted = await api.post(
                f"/v1/work/{task_id}/submit", worker, json={"category": "big"}
            )
            assert submitted.status == 200, submitted
            (request,) = await receiver.wait_for_requests(path, 1, timeout=30)
            return request

        rotated = secured.admin(
            "customers", "rotate-secret", customer["customer_id"], "--overlap", f"{overlap}s"
        )
        ends = time.monotonic() + overlap
        assert rotated["previous_secret_signs_until"] is not None
        old = standardwebhooks.Webhook(customer["callback_secret"])
        new = standardwebhooks.Webhook(rotated["callback_secret"])
        during = await complete("/during")
        assert during.arrived < ends, "the callback came after the window: a slow machine"
        assert len(during.headers["webhook-signature"].split(" ")) == 2
        for receiver_secret in (old, new):
            receiver_secret.verify(during.body, dict(during.headers), json_parse=False)
        await wait_for(lambda: time.monotonic() > ends + 0.5, timeout=overlap + 5)
        after = await complete("/after")
        new.verify(after.body, dict(after.headers), json_parse=False)
        with pytest.raises(standardwebhooks.WebhookVerificationError):
            old.verify(after.body, dict(after.headers), json_parse=False)
    finally:
        await receiver.stop()


async def test_the_task_store_takes_each_command_only_from_its_sender(
    secured: LeastPrivilegeStack,
) -> None:
    """The broker vouches for a command's user_id; the task-store checks it against the
    command's senders: the gateway cannot create customers (with the demo off, not even
    through `customer.ensure`) or read callback secrets."""

    async def send(service: str, command: Command[ResultT]) -> ResultT:
        connection = await aio_pika.connect_robust(secured.users.url(service))
        async with connection:
            channel = await open_channel(connection)
            exchange = await declare_exchange(channel, COMMANDS_EXCHANGE)
            client = CommandClient(channel, exchange, secured.users.name(service), 10)
            await client.start(service)
            return await client.send(command)

    customer = secured.admin("customers", "create", "--name", "guarded")
    create = CreateCustomer(
        customer_name="by the gateway", credential_hash=credential_hash(new_api_key())
    )
    with pytest.raises(Unauthorized):
        await send("gateway", create)
    with pytest.raises(Unauthorized):
        await send("gateway", GetCallbackSecret(customer_id=customer["customer_id"]))
    # The demo is off in this task-store: the gateway's `customer.ensure` makes nobody.
    minted = new_api_key()
    ensure = EnsureCustomer(customer_name="minted", credential_hash=credential_hash(minted))
    with pytest.raises(Unauthorized, match="HUMANTASK_DEMO_API_KEY"):
        await send("gateway", ensure)
    assert "minted" not in [line["name"] for line in secured.admin_lines("customers", "list")]
    with pytest.raises(Unauthorized):
        await send("notifier", RotateCallbackSecret(customer_id=customer["customer_id"]))
    answer = await send("notifier", GetCallbackSecret(customer_id=customer["customer_id"]))
    assert answer.callback_secret == customer["callback_secret"]


async def test_metrics_are_served_on_the_health_port_only(
    http: aiohttp.ClientSession, secured: LeastPrivilegeStack
) -> None:
    api = Api(http, secured.gateways[0])
    assert (await api.get("/metrics")).status == 404
    assert (await api.get("/readyz")).status == 200
    health = Api(http, secured.gateway_health[0])
    metrics = await health.get("/metrics")
    assert metrics.status == 200 and "# TYPE" in metrics.body
    assert (await health.get("/readyz")).status == 200
