"""Who may send which command, and the broker users' definitions (no broker needed)."""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any

import orjson
import pytest

from humantask_shared.core.broker_access import BrokerIdentities, broker_user
from humantask_shared.core.broker_definitions import (
    SERVICE_PERMISSIONS,
    definitions,
    password_hash,
    passwords_from_environment,
)
from humantask_shared.core.messages.commands import (
    Authenticate,
    CallbackSecret,
    CreateCustomer,
    EnsureCustomer,
    GetCallbackSecret,
    ListCallbacks,
    RedeliverCallback,
    RotateCallbackSecret,
)
from humantask_shared.core.topology import COMMANDS, REPLY_QUEUE, Queue
from humantask_shared.runtime.broker import DEADLINE_HEADER
from humantask_shared.runtime.command_server import CommandServer
from humantask_shared.runtime.consumer import PoisonMessage

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
    admin_only = {c.routing_key for c in COMMANDS if c.senders == {"admin"}}
    assert admin_only == {
        "customer.create",
        "worker.create",
        "account.list",
        "account.revoke",
        "account.rotate_credential",
        "customer.rotate_callback_secret",
        "customer.set_weight",
        "callback.list_failed",
        "customer.set_quota",
    }
    assert RedeliverCallback.senders == {"gateway", "admin"}
    assert GetCallbackSecret.senders == {"notifier"}
    assert EnsureCustomer.senders == {"gateway"}


OWNERS = {"gw": "gateway", "nt": "notifier", "ad": "admin"}


def reply_queue(owner: str) -> str:
    return REPLY_QUEUE.for_process(owner).name  # type: ignore[arg-type]


class FakeMessage:
    def __init__(
        self,
        type_: str,
        user_id: str | None,
        deadline_ms: int | None = None,
        reply_to: str | None = None,
    ) -> None:
        self.type, self.user_id = type_, user_id
        self.body = orjson.dumps({"customer_id": "c1"})
        own = reply_queue(OWNERS[user_id]) if user_id in OWNERS else "gateway.replies.x"
        self.reply_to, self.correlation_id = reply_to or own, "c"
        self.headers = {} if deadline_ms is None else {DEADLINE_HEADER: deadline_ms}


class FakeExchange:
    """The default exchange, recording the replies published through it."""

    def __init__(self) -> None:
        self.replies: list[dict[str, Any]] = []
        self.routes: list[str] = []

    async def publish(self, message: Any, routing_key: str, mandatory: bool) -> None:
        self.replies.append(orjson.loads(message.body))
        self.routes.append(routing_key)


class FakeChannel:
    def __init__(self) -> None:
        self.default_exchange = FakeExchange()


class SenderCheckRig:
    """A command server for `customer.callback_secret` (the notifier's to send)."""

    def __init__(self) -> None:
        self.handled: list[Any] = []
        self.channel = FakeChannel()
        queue = Queue("test.commands", "a test's", (GetCallbackSecret,), (), ())
        handlers = {GetCallbackSecret: self._handle}
        self.server = CommandServer(queue, handlers, IDENTITIES, self.channel)  # type: ignore[arg-type]

    async def _handle(self, command: Any) -> CallbackSecret:
        self.handled.append(command)
        return CallbackSecret(callback_secret="s")

    async def refused_code(self, message: FakeMessage) -> str:
        """The error code the server answered before dead-lettering `message`."""
        with pytest.raises(PoisonMessage):
            await self.server(message)  # type: ignore[arg-type]
        return str(self.channel.default_exchange.replies.pop()["error"]["code"])


async def test_the_sender_check_refuses_before_the_handler_runs() -> None:
    rig = SenderCheckRig()
    assert (
        await rig.refused_code(FakeMessage(GetCallbackSecret.routing_key, "gw")) == "unauthorized"
    )
    # Without a user id nobody's reply queue is the sender's: refused, and no reply.
    with pytest.raises(PoisonMessage):
        await rig.server(FakeMessage(GetCallbackSecret.routing_key, None))  # type: ignore[arg-type]
    assert rig.channel.default_exchange.replies == []
    # A command type nobody knows is refused as invalid, whoever sent it.
    assert await rig.refused_code(FakeMessage("no.such.command", "gw")) == "invalid"
    assert rig.handled == []
    await rig.server(FakeMessage(GetCallbackSecret.routing_key, "nt"))  # type: ignore[arg-type]
    assert rig.channel.default_exchange.replies.pop()["ok"] is True
    assert [command.customer_id for command in rig.handled] == ["c1"]


async def test_a_late_command_from_a_forbidden_sender_is_still_refused() -> None:
    """The sender check comes before the deadline: a refusal is always dead-lettered,
    however late (and the deadline is the sender's to write, the user id the broker's)."""
    rig = SenderCheckRig()
    past = int((time.time() - 1) * 1000)
    late = FakeMessage(GetCallbackSecret.routing_key, "gw", deadline_ms=past)
    assert await rig.refused_code(late) == "unauthorized"
    # From its sender, the same late command is dropped: no reply, no dead letter.
    await rig.server(FakeMessage(GetCallbackSecret.routing_key, "nt", deadline_ms=past))  # type: ignore[arg-type]
    assert rig.channel.default_exchange.replies == [] and rig.handled == []


async def test_a_reply_goes_only_to_a_reply_queue_of_the_senders_own() -> None:
    """The default exchange reaches every queue: a command naming another service's queue
    as its `reply_to` must not make the receiver write into it."""
    rig = SenderCheckRig()
    sent = rig.channel.default_exchange
    elsewhere = ["notifier.task-completed", "taskstore.commands", reply_queue("notifier"), "x"]
    for reply_to in elsewhere:
        # A refused sender (the gateway may not ask for callback secrets): no reply there.
        with pytest.raises(PoisonMessage):
            await rig.server(FakeMessage(GetCallbackSecret.routing_key, "gw", reply_to=reply_to))  # type: ignore[arg-type]
    assert sent.replies == []
    # Refused, but to a reply queue of its own: answered at once, as before.
    own = reply_queue("gateway")
    assert (
        await rig.refused_code(FakeMessage(GetCallbackSecret.routing_key, "gw")) == "unauthorized"
    )
    # An allowed sender naming someone else's queue: handled, the reply dropped.
    for reply_to in ["notifier.task-completed", own, f"{own}.x", "notifier.replies.XYZ"]:
        await rig.server(FakeMessage(GetCallbackSecret.routing_key, "nt", reply_to=reply_to))  # type: ignore[arg-type]
    assert sent.replies == [] and len(rig.handled) == 4
    await rig.server(FakeMessage(GetCallbackSecret.routing_key, "nt"))  # type: ignore[arg-type]
    assert sent.routes[-1].startswith("notifier.replies.") and sent.replies.pop()["ok"] is True


def test_with_one_shared_user_any_services_reply_queue_is_the_senders() -> None:
    shared = BrokerIdentities({"gateway": "guest", "notifier": "guest", "admin": "guest"}, "guest")
    for owner in ("gateway", "notifier", "admin"):
        assert shared.may_reply_to(reply_queue(owner), "guest")
    assert not shared.may_reply_to("notifier.task-completed", "guest")
    assert not IDENTITIES.may_reply_to(reply_queue("gateway"), "nt")
    assert IDENTITIES.may_reply_to(reply_queue("admin"), "ad")
    assert not IDENTITIES.may_reply_to(reply_queue("admin"), None)


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
