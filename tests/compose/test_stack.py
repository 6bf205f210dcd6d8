"""A running compose stack keeps the promises of docs/operations/compose.md: every service
healthy, nothing published but the API, each service's broker and database user able to
do its work and no more, and (the demo) a callback delivered from a container to a
receiver on the Docker host, signed with the demo customer's secret."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pika
import pika.exceptions
import pymongo
import pymongo.errors
import pytest

from humantask_shared.core.broker_definitions import VHOST, default_user, password_env
from humantask_shared.core.topology import EVENTS_EXCHANGE, TASKSTORE_COMMANDS_QUEUE
from humantask_shared.runtime.database_users import NOTIFIER_USER, TASKSTORE_USER
from tests.e2e.clients.conftest import basic, cancel_pending_tasks
from tests.support.services import free_port, wait_until

from .conftest import ROOT, ComposeStack

SERVICES = ("rabbitmq", "taskstore", "notifier", "gateway")
JOBS = ("check-passwords", "broker-definitions", "database-users")
ACCESS_REFUSED = 403


def database_service(stack: ComposeStack) -> str:
    return "ferretdb" if stack.stage == "ferretdb" else "mongodb"


# -- the stack -------------------------------------------------------------------------


def test_every_service_is_healthy_and_the_jobs_succeeded(stack: ComposeStack) -> None:
    for service in (*SERVICES, database_service(stack)):
        state = stack.container(service)["State"]
        assert state["Status"] == "running", (service, state)
        assert state["Health"]["Status"] == "healthy", (service, state["Health"])
    for job in JOBS:
        state = stack.container(job)["State"]
        assert (state["Status"], state["ExitCode"]) == ("exited", 0), (job, state)


def test_only_the_api_port_is_published(stack: ComposeStack) -> None:
    published = {
        container["Config"]["Labels"]["com.docker.compose.service"]: {
            port: {binding["HostPort"] for binding in bindings}  # IPv4 and IPv6: one port
            for port, bindings in (container["NetworkSettings"]["Ports"] or {}).items()
            if bindings
        }
        for container in stack.containers
    }
    assert published.pop("gateway") == {"8080/tcp": {str(stack.api_port)}}
    assert not any(published.values()), published
    with httpx.Client(base_url=stack.api_url, timeout=10) as http:
        assert http.get("/healthz").status_code == 200


def test_postgresql_is_on_a_network_of_its_own(stack: ComposeStack) -> None:
    if stack.stage != "ferretdb":
        pytest.skip("only the FerretDB variant runs PostgreSQL")
    networks = set(stack.container("documentdb")["NetworkSettings"]["Networks"])
    assert networks == {f"{stack.project}_postgresql"}
    for service in ("taskstore", "notifier", "gateway"):
        assert not _connects(stack, service, "documentdb", 5432), service
    assert _connects(stack, "taskstore", "ferretdb", 27017)


def _connects(stack: ComposeStack, service: str, host: str, port: int) -> bool:
    code = f"import socket; socket.create_connection(({host!r}, {port}), timeout=5)"
    command = ["exec", "-T", service, "python", "-c", code]
    try:
        stack.compose(*command)
    except AssertionError:
        return False
    return True


# -- RabbitMQ: one user per service, each with the least it needs ----------------------


def _broker(stack: ComposeStack, service: str) -> pika.BlockingConnection:
    credentials = pika.PlainCredentials(
        default_user(service), stack.settings[password_env(service)]
    )
    return pika.BlockingConnection(
        pika.ConnectionParameters(
            stack.address("rabbitmq"), 5672, VHOST, credentials, connection_attempts=3
        )
    )


def _refused(error: pika.exceptions.AMQPError) -> bool:
    return isinstance(error, pika.exceptions.ChannelClosedByBroker) and (
        error.reply_code == ACCESS_REFUSED
    )


def _publish_event(stack: ComposeStack, service: str) -> pika.exceptions.AMQPError | None:
    """Publish an event nobody consumes (`task.compose_check`), with a confirm."""
    with _broker(stack, service) as connection:
        channel = connection.channel()
        channel.confirm_delivery()
        try:
            channel.basic_publish(EVENTS_EXCHANGE.name, "task.compose_check", b"{}")
        except pika.exceptions.AMQPError as error:
            return error
    return None


def _consume_commands(stack: ComposeStack, service: str) -> pika.exceptions.AMQPError | None:
    """Start consuming the task-store's commands, and stop at once (nothing is taken)."""
    with _broker(stack, service) as connection:
        channel = connection.channel()
        try:
            tag = channel.basic_consume(TASKSTORE_COMMANDS_QUEUE.name, lambda *_: None)
        except pika.exceptions.AMQPError as error:
            return error
        channel.basic_cancel(tag)
    return None


def test_there_is_no_guest_on_the_broker(stack: ComposeStack) -> None:
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        pika.BlockingConnection(
            pika.ConnectionParameters(
                stack.address("rabbitmq"), 5672, "/", pika.PlainCredentials("guest", "guest")
            )
        )


def test_only_the_taskstore_may_publish_events(stack: ComposeStack) -> None:
    assert _publish_event(stack, "taskstore") is None
    for service in ("gateway", "notifier", "admin"):
        error = _publish_event(stack, service)
        assert error is not None and _refused(error), (service, error)


