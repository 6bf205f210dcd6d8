"""Who may send which command: the broker user behind a message, checked by its receiver.

RabbitMQ refuses a message whose `user_id` property is not the user of the connection
that published it, so `user_id` names the service that sent a command (each service
logs in as a user of its own: `broker_definitions`). Every command is published with
it (`CommandClient`), and the services that answer commands (the task-store, the
notifier) check it in `CommandServer` before anything else: a command from a user that
is not one of its `senders` is answered `unauthorized` and dead-lettered, unexecuted.

A receiver also accepts any command from its own broker user: with one shared user
(a development broker's `guest`) there is no boundary to keep, and a service trusts
itself anyway.

Replies go through the default exchange, which reaches every queue by name, so a
command's `reply_to` is obeyed only when it names a reply queue of the sender's own
(`topology.REPLY_QUEUE` of a service whose broker user sent it): otherwise any sender,
refused ones included, could make a receiver write into another service's queue.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import unquote, urlsplit

from .messages.base import Command, Sender
from .topology import REPLY_QUEUE, Service

DEFAULT_BROKER_USER = "guest"  # what amqp:// without a user logs in as


def broker_user(amqp_url: str) -> str:
    """The user an AMQP URL logs in as."""
    return unquote(urlsplit(amqp_url).username or "") or DEFAULT_BROKER_USER


@dataclass(frozen=True)
class BrokerIdentities:
    """The broker user of each sender of commands, and of the receiving service itself."""

    senders: Mapping[Sender, str]
    own_user: str

    def allows(self, command: type[Command[Any]], user_id: str | None) -> bool:
        allowed = {self.own_user, *(self.senders[sender] for sender in command.senders)}
        return user_id is not None and user_id in allowed

    def may_reply_to(self, reply_to: str | None, user_id: str | None) -> bool:
        """Whether `reply_to` is a reply queue of the service that sent a command as
        `user_id` (with the receiver's own user, of any service: it trusts itself)."""
        if not reply_to or user_id is None:
            return False
        owners: set[Service] = {s for s, user in self.senders.items() if user == user_id}
        if user_id == self.own_user:
            owners.update(REPLY_QUEUE.consumers)
        return any(_reply_queue_name(owner).match(reply_to) for owner in owners)


@cache
def _reply_queue_name(owner: Service) -> re.Pattern[str]:
    # The template's id is `uuid4().hex` (`Queue.for_process`).
    prefix, _, suffix = REPLY_QUEUE.named(owner=owner, id="\0").name.partition("\0")
    return re.compile(f"^{re.escape(prefix)}[0-9a-f]{{32}}{re.escape(suffix)}$")
