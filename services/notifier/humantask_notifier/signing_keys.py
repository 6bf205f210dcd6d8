"""Customers' callback secrets, asked of the task-store (which owns customers) and kept
for a short while, so that a burst of completions costs one round trip per customer."""

from __future__ import annotations

import time

from humantask_shared.command_client import CommandClient
from humantask_shared.messages.commands import CallbackSecret, GetCallbackSecret

SECRET_CACHE_SECONDS = 60.0
SECRET_CACHE_MAX_ENTRIES = 10_000


class CallbackSecrets:
    def __init__(self, client: CommandClient, cache_seconds: float = SECRET_CACHE_SECONDS) -> None:
        self._client = client
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, str]] = {}

    async def get(self, customer_id: str) -> str:
        """The secret; `NotFound` for an unknown customer, `Unavailable` when the
        task-store does not answer."""
        cached = self._cache.get(customer_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        answer = await self._client.send(GetCallbackSecret(customer_id=customer_id), CallbackSecret)
        if len(self._cache) >= SECRET_CACHE_MAX_ENTRIES:
            self._cache.clear()
        self._cache[customer_id] = (time.monotonic() + self._cache_seconds, answer.callback_secret)
        return answer.callback_secret
