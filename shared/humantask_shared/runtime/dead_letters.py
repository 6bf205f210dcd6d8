"""How many messages wait in the dead-letter queues: a gauge for `/metrics`.

Dead-letter queues are never consumed (`topology.DEAD_LETTER_ARGUMENTS` bounds them),
so their depth is what tells an operator that messages are being turned away. Every
`DEAD_LETTER_CHECK_SECONDS` each service asks the broker (a passive queue declare) how
deep the dead-letter queues of the work queues it consumes are
(`topology.dead_letter_queues`), and sets `humantask_dead_letter_messages` for each. A
queue that cannot be read (the broker is reconnecting, the queue was deleted) keeps its
last value until the next look.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager

from aio_pika.abc import AbstractRobustConnection
from prometheus_client import Gauge

from .broker import BROKER_ERRORS
from .periodic import refreshing

log = logging.getLogger(__name__)

DEAD_LETTER_CHECK_SECONDS = 15.0

DEAD_LETTER_MESSAGES = Gauge(
    "humantask_dead_letter_messages",
    "Messages waiting in a dead-letter queue (read from the broker periodically)",
    ["queue"],
)


async def refresh_dead_letter_depths(
    connection: AbstractRobustConnection, queues: Iterable[str]
) -> dict[str, int]:
    """Read the depth of each of these dead-letter queues and set the gauge; returns what
    it read."""
    depths: dict[str, int] = {}
    names = sorted(queues)
    if not names:
        return depths
    channel = await connection.channel()
    try:
        for name in names:
            try:
                queue = await channel.declare_queue(name, passive=True, robust=False)
            except BROKER_ERRORS as exc:
                log.warning(
                    "could not read a dead-letter queue's depth",
                    extra={"queue": name, "error": repr(exc)},
                )
                if channel.is_closed:  # a failed passive declare closes the channel
                    channel = await connection.channel()
                continue
            depths[name] = queue.declaration_result.message_count or 0
            DEAD_LETTER_MESSAGES.labels(name).set(depths[name])
    finally:
        with contextlib.suppress(*BROKER_ERRORS):
            await channel.close()
    return depths


def dead_letter_watch(
    connection: AbstractRobustConnection, queues: Iterable[str]
) -> AbstractAsyncContextManager[None]:
    """The dead-letter gauge of `queues`, refreshed while the block runs."""
    return refreshing(
        functools.partial(refresh_dead_letter_depths, connection, tuple(queues)),
        DEAD_LETTER_CHECK_SECONDS,
        "the dead-letter queues",
        BROKER_ERRORS,
    )
