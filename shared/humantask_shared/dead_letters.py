"""How many messages wait in the dead-letter queues: a gauge for `/metrics`.

Dead-letter queues are never consumed (`messaging.DEAD_LETTER_ARGUMENTS` bounds them),
so their depth is what tells an operator that messages are being turned away. Every
`DEAD_LETTER_CHECK_SECONDS` each service asks the broker (a passive queue declare) how
deep the dead-letter queues it declared are, and sets `humantask_dead_letter_messages`
for each. A queue that cannot be read (the broker is reconnecting, the queue was deleted)
keeps its last value until the next round.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable

from aio_pika.abc import AbstractRobustConnection
from prometheus_client import Gauge

from .messaging import BROKER_ERRORS, declared_dead_letter_queues

log = logging.getLogger(__name__)

DEAD_LETTER_CHECK_SECONDS = 15.0

DEAD_LETTER_MESSAGES = Gauge(
    "humantask_dead_letter_messages",
    "Messages waiting in a dead-letter queue (read from the broker periodically)",
    ["queue"],
)


async def refresh_dead_letter_depths(
    connection: AbstractRobustConnection, queues: Iterable[str] | None = None
) -> dict[str, int]:
    """Read the depth of each dead-letter queue (those this process declared by default)
    and set the gauge; returns what it read."""
    depths: dict[str, int] = {}
    names = sorted(declared_dead_letter_queues if queues is None else queues)
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


async def watch_dead_letters(
    connection: AbstractRobustConnection, interval_seconds: float = DEAD_LETTER_CHECK_SECONDS
) -> None:
    """Refresh the gauge every `interval_seconds`, until cancelled."""
    while True:
        try:
            await refresh_dead_letter_depths(connection)
        except BROKER_ERRORS as exc:
            log.warning("could not read the dead-letter queues", extra={"error": repr(exc)})
        except Exception:  # a metric must never take the service down
            log.exception("reading the dead-letter queues failed")
        await asyncio.sleep(interval_seconds)


@contextlib.asynccontextmanager
async def dead_letter_watch(connection: AbstractRobustConnection) -> AsyncIterator[None]:
    task = asyncio.create_task(watch_dead_letters(connection), name="dead-letter-watch")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
