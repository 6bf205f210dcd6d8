"""The operator's hand on the dead letters (`humantask-admin dead-letters`): list, show,
replay into the work queue, drop.

A dead-letter queue (`<work queue>.dead-letter`, `topology`) is never consumed: what a
service could not handle waits there, bounded, until an operator looks. Looking takes
the messages with `basic.get` without acknowledging them, on a channel of its own, and
closing that channel gives back whatever was not acknowledged, where it was. Replaying a
message republishes it, with its body, type, id and headers (the request id, the trace
context; not the broker's `x-death` bookkeeping), into its work queue through the
default exchange, persistent and confirmed (`publishing.publish`), and only then
acknowledges the dead letter: a replay interrupted in between leaves the dead letter
where it was, and a second replay delivers a copy the consumers deduplicate (they are
idempotent). Dropping acknowledges it.

A dead-lettered *command* is never replayed: its caller stopped waiting (it was answered,
or got a `503`), its deadline has passed, and the receiver would drop it anyway; it can
be inspected and dropped.

A message is named by its `message_id` (every message humantask publishes has one), or,
lacking one, by `sha256:` and the first 16 hex digits of the digest of its body.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from ..core.timeutil import format_timestamp
from ..core.topology import DEAD_LETTER_SUFFIX, WORK_QUEUES, Queue
from .broker import REQUEST_ID_HEADER
from .publishing import PUBLISH_TIMEOUT_SECONDS, publish

# Headers RabbitMQ adds when it dead-letters a message: a replayed copy starts afresh.
BROKER_HEADERS = ("x-death", "x-first-death-", "x-last-death-")
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000  # a dead-letter queue holds at most this many (DEAD_LETTER_ARGUMENTS)


class UnknownQueue(ValueError):
    """Not the name of a work queue or of its dead-letter queue."""


class NotReplayable(ValueError):
    """A dead-lettered command: its caller stopped waiting long ago."""


def work_queue_of(name: str) -> Queue:
    """The work queue named `name`, or whose dead-letter queue is named `name`."""
    wanted = name.removesuffix(DEAD_LETTER_SUFFIX)
    for queue in WORK_QUEUES:
        if queue.name == wanted and queue.dead_letter_queue is not None:
            return queue
    known = ", ".join(queue.name for queue in WORK_QUEUES)
    raise UnknownQueue(f"no dead-letter queue of {name!r}: the work queues are {known}")


def dead_letter_queue_names() -> list[str]:
    return [q.dead_letter_queue.name for q in WORK_QUEUES if q.dead_letter_queue is not None]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class DeadLetter:
    """One message in a dead-letter queue, as an operator reads it."""

    queue: str  # the dead-letter queue
    work_queue: str
    id: str
    type: str | None
    reason: str | None  # why it was dead-lettered: `rejected`, `expired`...
    dead_lettered_at: datetime | None
    body: bytes
    headers: Mapping[str, Any]

    @classmethod
    def of(cls, queue: str, message: AbstractIncomingMessage) -> DeadLetter:
        headers = dict(message.headers or {})
        deaths = headers.get("x-death")
        first = deaths[0] if isinstance(deaths, list) and deaths else {}
        when = first.get("time") if isinstance(first, Mapping) else None
        if isinstance(when, datetime) and when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return cls(
            queue=queue,
            work_queue=queue.removesuffix(DEAD_LETTER_SUFFIX),
            id=message.message_id or "sha256:" + hashlib.sha256(message.body).hexdigest()[:16],
            type=message.type,
            reason=_text(headers.get("x-first-death-reason")),
            dead_lettered_at=when if isinstance(when, datetime) else None,
            body=message.body,
            headers=headers,
        )

    def summary(self) -> dict[str, Any]:
        """What `dead-letters list` prints: no body."""
        return {
            "queue": self.queue,
            "id": self.id,
            "type": self.type,
            "reason": self.reason,
            "dead_lettered_at": (
                None if self.dead_lettered_at is None else format_timestamp(self.dead_lettered_at)
            ),
            "bytes": len(self.body),
        }

    def detail(self) -> dict[str, Any]:
        """What `dead-letters show` prints: the body (as JSON when it is), the headers."""
        try:
            body: Any = orjson.loads(self.body)
        except orjson.JSONDecodeError:
            body = self.body.decode("utf-8", "replace")
        headers = {
            name: value if isinstance(value, str | int | float | bool) else _text(value)
            for name, value in self.headers.items()
            if not name.startswith(BROKER_HEADERS)
        }
        return {**self.summary(), "headers": headers, "body": body}

    def replay_headers(self) -> dict[str, Any]:
        return {
            name: value
            for name, value in self.headers.items()
            if not name.startswith(BROKER_HEADERS) and name != REQUEST_ID_HEADER
        }


class DeadLetterBox:
    """One dead-letter queue's messages, taken without acknowledging them on `channel`
    (a channel of the caller's own: closing it gives back whatever was not settled)."""

    def __init__(self, channel: AbstractChannel, name: str) -> None:
        self._channel = channel
        self.work_queue = work_queue_of(name)
        dead_letter = self.work_queue.dead_letter_queue
        assert dead_letter is not None
        self.name = dead_letter.name
        self._held: list[tuple[DeadLetter, AbstractIncomingMessage]] = []

    async def take(self, limit: int = MAX_LIMIT) -> list[DeadLetter]:
        """Up to `limit` messages, oldest first, held until settled or given back."""
        queue = await self._channel.get_queue(self.name, ensure=True)  # passive: no rights
        while len(self._held) < limit:
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            self._held.append((DeadLetter.of(self.name, message), message))
        return [letter for letter, _ in self._held]

    def _find(self, ids: Sequence[str] | None) -> list[tuple[DeadLetter, AbstractIncomingMessage]]:
        if ids is None:
            return list(self._held)
        found = [(letter, message) for letter, message in self._held if letter.id in ids]
        missing = sorted(set(ids) - {letter.id for letter, _ in found})
        if missing:
            raise LookupError(f"not in {self.name}: {', '.join(missing)}")
        return found

    async def replay(
        self, ids: Sequence[str] | None, timeout: float = PUBLISH_TIMEOUT_SECONDS
    ) -> list[DeadLetter]:
        """Republish these (None: every message held) into the work queue, then ack them."""
        if self.work_queue.commands:
            raise NotReplayable(
                f"{self.name} holds commands, which are never replayed: their callers "
                "stopped waiting and their deadlines have passed (show them, or drop them)"
            )
        chosen = self._find(ids)
        for letter, message in chosen:
            await publish(
                self._channel.default_exchange,
                self.work_queue.name,
                letter.body,
                message_type=letter.type or "",
                message_id=letter.id,
                request_id=_text((letter.headers or {}).get(REQUEST_ID_HEADER)) or None,
                mandatory=True,
                timeout=timeout,
                headers=letter.replay_headers(),
            )
            await message.ack()
        return [letter for letter, _ in chosen]

    async def drop(self, ids: Sequence[str] | None) -> list[DeadLetter]:
        """Acknowledge these (None: every message held): gone for good."""
        chosen = self._find(ids)
        for _, message in chosen:
            await message.ack()
        return [letter for letter, _ in chosen]