def test_nobody_but_the_taskstore_reads_its_commands(stack: ComposeStack) -> None:
    for service in ("gateway", "notifier", "admin"):
        error = _consume_commands(stack, service)
        assert error is not None and _refused(error), (service, error)


# -- the database: one user per service --------------------------------------------------


def _database(stack: ComposeStack, user: str, password: str) -> pymongo.MongoClient[Any]:
    host = stack.address(database_service(stack))
    return pymongo.MongoClient(
        f"mongodb://{user}:{password}@{host}:27017/humantask", serverSelectionTimeoutMS=10000
    )


def test_each_service_logs_in_to_the_database_as_itself(stack: ComposeStack) -> None:
    for user, variable in (
        (TASKSTORE_USER, "MONGODB_TASKSTORE_PASSWORD"),
        (NOTIFIER_USER, "MONGODB_NOTIFIER_PASSWORD"),
    ):
        with _database(stack, user, stack.settings[variable]) as client:
            assert client.humantask.command("connectionStatus")["ok"] == 1
        with (
            _database(stack, user, "not-" + stack.settings[variable]) as client,
            pytest.raises(pymongo.errors.OperationFailure, match="Authentication failed"),
        ):
            client.humantask.command("ping")
    # Nobody reads anything without logging in.
    host = stack.address(database_service(stack))
    with (
        pymongo.MongoClient(f"mongodb://{host}:27017/", serverSelectionTimeoutMS=10000) as client,
        pytest.raises(pymongo.errors.OperationFailure),
    ):
        client.humantask.customers.find_one()


def test_the_notifier_cannot_read_the_customers_where_the_database_enforces_roles(
    stack: ComposeStack,
) -> None:
    """MongoDB refuses the notifier's user the customers' collection (their callback
    secrets); FerretDB 2.7 enforces no role (docs/operations/compose.md, "Least
    privilege"), which this pins, so that the documentation stays true."""
    with _database(stack, NOTIFIER_USER, stack.settings["MONGODB_NOTIFIER_PASSWORD"]) as client:
        ferretdb = "ferretdb" in client.admin.command("buildInfo")
        if ferretdb:
            client.humantask.customers.find_one()  # allowed: nothing refuses it
        else:
            with pytest.raises(pymongo.errors.OperationFailure, match="not authorized"):
                client.humantask.customers.find_one()
            client.humantask.callback_attempts.find_one()  # its own: allowed
    with _database(stack, TASKSTORE_USER, stack.settings["MONGODB_TASKSTORE_PASSWORD"]) as client:
        client.humantask.customers.find_one()  # its own: allowed everywhere


# -- the demo: a callback from the notifier's container to a receiver on this machine --


@pytest.fixture
def receiver(stack: ComposeStack) -> Iterator[tuple[int, str, Path]]:
    """The README's example receiver on a free port of this machine, checking signatures
    with the demo customer's callback secret (rotated: it is printed only when made)."""
    if stack.stage != "demo":
        pytest.skip("only the demo allows callbacks to private addresses")
    [demo] = [line for line in stack.admin("customers", "list") if line["name"] == "demo"]
    [rotated] = stack.admin("customers", "rotate-secret", demo["customer_id"])
    port = free_port("0.0.0.0")
    output = ROOT / "test-artifacts" / f"compose-callback-receiver-{port}.log"
    output.parent.mkdir(exist_ok=True)
    with output.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "examples/callback_receiver.py", str(port)],
            cwd=ROOT,
            env={**os.environ, "CALLBACK_SECRET": rotated["callback_secret"]},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: _listening(port), 10, message="the receiver listens")
        yield port, rotated["callback_secret"], output
    finally:
        process.terminate()
        process.wait(10)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def test_a_callback_reaches_a_receiver_on_the_docker_host(
    stack: ComposeStack, receiver: tuple[int, str, Path]
) -> None:
    port, _, output = receiver
    api_key = stack.settings["HUMANTASK_DEMO_API_KEY"]
    [worker] = stack.admin("workers", "create", "--name", "compose check")
    cancel_pending_tasks(stack.api_url, api_key)  # the pool is FIFO: ours comes first
    with httpx.Client(base_url=stack.api_url, timeout=30) as http:
        created = http.post(
            "/v1/task/categorize",
            auth=basic(api_key),
            json={
                "callback_url": f"http://host.docker.internal:{port}/callback",
                "instruction": "Would you say this item is big or small?",
                "attachment_type": "text",
                "attachment": "car",
                "categories": ["big", "small"],
            },
        )
        assert created.status_code == 200, created.text
        task_id = created.json()["task_id"]
        claim = http.post("/v1/work/claim", auth=basic(worker["token"]))
        assert claim.status_code == 200 and claim.json()["task_id"] == task_id, claim.text
        submit = http.post(
            f"/v1/work/{task_id}/submit", auth=basic(worker["token"]), json={"category": "big"}
        )
        assert submit.status_code == 200, submit.text

        def logged() -> list[dict[str, Any]]:
            attempts: list[dict[str, Any]] = http.get(
                f"/v1/task/{task_id}/callbacks", auth=basic(api_key)
            ).json()
            return attempts

        attempts = wait_until(logged, 60, 0.5, "the callback is logged")
    assert attempts[0]["delivered"] is True, attempts
    printed = output.read_text(encoding="utf-8")
    assert f'"task_id": "{task_id}"' in printed, printed
    assert '"signature_verified": true' in printed, printed
