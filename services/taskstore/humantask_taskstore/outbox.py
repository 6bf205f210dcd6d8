"""Publishing the events a write left in its task's outbox.

A handler replies as soon as its write is durable and the events go out right after, in
the background (`publish_after_reply`); whatever a crash or a broker outage left behind,
the relay publishes later. Consumers deduplicate on `event_id`, so the rare double
publication (crash after publish, before removal) is harmless.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import timedelta

import orjson
from aio_pika.abc import AbstractExchange
from pymongo.errors import PyMongoError

from humantask_shared.core.messages.envelope import StampedEvent
from humantask_shared.core.timeutil import utcnow
from humantask_shared.runtime.broker import BROKER_ERRORS
from humantask_shared.runtime.publishing import publish
from humantask_shared.runtime.tracing import restored_trace_context

from .batching import GroupWriter
from .repository import OutboxStore

log = logging.getLogger(__name__)


# At most this many tasks' outboxes are cleared in one write.
MAX_CLEARS_PER_WRITE = 256


class OutboxClears:
    """Drops published events from their tasks' outboxes, many tasks in one write
    (`GroupWriter`)."""

    def __init__(self, store: OutboxStore) -> None:
        self._store = store
        self._writer: GroupWriter[tuple[str, list[str]]] = GroupWriter(
            self._write, MAX_CLEARS_PER_WRITE
        )

    async def clear(self, task_id: str, published: list[str]) -> None:
        await self._writer.submit((task_id, published))

    async def _write(self, clears: list[tuple[str, list[str]]]) -> list[BaseException | None]:
        await self._store.remove(clears)
        return [None] * len(clears)


class OutboxPublisher:
    def __init__(self, store: OutboxStore, exchange: AbstractExchange) -> None:
        self._store = store
        self._exchange = exchange
        self._clears = OutboxClears(store)
        # The newest background publication of each task: the next one waits for it, so
        # one process publishes a task's events in the order they were written.
        self._latest: dict[str, asyncio.Task[None]] = {}

    def publish_after_reply(self, task_id: str, events: Sequence[StampedEvent]) -> None:
        """Publish in the background; the events wait in the outbox until then."""
        before = self._latest.get(task_id)

        async def publish_in_order() -> None:
            if before is not None:
                await asyncio.wait([before])
            try:
                await self.publish(task_id, events)
            except PyMongoError as exc:  # published, not yet removed: the relay sees to it
                log.warning("outbox not cleared", extra={"task_id": task_id, "error": repr(exc)})

        publication = asyncio.create_task(publish_in_order())
        self._latest[task_id] = publication
        publication.add_done_callback(
            lambda done: (
                self._latest.pop(task_id, None) if self._latest.get(task_id) is done else None
            )
        )

    async def drain(self, timeout_seconds: float) -> None:
        """Wait for the background publications (at shutdown, before the channel closes)."""
        if self._latest:
            await asyncio.wait(list(self._latest.values()), timeout=timeout_seconds)

    async def publish(self, task_id: str, events: Sequence[StampedEvent]) -> None:
        """Publish events just written with their task; on failure leave them to the relay."""
        await self._publish_raw(task_id, [event.body for event in events])

    async def _publish_raw(self, task_id: str, raw_events: list[str]) -> bool:
        """Publish in order; then one write drops what was published from the outbox."""
        published: list[str] = []
        for raw in raw_events:
            if not await self._publish_one(task_id, raw):
                break
            published.append(raw)
        if published or not raw_events:  # an empty outbox still leaves the relay's index
            await self._clears.clear(task_id, published)
        return len(published) == len(raw_events)

    async def _publish_one(self, task_id: str, raw: str) -> bool:
        # Byte for byte as the outbox holds it; its routing key is its `event_type`.
        fields = orjson.loads(raw)
        try:
            # Returns once the broker has the event. Not mandatory: an event nobody
            # subscribes to yet is not an error. The relay publishes it in the trace of
            # the change that raised it.
            with restored_trace_context(fields.get("trace_context")):
                await publish(
                    self._exchange,
                    fields["event_type"],
                    raw.encode(),
                    message_type=fields["event_type"],
                    message_id=fields["event_id"],
                    request_id=fields.get("request_id"),
                    mandatory=False,
                )
        except BROKER_ERRORS as exc:
            log.warning(
                "event not published, the outbox relay will retry",
                extra={"task_id": task_id, "event_type": fields["event_type"], "error": repr(exc)},
            )
            return False
        log.info("event published", extra={"task_id": task_id, "event_type": fields["event_type"]})
        return True

    async def relay_once(self, stale_after: timedelta) -> int:
        """Publish the events of every task whose outbox is older than `stale_after`."""
        published = 0
        while True:
            now = utcnow()
            pending = await self._store.take_stale(now - stale_after, now)
            if pending is None:
                return published
            if not await self._publish_raw(pending.task_id, pending.events):
                return published
            published += len(pending.events)

    async def run_relay(self, interval_seconds: float) -> None:
        stale_after = timedelta(seconds=interval_seconds)
        while True:
            try:
                count = await self.relay_once(stale_after)
                if count:
                    log.info("outbox relay published left-over events", extra={"count": count})
            except PyMongoError as exc:
                log.warning("outbox relay could not read MongoDB", extra={"error": repr(exc)})
            await asyncio.sleep(interval_seconds)
