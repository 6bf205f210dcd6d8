"""How many callbacks go to one host at once (CALLBACK_MAX_PER_HOST). No I/O.

A receiver that accepts connections and never answers holds each callback sent to it
for CALLBACK_TIMEOUT_SECONDS. Without a bound per host, its callbacks would take every
message the notifier has in hand, and other customers' callbacks would wait behind them
in the queue. With it, a callback to a host that already has its share in progress is
not sent: its message is put back in the broker for a while (`ports.Deferrals`), before
any attempt is claimed, and the notifier moves on to the next message.

Counted per notifier process, by the host as the HTTP client will connect to it (yarl's
lower-case, IDNA form), ports aside.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .addresses import callback_url


class HostBusy(Exception):
    """The callback's host has CALLBACK_MAX_PER_HOST callbacks in progress."""


def host_of(url: str) -> str | None:
    """The host a callback URL connects to; None when it is not a callback URL (the
    sender refuses those without any I/O, so they need no slot)."""
    target = callback_url(url)
    return None if target is None else target.host


class HostSlots:
    def __init__(self, max_per_host: int) -> None:
        self._max = max_per_host  # 0: no limit
        self._in_progress: dict[str, int] = {}

    def in_progress(self, host: str) -> int:
        return self._in_progress.get(host, 0)

    def take(self, host: str) -> bool:
        held = self._in_progress.get(host, 0)
        if self._max and held >= self._max:
            return False
        self._in_progress[host] = held + 1
        return True

    def give_back(self, host: str) -> None:
        left = self._in_progress.get(host, 0) - 1
        if left > 0:
            self._in_progress[host] = left
        else:
            self._in_progress.pop(host, None)  # only hosts with callbacks in progress

    @contextmanager
    def slot(self, host: str | None) -> Iterator[None]:
        """Hold one of the host's slots meanwhile, or raise `HostBusy` at once."""
        if host is None:
            yield
            return
        if not self.take(host):
            raise HostBusy(host)
        try:
            yield
        finally:
            self.give_back(host)
