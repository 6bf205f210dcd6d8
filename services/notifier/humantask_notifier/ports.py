"""What the notifier's handlers need from the outside world, as protocols.

`repository` (MongoDB), `signing_keys` (the task-store), `retries` and `deferrals`
(RabbitMQ) and `sender` (HTTP) fulfil them in the service (`bootstrap` wires them); the
unit tests pass in-memory fakes with the same promises (`tests/support/fakes.py`).
`hosts` is plain memory: the callbacks each host has in progress.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from .domain import Attempt, Delivery, SigningSecrets


class Deliveries(Protocol):
    """One delivery per delivery id (`domain.delivery_id`); one claim per attempt number."""

    async def get(self, delivery_id: str) -> Delivery | None:
        """The delivery with every claimed attempt, by number."""

    async def latest(self, task_id: str) -> Delivery | None:
        """The task's delivery of the highest number (its attempts too), if any."""

    async def last_number(self, task_id: str) -> int:
        """The highest number any delivery of the task has had (0: none): its records',
        and its attempts' (which outlive the records)."""

    async def of_completion(self, task_id: str, completion: int) -> Delivery | None:
        """The delivery a completion of the task started (not a redelivery of it), if
        any."""

    async def create(self, delivery: Delivery) -> bool:
        """Store a new delivery; False (and nothing changes) if its id is taken."""

    async def claim(self, delivery: Delivery, attempt: Attempt) -> bool:
        """Claim `attempt`; False if any process (this one too) already claimed it."""

    async def finish(self, delivery_id: str, attempt: Attempt) -> bool:
        """Record a claimed attempt's outcome; False if it was recorded already."""

    async def mark_retry_scheduled(self, delivery_id: str) -> None: ...

    async def log(self, task_id: str, customer_id: str) -> list[Attempt]:
        """The customer's log of a task (nothing for another customer): the finished
        attempts of all its deliveries, oldest first (by delivery, then attempt)."""

    async def failed(
        self, since: datetime, customer_id: str | None, limit: int
    ) -> list[tuple[Delivery, Attempt]]:
        """Deliveries whose last attempt failed at `since` or later and that are their
        task's latest, with that attempt, oldest first; at most `limit`."""


class SigningKeys(Protocol):
    async def get(self, customer_id: str) -> SigningSecrets:
        """The customer's callback secrets; `NotFound` for an unknown customer,
        `Unavailable` when the task-store does not answer."""


class Retries(Protocol):
    async def schedule(self, task_id: str, delivery: int, request_id: str | None) -> None:
        """Returns once the broker holds the retry, due after the retry delay."""

    async def start(self, task_id: str, delivery: int, request_id: str | None) -> None:
        """Returns once the broker holds the message that starts a redelivery, due now."""


@dataclass(frozen=True)
class SendResult:
    """The receiver's status code, or why there was none (`error`, and `reason`: a word
    for it that a metric can count by)."""

    status_code: int | None = None
    error: str | None = None
    reason: str | None = field(default=None, compare=False)

    @property
    def kind(self) -> str:
        """`status_2xx` ... `status_5xx` for an answer; otherwise what went wrong:
        `invalid_url`, `refused_address`, `timeout`, `dns`, `connect` or `connection`."""
        if self.status_code is not None:
            return f"status_{self.status_code // 100}xx"
        return self.reason or "connection"


class HostSlots(Protocol):
    def slot(self, host: str | None) -> AbstractContextManager[None]:
        """Hold one of `host`'s slots while the context lasts (None: a URL that needs
        none), or raise `hosts.HostBusy` at once when it has CALLBACK_MAX_PER_HOST
        callbacks in progress."""
        ...


class Sender(Protocol):
    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> SendResult:
        """POST one callback; never raises: the result says what came of it."""


@dataclass(frozen=True)
class Dependencies:
    deliveries: Deliveries
    secrets: SigningKeys
    retries: Retries
    sender: Sender
    claim_ttl: timedelta
    # How many callbacks go to one host at once: past that, the message is put back.
    hosts: HostSlots
