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
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from .messages.base import Command, Sender

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
