"""`humantask-admin`: the operator's commands for customers and workers
(docs/reference/contract.md §2).

    humantask-admin customers create --name NAME   {"customer_id", "api_key", "callback_secret"}
    humantask-admin customers list                 one JSON object per line, no secrets
    humantask-admin customers revoke ID            the API key stops working
    humantask-admin customers rotate-key ID        {"customer_id", "api_key"}: the new key
    humantask-admin customers rotate-secret ID [--overlap 24h]
                                                   {"customer_id", "callback_secret",
                                                    "previous_secret_signs_until"}
    humantask-admin customers set-quota ID [--pending-tasks N|default] [--stored-bytes N|default]
                                                   the customer's quotas and usage (0: no limit)
    humantask-admin customers quota ID             the same, changing nothing
    humantask-admin customers set-weight ID W      {"customer_id", "weight"}: its share of
                                                   the workers against the others' (default 1)
    humantask-admin workers create --name NAME     {"worker_id", "token"}
    humantask-admin workers list | revoke ID | rotate-token ID
    humantask-admin callbacks failed --since WHEN [--customer ID] [--limit N]
                                                   the deliveries that failed, one a line
    humantask-admin callbacks redeliver TASK_ID... | --failed-since WHEN [--customer ID]
                                                   {"task_id", "delivery"} (or "error")
    humantask-admin dead-letters list [--queue Q] [--limit N]
    humantask-admin dead-letters show Q ID
    humantask-admin dead-letters replay Q (ID... | --all)
    humantask-admin dead-letters drop Q (ID... | --all)

WHEN is a time (2024-05-01T12:00:00Z) or a span back from now (30m, 24h, 7d); Q is a work
queue or its dead-letter queue (notifier.task-completed). A rotated secret's overlap
(default 24h, 0 to cut over at once) is how long callbacks carry the old secret's
signature too, so receivers can switch when they like (docs/operations/accounts.md).

It sends commands to the task-store and the notifier over RabbitMQ as its own broker
user (the only one allowed to send some of them), so it needs AMQP_URL and the running
services, not the database; the dead letters it reads from the broker itself
(docs/operations/recovery.md).
A new API key or worker token is made here and only its SHA-256 is sent: it is printed
this once and stored nowhere. A revoked or rotated-away credential is refused on every
gateway once this command has answered.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import aio_pika
import orjson
from aio_pika.abc import AbstractConnection
from pydantic import Field, ValidationError

from humantask_shared.core.credentials import credential_hash, new_api_key, new_worker_token
from humantask_shared.core.errors import HumantaskError
from humantask_shared.core.messages.base import CommandSender
from humantask_shared.core.messages.commands import (
    DEFAULT_SECRET_OVERLAP_SECONDS,
    MAX_FAILED_CALLBACKS,
    MAX_SECRET_OVERLAP_SECONDS,
    Account,
    CreateCustomer,
    CreateWorker,
    FailedCallback,
    ListAccounts,
    ListFailedCallbacks,
    RedeliverCallback,
    RevokeAccount,
    Role,
    RotateCallbackSecret,
    RotateCredential,
    SetCustomerWeight,
)
from humantask_shared.core.messages.quotas import QuotaSetting, SetCustomerQuota
from humantask_shared.core.timeutil import format_timestamp, utcnow
from humantask_shared.core.topology import COMMANDS_EXCHANGE, NOTIFIER_COMMANDS_EXCHANGE
from humantask_shared.runtime.broker import BROKER_ERRORS, open_channel
from humantask_shared.runtime.command_client import CommandClient
from humantask_shared.runtime.command_line import version_line
from humantask_shared.runtime.dead_letter_box import (
    DEFAULT_LIMIT,
    DeadLetterBox,
    NotReplayable,
    UnknownQueue,
    dead_letter_queue_names,
    work_queue_of,
)
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

    def __init__(
        self,
        taskstore: CommandSender,
        notifier: CommandSender | None = None,
        connection: AbstractConnection | None = None,
    ) -> None:
        self._taskstore = taskstore
        self._notifier = notifier
        self._connection = connection

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

    async def rotate_secret(
        self, customer_id: str, overlap_seconds: int = DEFAULT_SECRET_OVERLAP_SECONDS
    ) -> Output:
        rotated = await self._taskstore.send(
            RotateCallbackSecret(customer_id=customer_id, overlap_seconds=overlap_seconds)
        )
        until = rotated.previous_until
        return [
            {
                "customer_id": customer_id,
                "callback_secret": rotated.callback_secret,
                "previous_secret_signs_until": None if until is None else format_timestamp(until),
            }
        ]

    async def set_weight(self, customer_id: str, weight: float) -> Output:
        set_to = await self._taskstore.send(
            SetCustomerWeight(customer_id=customer_id, weight=weight)
        )
        return [{"customer_id": set_to.customer_id, "weight": set_to.weight}]

    async def set_quota(
        self, customer_id: str, pending_tasks: QuotaSetting, stored_bytes: QuotaSetting
    ) -> Output:
        quota = await self._taskstore.send(
            SetCustomerQuota(
                customer_id=customer_id, pending_tasks=pending_tasks, stored_bytes=stored_bytes
            )
        )
        return [quota.model_dump()]

    # -- callbacks: the notifier's --------------------------------------------------------

    def _notifier_commands(self) -> CommandSender:
        assert self._notifier is not None, "the notifier's commands need its exchange"
        return self._notifier

    async def failed_callbacks(
        self, since: datetime, customer_id: str | None, limit: int
    ) -> Output:
        listed = await self._notifier_commands().send(
            ListFailedCallbacks(since=since, customer_id=customer_id, limit=limit)
        )
        return [failed_line(failed) for failed in listed.callbacks]

    async def redeliver(self, task_ids: Sequence[str], customer_id: str | None = None) -> Output:
        """One redelivery per task, whichever fail: a line each, `error` for a refused one."""
        lines: Output = []
        for task_id in task_ids:
            try:
                redelivery = await self._notifier_commands().send(
                    RedeliverCallback(task_id=task_id, customer_id=customer_id)
                )
            except (HumantaskError, ValidationError) as exc:
                message = exc.message if isinstance(exc, HumantaskError) else "not a task id"
                lines.append({"task_id": task_id, "error": message})
                continue
            lines.append({"task_id": task_id, "delivery": redelivery.delivery})
        return lines

    async def redeliver_failed(
        self, since: datetime, customer_id: str | None, limit: int
    ) -> Output:
        listed = await self._notifier_commands().send(
            ListFailedCallbacks(since=since, customer_id=customer_id, limit=limit)
        )
        return await self.redeliver([failed.task_id for failed in listed.callbacks])

    # -- dead letters: the broker's -------------------------------------------------------

    async def dead_letters(self, queue: str | None, limit: int) -> Output:
        names = [queue] if queue is not None else dead_letter_queue_names()
        lines: Output = []
        for name in names:
            async with self._held(name) as box:
                lines.extend(letter.summary() for letter in await box.take(limit))
        return lines

    async def show_dead_letter(self, queue: str, message_id: str) -> Output:
        async with self._held(queue) as box:
            letters = [letter for letter in await box.take() if letter.id == message_id]
        if not letters:
            raise HumantaskError(f"no message {message_id} in the dead letters of {queue}")
        return [letter.detail() for letter in letters]

    async def settle_dead_letters(
        self, queue: str, ids: Sequence[str] | None, action: Literal["replay", "drop"]
    ) -> Output:
        async with self._held(queue) as box:
            await box.take()
            try:
                settled = await (box.replay(ids) if action == "replay" else box.drop(ids))
            except (NotReplayable, LookupError) as exc:
                raise HumantaskError(str(exc).strip("'\"")) from None
        done = "replayed" if action == "replay" else "dropped"
        return [{**letter.summary(), done: True} for letter in settled]

    @contextlib.asynccontextmanager
    async def _held(self, queue: str) -> AsyncIterator[DeadLetterBox]:
        """A box on a channel of its own: closing it gives back what was not settled."""
        assert self._connection is not None, "the dead letters need a connection"
        try:
            work = work_queue_of(queue)
        except UnknownQueue as exc:
            raise HumantaskError(str(exc)) from None
        channel = await open_channel(self._connection)
        try:
            yield DeadLetterBox(channel, work.name)
        finally:
            await channel.close()


def failed_line(failed: FailedCallback) -> dict[str, Any]:
    return {
        "task_id": failed.task_id,
        "customer_id": failed.customer_id,
        "delivery": failed.delivery,
        "callback_url": failed.callback_url,
        "failed_at": format_timestamp(failed.failed_at),
        "status_code": failed.status_code,
        "error": failed.error,
    }


_SPAN = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_SPAN_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_seconds(text: str) -> int:
    """`90s`, `30m`, `24h`, `7d` or plain seconds, as whole seconds."""
    text = text.strip().lower()
    if text.isdigit():
        return int(text)
    match = _SPAN.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30m, 24h or 7d")
    return round(float(match.group(1)) * _SPAN_SECONDS[match.group(2)])


def point_in_time(text: str, now: datetime | None = None) -> datetime:
    """An ISO 8601 time (UTC unless it says otherwise), or a span back from now (`24h`)."""
    try:
        back = duration_seconds(text)
    except argparse.ArgumentTypeError:
        pass
    else:
        return (now or utcnow()) - timedelta(seconds=back)
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a time (2024-05-01T12:00:00Z) nor a span back (24h)"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


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


def _quota(value: str) -> int | str:
    if value == "default":
        return value
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise argparse.ArgumentTypeError("must be a whole number (0: no limit) or default")
    return number


def _add_quota_commands(actions: Any) -> None:
    quota = actions.add_parser(
        "set-quota",
        help="set the customer's quotas (0: no limit, default: the task-store's); "
        "prints them with its usage",
    )
    quota.add_argument("id")
    quota.add_argument("--pending-tasks", type=_quota, metavar="N|default")
    quota.add_argument("--stored-bytes", type=_quota, metavar="N|default")
    actions.add_parser("quota", help="print the customer's quotas and usage").add_argument("id")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="humantask-admin",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=version_line("humantask-admin"))
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
                help="prints a new callback_secret; callbacks are signed with it from now on "
                "and, for the overlap, with the old one too",
            )
            secret.add_argument("id")
            secret.add_argument(
                "--overlap",
                type=_overlap,
                default=DEFAULT_SECRET_OVERLAP_SECONDS,
                help="how long callbacks carry the old secret's signature too (30m, 24h, 7d; "
                "0: not at all); default 24h",
            )
            weight = actions.add_parser(
                "set-weight",
                help="its share of the workers when several customers have tasks waiting, "
                "against the others' weights (each 1 unless set)",
            )
            weight.add_argument("id")
            weight.add_argument("weight", type=_weight)
            _add_quota_commands(actions)
    _callback_parsers(groups)
    _dead_letter_parsers(groups)
    return parser


def _overlap(text: str) -> int:
    seconds = duration_seconds(text)
    if seconds > MAX_SECRET_OVERLAP_SECONDS:
        raise argparse.ArgumentTypeError("at most 30 days")
    return seconds


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= MAX_FAILED_CALLBACKS:
        raise argparse.ArgumentTypeError(f"from 1 to {MAX_FAILED_CALLBACKS}")
    return value


def _callback_parsers(groups: Any) -> None:
    actions = groups.add_parser(
        "callbacks", help="callback deliveries: the failed ones, redeliveries"
    ).add_subparsers(dest="action", required=True)
    failed = actions.add_parser(
        "failed",
        help="the deliveries whose two attempts failed since WHEN and that no redelivery "
        "replaced, oldest first, one JSON object a line",
    )
    failed.add_argument("--since", required=True, type=point_in_time, metavar="WHEN")
    failed.add_argument("--customer", metavar="ID")
    failed.add_argument("--limit", type=_limit, default=1000)
    redeliver = actions.add_parser(
        "redeliver",
        help="deliver these tasks' callbacks again (one new delivery each, with its one "
        "retry), or every one `failed --since WHEN` lists",
    )
    redeliver.add_argument("task_ids", nargs="*", metavar="TASK_ID")
    redeliver.add_argument("--failed-since", type=point_in_time, metavar="WHEN")
    redeliver.add_argument("--customer", metavar="ID")
    redeliver.add_argument("--limit", type=_limit, default=1000)


def _dead_letter_parsers(groups: Any) -> None:
    actions = groups.add_parser(
        "dead-letters",
        help="what the services turned away: list, show, replay into the work queue, drop",
    ).add_subparsers(dest="action", required=True)
    listed = actions.add_parser("list", help="one JSON object a message (no body), oldest first")
    listed.add_argument("--queue", metavar="Q", help="one work queue's (default: every one)")
    listed.add_argument("--limit", type=_limit, default=DEFAULT_LIMIT, help="per queue")
    show = actions.add_parser("show", help="one message with its headers and body")
    show.add_argument("queue", metavar="Q")
    show.add_argument("id")
    for name, what in (
        ("replay", "republish into the work queue (never a command), then remove"),
        ("drop", "remove for good"),
    ):
        action = actions.add_parser(name, help=what)
        action.add_argument("queue", metavar="Q")
        action.add_argument("ids", nargs="*", metavar="ID")
        action.add_argument("--all", action="store_true", help="every message of the queue")


def _command(admin: Admin, args: argparse.Namespace) -> Awaitable[Output]:
    if args.group == "callbacks":
        return _callback_command(admin, args)
    if args.group == "dead-letters":
        return _dead_letter_command(admin, args)
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
        "rotate-secret": lambda: admin.rotate_secret(args.id, args.overlap),
        "set-quota": lambda: admin.set_quota(args.id, args.pending_tasks, args.stored_bytes),
        "quota": lambda: admin.set_quota(args.id, None, None),
        "set-weight": lambda: admin.set_weight(args.id, args.weight),
    }
    return actions[args.action]()


def _callback_command(admin: Admin, args: argparse.Namespace) -> Awaitable[Output]:
    if args.action == "failed":
        return admin.failed_callbacks(args.since, args.customer, args.limit)
    if bool(args.task_ids) == (args.failed_since is not None):
        raise SystemExit("humantask-admin: give either TASK_IDs or --failed-since WHEN")
    if args.failed_since is not None:
        return admin.redeliver_failed(args.failed_since, args.customer, args.limit)
    return admin.redeliver(args.task_ids, args.customer)


def _dead_letter_command(admin: Admin, args: argparse.Namespace) -> Awaitable[Output]:
    if args.action == "list":
        return admin.dead_letters(args.queue, args.limit)
    if args.action == "show":
        return admin.show_dead_letter(args.queue, args.id)
    if bool(args.ids) == args.all:
        raise SystemExit("humantask-admin: give either message IDs or --all")
    return admin.settle_dead_letters(args.queue, None if args.all else args.ids, args.action)


def exit_status(lines: Output) -> int:
    """1 when any line says a redelivery was refused."""
    return 1 if any("error" in line and "delivery" not in line for line in lines) else 0


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
        notifier_exchange = await channel.get_exchange(
            NOTIFIER_COMMANDS_EXCHANGE.name, ensure=False
        )
        notifier = CommandClient(
            channel, notifier_exchange, settings.broker_user, settings.rpc_timeout_seconds
        )
        await notifier.start("admin")
        admin = Admin(taskstore, notifier, connection)
        try:
            return await _command(admin, args)
        except HumantaskError as exc:
            raise SystemExit(f"humantask-admin: {exc.message}") from None
        except BROKER_ERRORS as exc:
            reason = str(exc) or type(exc).__name__
            raise SystemExit(f"humantask-admin: RabbitMQ refused: {reason}") from None


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    lines = asyncio.run(run(AdminSettings(), args))
    sys.stdout.write("".join(orjson.dumps(line).decode() + "\n" for line in lines))
    if exit_status(lines):
        raise SystemExit(1)
