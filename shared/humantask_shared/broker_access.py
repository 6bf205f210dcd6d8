"""Who may send which command: the broker user behind a message, checked by its receiver.

RabbitMQ refuses a message whose `user_id` property is not the user of the connection
that published it, so `user_id` names the service that sent a command (each service
logs in as a user of its own: `broker_definitions`). Every command is published with
it (`RpcClient`), and the services that answer commands (the task-store, the notifier)
run each through `SenderCheck` before its handler: a command from a user that is not
one of its `senders` is answered `unauthorized` and dead-lettered, unexecuted.

A receiver also accepts any command from its own broker user: with one shared user
(a development broker's `guest`) there is no boundary to keep, and a service trusts
itself anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from aio_pika.abc import AbstractIncomingMessage, AbstractRobustChannel

from .command_server import error_reply
from .errors import Unauthorized
from .messages.commands import COMMANDS, Command, Sender
from .messaging import PoisonMessage, reply

log = logging.getLogger(__name__)

DEFAULT_BROKER_USER = "guest"  # what amqp:// without a user logs in as

MessageHandler = Callable[[AbstractIncomingMessage], Awaitable[None]]


def broker_user(amqp_url: str) -> str:
    """The user an AMQP URL logs in as."""
    return unquote(urlsplit(amqp_url).username or "") or DEFAULT_BROKER_USER


@dataclass(frozen=True)
class BrokerIdentities:
    """The broker user of each sender of commands, and of the receiving service itself."""

    senders: Mapping[Sender, str]
    own_user: str

    def allowed_users(self, command: type[Command]) -> frozenset[str]:
        return frozenset({self.own_user, *(self.senders[sender] for sender in command.senders)})

    def allows(self, command: type[Command], user_id: str | None) -> bool:
        return user_id is not None and user_id in self.allowed_users(command)


class SenderCheck:
    """A command queue's message handler: the sender check, then the command server."""

    def __init__(
        self,
        server: MessageHandler,
        identities: BrokerIdentities,
        channel: AbstractRobustChannel,
    ) -> None:
        self._server = server
        self._identities = identities
        self._channel = channel

    async def __call__(self, message: AbstractIncomingMessage) -> None:
        command = COMMANDS.get(message.type or "")
        # An unknown type is the command server's to refuse (with the same dead-letter).
        if command is not None and not self._identities.allows(command, message.user_id):
            log.warning(
                "refusing a command from a broker user that may not send it",
                extra={"type": command.name, "user_id": message.user_id},
            )
            error = Unauthorized(f"{command.name} may not be sent by this service")
            await reply(self._channel, message, error_reply(error))
            raise PoisonMessage(f"{command.name} from broker user {message.user_id!r}")
        await self._server(message)
