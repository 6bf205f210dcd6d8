"""RabbitMQ: robust connections, confirmed channels, and what every message carries.

What is declared on the broker is in `core/topology.py` (declared by `declaring`);
commands are request/reply (`command_client`, `command_server`), events and other
one-way messages go out through `publishing` and come in through `consumer` and
`event_dispatcher`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractIncomingMessage,
    AbstractRobustConnection,
)
from aio_pika.exceptions import AMQPException
from aiormq.exceptions import ChannelInvalidStateError
from pamqp.exceptions import PAMQPException

from .retrying import until_it_works

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-request-id"
DEADLINE_HEADER = "x-deadline"  # unix milliseconds after which nobody waits for the reply

# What a broker hiccup looks like from the client's side.
BROKER_ERRORS = (
    AMQPException,
    PAMQPException,
    ChannelInvalidStateError,  # publishing while the robust connection reconnects
    ConnectionError,
    asyncio.TimeoutError,
)


async def connect_broker(url: str, connection_name: str) -> AbstractRobustConnection:
    """A robust connection (it reconnects by itself); retries with backoff at start."""
    connection = await until_it_works(
        lambda: aio_pika.connect_robust(
            url, client_properties={"connection_name": connection_name}
        ),
        (*BROKER_ERRORS, OSError),
        "RabbitMQ is not reachable",
    )
    log.info("connected to RabbitMQ")
    return connection


async def broker_context(url: str, connection_name: str) -> AsyncIterator[AbstractRobustConnection]:
    connection = await connect_broker(url, connection_name)
    try:
        yield connection
    finally:
        await connection.close()


async def broker_connected(connection: AbstractRobustConnection) -> bool:
    """Readiness: the robust connection is up (not closed, not reconnecting)."""
    return connection.connected.is_set() and not connection.is_closed


async def open_channel(
    connection: AbstractConnection, prefetch_count: int | None = None
) -> AbstractChannel:
    """A channel with publisher confirms: a publish returns once the broker has it, and
    fails at once when no queue is bound for it (mandatory messages come back)."""
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    if prefetch_count is not None:
        await channel.set_qos(prefetch_count=prefetch_count)
    return channel


def message_request_id(message: AbstractIncomingMessage) -> str | None:
    value = (message.headers or {}).get(REQUEST_ID_HEADER)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value if isinstance(value, str) and value else None  # not a number, a table...


def message_deadline_passed(message: AbstractIncomingMessage) -> bool:
    deadline = (message.headers or {}).get(DEADLINE_HEADER)
    return isinstance(deadline, int) and deadline < time.time() * 1000
