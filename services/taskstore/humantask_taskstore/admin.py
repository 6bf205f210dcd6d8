"""`humantask-admin`: the operator's commands for customers and workers (docs/reference/api.md §2).

    humantask-admin customers create --name NAME   {"customer_id", "api_key", "callback_secret"}
    humantask-admin customers list                 one JSON object per line, no secrets
    humantask-admin customers revoke ID            the API key stops working
    humantask-admin customers rotate-key ID        {"customer_id", "api_key"}: the new key
    humantask-admin customers rotate-secret ID     {"customer_id", "callback_secret"}
    humantask-admin customers set-weight ID W      {"customer_id", "weight"}: its share of
                                                   the workers against the others' (default 1)
    humantask-admin workers create --name NAME     {"worker_id", "token"}
    humantask-admin workers list | revoke ID | rotate-token ID

It sends commands to the task-store over RabbitMQ as its own broker user (the only one
allowed to send them), so it needs AMQP_URL and a running task-store, not the database.
A new API key or worker token is made here and only its SHA-256 is sent: it is printed
this once and stored nowhere. A revoked or rotated-away credential is refused on every
gateway once this command has answered.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
import orjson
from pydantic import Field

from humantask_shared.core.credentials import credential_hash, new_api_key, new_worker_token
from humantask_shared.core.errors import HumantaskError
from humantask_shared.core.messages.base import CommandSender
from humantask_shared.core.messages.commands import (
    Account,
    CreateCustomer,
    CreateWorker,
    ListAccounts,
    RevokeAccount,
    Role,
    RotateCallbackSecret,
    RotateCredential,
    SetCustomerWeight,
)
from humantask_shared.core.timeutil import format_timestamp
from humantask_shared.core.topology import COMMANDS_EXCHANGE
from humantask_shared.runtime.broker import BROKER_ERRORS, open_channel
from humantask_shared.runtime.command_client import CommandClient
from humantask_shared.runtime.settings import CommonSettings

Output = list[dict[str, Any]]
# The heaviest weight a customer may get (the lightest is just above 0).
MAX_WEIGHT = 1000.0


class AdminSettings(CommonSettings):
    # How long to wait for the broker, then for the task-store's answer.
    rpc_timeout_seconds: float = Field(default=30.0, gt=0, le=300)


def account_line(account: Account) -> dict[str, Any]:
    """What `list` prints for one customer or worker: never a key, token or secret."""
    return {
        "id": account.principal_id,
        f"{account.role}_id": account.principal_id,
        "name": account.name,
        "created": format_timestamp(account.created_at),
        "revoked": account.revoked_at is not None,
        "revoked_at": None if account.revoked_at is None else format_timestamp(account.revoked_at),
    }


class Admin:
    """The commands, each returning what to print (one JSON object per line)."""

    def __init__(self, taskstore: CommandSender) -> None:
        self._taskstore = taskstore

    async def create_customer(self, name: str) -> Output:
        api_key = new_api_key()
        created = await self._taskstore.send(
            CreateCustomer(customer_name=name, credential_hash=credential_hash(api_key))
        )
        return [
            {
                "customer_id": created.customer_id,
                "api_key": api_key,
                "callback_secret": created.callback_secret,
            }
        ]

    async def create_worker(self, name: str) -> Output:
        token = new_worker_token()
        created = await self._taskstore.send(
            CreateWorker(worker_name=name, credential_hash=credential_hash(token))
        )
        return [{"worker_id": created.worker_id, "token": token}]

    async def list(self, role: Role) -> Output:
        listed = await self._taskstore.send(ListAccounts(role=role))
        return [account_line(account) for account in listed.accounts]

    async def revoke(self, role: Role, principal_id: str) -> Output:
        account = await self._taskstore.send(RevokeAccount(role=role, principal_id=principal_id))
        return [account_line(account)]

    async def rotate_credential(self, role: Role, principal_id: str) -> Output:
        credential = new_api_key() if role == "customer" else new_worker_token()
        await self._taskstore.send(
            RotateCredential(
                role=role, principal_id=principal_id, credential_hash=credential_hash(credential)
            )
        )
        name = "api_key" if role == "customer" else "token"
        return [{f"{role}_id": principal_id, name: credential}]

    async def rotate_secret(self, customer_id: str) -> Output:
        rotated = await self._taskstore.send(RotateCallbackSecret(customer_id=customer_id))
        return [{"customer_id": customer_id, "callback_secret": rotated.callback_secret}]

    async def set_weight(self, customer_id: str, weight: float) -> Output:
        set_to = await self._taskstore.send(
            SetCustomerWeight(customer_id=customer_id, weight=weight)
        )
        return [{"customer_id": set_to.customer_id, "weight": set_to.weight}]


def _non_empty(value: str) -> str:
    if not value.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return value


def _weight(value: str) -> float:
    try:
        weight = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a number") from None
    if not 0 < weight <= MAX_WEIGHT:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most {MAX_WEIGHT:g}")
    return weight


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="humantask-admin",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    groups = parser.add_subparsers(dest="group", required=True)
    for group, help_text, rotate in (
        ("customers", "API customers", "rotate-key"),
        ("workers", "human workers", "rotate-token"),
    ):
        actions = groups.add_parser(group, help=help_text).add_subparsers(
            dest="action", required=True
        )
        create = actions.add_parser(
            "create", help=f"create one of the {help_text}; prints its credentials once"
        )
        create.add_argument("--name", required=True, type=_non_empty)
        actions.add_parser("list", help="one JSON object per line: id, name, created, revoked")
        revoke = actions.add_parser("revoke", help="its credential stops working, for good")
        revoke.add_argument("id")
        rotated = actions.add_parser(
            rotate, help="prints a new credential; the old one stops working"
        )
        rotated.add_argument("id")
        if group == "customers":
            secret = actions.add_parser(
                "rotate-secret",
                help="prints a new callback_secret; callbacks are signed with it from now on",
            )
            secret.add_argument("id")
            weight = actions.add_parser(
                "set-weight",
                help="its share of the workers when several customers have tasks waiting, "
                "against the others' weights (each 1 unless set)",
            )
            weight.add_argument("id")
            weight.add_argument("weight", type=_weight)
    return parser


def _command(admin: Admin, args: argparse.Namespace) -> Awaitable[Output]:
    role: Role = "customer" if args.group == "customers" else "worker"
    actions: dict[str, Callable[[], Awaitable[Output]]] = {
        "create": lambda: (
            admin.create_customer(args.name)
            if role == "customer"
            else admin.create_worker(args.name)
        ),
        "list": lambda: admin.list(role),
        "revoke": lambda: admin.revoke(role, args.id),
        "rotate-key": lambda: admin.rotate_credential(role, args.id),
        "rotate-token": lambda: admin.rotate_credential(role, args.id),
        "rotate-secret": lambda: admin.rotate_secret(args.id),
        "set-weight": lambda: admin.set_weight(args.id, args.weight),
    }
    return actions[args.action]()


async def run(settings: AdminSettings, args: argparse.Namespace) -> Output:
    try:
        connection = await asyncio.wait_for(
            aio_pika.connect(
                settings.amqp_url, client_properties={"connection_name": "humantask-admin"}
            ),
            timeout=settings.rpc_timeout_seconds,
        )
    except (*BROKER_ERRORS, OSError) as exc:
        reason = str(exc) or type(exc).__name__
        raise SystemExit(f"humantask-admin: cannot reach RabbitMQ at AMQP_URL: {reason}") from None
    async with connection:
        channel = await open_channel(connection)
        # Not declared: the task-store declares it, and this user may not (least privilege).
        exchange = await channel.get_exchange(COMMANDS_EXCHANGE.name, ensure=False)
        taskstore = CommandClient(
            channel, exchange, settings.broker_user, settings.rpc_timeout_seconds
        )
        await taskstore.start("admin")
        admin = Admin(taskstore)
        try:
            return await _command(admin, args)
        except HumantaskError as exc:
            raise SystemExit(f"humantask-admin: {exc.message}") from None


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    lines = asyncio.run(run(AdminSettings(), args))
    sys.stdout.write("".join(orjson.dumps(line).decode() + "\n" for line in lines))
