"""Hearing about revoked and rotated credentials in every process that caches them.

Gateways cache who a key belongs to, notifiers a customer's callback secret. When an
operator revokes or rotates, the task-store publishes `credential.changed`, and *every*
such process must hear it: so each declares a queue of its own, exclusive and
auto-delete, bound to the events exchange (a fanout per process, not competing
consumers: `topology.CREDENTIALS_QUEUE`). While a process's connection is down its
queue is gone and it misses events, so it forgets everything it cached whenever the
connection comes back; the caches' short lifetime is the backstop for anything else.

An event only ever makes a cache forget, so a stray or repeated one costs a lookup.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from pydantic import ValidationError

from ..core.messages.events import CredentialChanged
from ..core.topology import CREDENTIALS_QUEUE, Service
from .broker import open_channel
from .declaring import declare

log = logging.getLogger(__name__)


@asynccontextmanager
async def follow_credential_changes(
    connection: AbstractRobustConnection,
    owner: Service,
    on_change: Callable[[CredentialChanged], None],
    on_reset: Callable[[], None],
) -> AsyncIterator[None]:
    """While open, call `on_change` for each credential event, and `on_reset` when some
    may have been missed (the connection came back)."""
    channel = await open_channel(connection)
    queue = await declare(channel, CREDENTIALS_QUEUE.for_process(owner))

    async def on_message(message: AbstractIncomingMessage) -> None:
        try:
            event = CredentialChanged.model_validate_json(message.body)
        except ValidationError as exc:
            # Not knowing whose credential changed, forget everyone's.
            log.error(
                "unreadable credential event; forgetting every cached credential",
                extra={"errors": exc.error_count()},
            )
            on_reset()
            return
        log.info(
            "credential changed; forgetting what was cached",
            extra={"role": event.role, "principal_id": event.principal_id, "change": event.change},
        )
        on_change(event)

    await queue.consume(on_message, no_ack=True)

    def on_reconnect(*_args: Any) -> None:
        log.info("reconnected; forgetting every cached credential (events may have been missed)")
        on_reset()

    connection.reconnect_callbacks.add(on_reconnect)
    try:
        yield
    finally:  # a closed follower must not reset caches on every later reconnect
        connection.reconnect_callbacks.discard(on_reconnect)
        await channel.close()
