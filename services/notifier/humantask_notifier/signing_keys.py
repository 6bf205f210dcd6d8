"""Customers' callback secrets, asked of the task-store (which owns customers) and kept
for a short while, so that a burst of completions costs one round trip per customer.

A rotated secret is forgotten as soon as its `credential.changed` event arrives
(`forget`), and every secret when events may have been missed (`forget_all`); the short
lifetime is only the backstop. A secret that was on its way while one changed is not
kept: it may be the old one.
"""

from __future__ import annotations

import time

from humantask_shared.core.messages.commands import GetCallbackSecret
from humantask_shared.runtime.command_client import CommandClient

SECRET_CACHE_SECONDS = 10.0
SECRET_CACHE_MAX_ENTRIES = 10_000


class CallbackSecrets:
    def __init__(self, client: CommandClient, cache_seconds: float = SECRET_CACHE_SECONDS) -> None:
        self._client = client
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, str]] = {}
        self._changes = 0  # credential changes heard of so far

    async def get(self, customer_id: str) -> str:
        """The secret; `NotFound` for an unknown customer, `Unavailable` when the
        task-store does not answer."""
        cached = self._cache.get(customer_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        changes_before = self._changes
        answer = await self._client.send(GetCallbackSecret(customer_id=customer_id))
        if self._changes == changes_before:
            if len(self._cache) >= SECRET_CACHE_MAX_ENTRIES:
                self._cache.clear()
            expires = time.monotonic() + self._cache_seconds
            self._cache[customer_id] = (expires, answer.callback_secret)
        return answer.callback_secret

    def forget(self, customer_id: str) -> None:
        self._changes += 1
        self._cache.pop(customer_id, None)

    def forget_all(self) -> None:
        self._changes += 1
        self._cache.clear()
