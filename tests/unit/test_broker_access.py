"""Who may send which command, and the broker users' definitions (no broker needed)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest

from humantask_shared.broker_access import BrokerIdentities, SenderCheck, broker_user
from humantask_shared.broker_definitions import (
    SERVICE_PERMISSIONS,
    definitions,
    password_hash,
    passwords_from_environment,
)
from humantask_shared.messages.commands import (
    COMMANDS,
    Authenticate,
    CreateCustomer,
    GetCallbackSecret,
    ListCallbacks,
    RotateCallbackSecret,
)
from humantask_shared.messaging import PoisonMessage

IDENTITIES = BrokerIdentities(
    senders={"gateway": "gw", "notifier": "nt", "admin": "ad"}, own_user="ts"
)


def test_broker_user_of_a_url() -> None:
    assert broker_user("amqp://humantask-gateway:pw@rabbitmq:5672/humantask") == "humantask-gateway"
    assert broker_user("amqp://a%40b:pw@host/") == "a@b"
    assert broker_user("amqp://localhost/") == "guest"


@pytest.mark.parametrize(
    ("command", "allowed"),
    [
        (Authenticate, {"gw", "ts"}),
        (ListCallbacks, {"gw", "ts"}),
        (GetCallbackSecret, {"nt", "ts"}),
        (CreateCustomer, {"ad", "ts"}),
        (RotateCallbackSecret, {"ad", "ts"}),
    ],
)
def test_each_command_is_allowed_from_its_sender_and_the_receiver_itself(
    command: Any, allowed: set[str]
) -> None:
    for user in ("gw", "nt", "ad", "ts", "guest"):
        assert IDENTITIES.allows(command, user) is (user in allowed), user
    assert not IDENTITIES.allows(command, None)


def test_only_the_admin_tool_sends_credential_commands() -> None:
    admin_only = {name for name, command in COMMANDS.items() if command.senders == {"admin"}}
    assert admin_only == {
        "customer.create",
        "worker.create",
        "account.list",
        "account.revoke",
        "account.rotate_credential",
        "customer.rotate_callback_secret",
    }
    assert COMMANDS["customer.callback_secret"].senders == {"notifier"}
    assert COMMANDS["customer.ensure"].senders == {"gateway"}


class FakeMessage:
    def __init__(self, type_: str, user_id: str | None) -> None:
        self.type, self.user_id = type_, user_id
        self.reply_to, self.correlation_id, self.headers = None, "c", {}


async def test_the_sender_check_refuses_before_the_handler_runs() -> None:
    handled: list[Any] = []

    async def server(message: Any) -> None:
        handled.append(message)

    check = SenderCheck(server, IDENTITIES, channel=None)  # type: ignore[arg-type]
    with pytest.raises(PoisonMessage):
        await check(FakeMessage(CreateCustomer.name, "gw"))  # type: ignore[arg-type]
    with pytest.raises(PoisonMessage):
        await check(FakeMessage(GetCallbackSecret.name, None))  # type: ignore[arg-type]
    assert handled == []
    allowed = FakeMessage(GetCallbackSecret.name, "nt")
    await check(allowed)  # type: ignore[arg-type]
    unknown = FakeMessage("no.such.command", "gw")  # the command server's to refuse
    await check(unknown)  # type: ignore[arg-type]
    assert handled == [allowed, unknown]


def test_password_hashes_are_rabbitmqs_salted_sha256() -> None:
    encoded = base64.b64decode(password_hash("s3cret", salt=b"\x01\x02\x03\x04"))
    assert encoded[:4] == b"\x01\x02\x03\x04"
    assert encoded[4:] == hashlib.sha256(b"\x01\x02\x03\x04s3cret").digest()
    assert password_hash("s3cret") != password_hash("s3cret")  # a salt each time


def test_definitions_hold_hashes_never_passwords() -> None:
    passwords = {service: f"{service}-pw-0123456789" for service in SERVICE_PERMISSIONS}
    document = definitions(passwords)
    text = repr(document)
    assert all(password not in text for password in passwords.values())
    assert {user["name"] for user in document["users"]} == {
        f"humantask-{service}" for service in SERVICE_PERMISSIONS
    }
    assert all(user["tags"] == [] for user in document["users"])
    assert "guest" not in text
    assert {p["vhost"] for p in document["permissions"]} == {"humantask"}


def test_every_service_password_is_required_and_the_operator_optional() -> None:
    env = {f"RABBITMQ_{s.upper()}_PASSWORD": "x" for s in SERVICE_PERMISSIONS}
    assert set(passwords_from_environment(env)) == set(SERVICE_PERMISSIONS)
    assert "operator" in passwords_from_environment({**env, "RABBITMQ_OPERATOR_PASSWORD": "y"})
    with pytest.raises(SystemExit, match="RABBITMQ_GATEWAY_PASSWORD"):
        passwords_from_environment({**env, "RABBITMQ_GATEWAY_PASSWORD": ""})
    operator = definitions({"operator": "y"})["users"][0]
    assert operator["tags"] == ["administrator"]
