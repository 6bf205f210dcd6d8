"""Customers' callback secrets, asked of the task-store (which owns customers) and kept
for a short while, so that a burst of completions costs one round trip per customer.

During a rotation's overlap window the task-store hands over the replaced secret too,
and until when it signs; `SigningSecrets.at` drops it once that time has passed, however
long the answer stays cached.

A rotated secret is forgotten as soon as its `credential.changed` event arrives
(`forget`), and every secret when events may have been missed (`forget_all`); the short
lifetime is only the backstop. A secret that was on its way while one changed is not
kept: it may be the old one (`CachedLookup`, which the gateway's credentials use too).
"""

from __future__ import annotations

from humantask_shared.core.messages.base import CommandSender
from humantask_shared.core.messages.commands import GetCallbackSecret
from humantask_shared.runtime.cached_lookup import CachedLookup

from .domain import SigningSecrets

SECRET_CACHE_SECONDS = 10.0
SECRET_CACHE_MAX_ENTRIES = 10_000


class CallbackSecrets:
    def __init__(
        self, taskstore: CommandSender, cache_seconds: float = SECRET_CACHE_SECONDS
    ) -> None:
        self._taskstore = taskstore
        self._secrets: CachedLookup[str, SigningSecrets] = CachedLookup(
            self._ask, cache_seconds, SECRET_CACHE_MAX_ENTRIES
        )

    async def get(self, customer_id: str) -> SigningSecrets:
        """The secrets; `NotFound` for an unknown customer, `Unavailable` when the
        task-store does not answer."""
        return await self._secrets.get(customer_id)

    async def _ask(self, customer_id: str) -> SigningSecrets:
        answer = await self._taskstore.send(GetCallbackSecret(customer_id=customer_id))
        return SigningSecrets(answer.callback_secret, answer.previous_secret, answer.previous_until)

    def forget(self, customer_id: str) -> None:
        self._secrets.forget(lambda key, _secret: key == customer_id)

    def forget_all(self) -> None:
        self._secrets.forget_all()
