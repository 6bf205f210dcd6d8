"""HTTP Basic authentication: the API key or worker token is the username (API.md §3).

The gateway never sees the database: it asks the task-store who owns the credential's
SHA-256 and remembers the answer for a short while.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time

from aiohttp import web

from humantask_shared.core.credentials import credential_hash
from humantask_shared.core.errors import Unauthorized
from humantask_shared.core.messages.commands import Authenticate, Principal, Role

from .boundary import Boundary

MAX_CREDENTIAL_LENGTH = 512
AUTH_CACHE_MAX_ENTRIES = 10_000


def credential_from_header(header: str | None) -> str:
    """The username of a Basic `Authorization` header; the password is ignored."""
    if not header:
        raise Unauthorized("missing credentials: use HTTP Basic auth with your key as the username")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise Unauthorized("credentials must use HTTP Basic auth")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise Unauthorized("malformed Basic credentials") from exc
    username = decoded.partition(":")[0]
    if not username or len(username) > MAX_CREDENTIAL_LENGTH:
        raise Unauthorized("missing credentials: use your key as the Basic auth username")
    return username


class Authenticator:
    """Who a credential belongs to: asked of the task-store, remembered a short while.

    A revoked or rotated credential is forgotten as soon as its `credential.changed`
    event arrives (`forget`), and everything when events may have been missed
    (`forget_all`). An answer that was on its way while a credential changed is not
    cached: it may predate the change.

    Requests with one credential that miss the cache together share one question: under
    load, a look-up per request would queue behind the work itself (one client with a
    hundred requests in flight would ask a hundred times whenever its entry expires).

    It holds the boundary, not the task-store's client: in production that client is
    made when the app starts (`bootstrap.BrokerBoundary.connect`), after this.
    """

    def __init__(self, boundary: Boundary, cache_seconds: float) -> None:
        self._boundary = boundary
        self._cache_seconds = cache_seconds
        self._cache: dict[tuple[str, Role], tuple[float, Principal]] = {}
        self._asking: dict[tuple[str, Role], asyncio.Future[Principal]] = {}
        self._changes = 0  # credential changes heard of so far

    async def authenticate(self, request: web.Request, role: Role) -> Principal:
        digest = credential_hash(credential_from_header(request.headers.get("Authorization")))
        key = (digest, role)
        cached = self._cache.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        asking = self._asking.get(key)
        if asking is None:
            asking = asyncio.ensure_future(self._ask(key, self._changes))
            self._asking[key] = asking
            asking.add_done_callback(lambda done: self._asked(key, done))
        # Shielded: one caller going away does not cancel the others' answer.
        return await asyncio.shield(asking)

    def _asked(self, key: tuple[str, Role], done: asyncio.Future[Principal]) -> None:
        if self._asking.get(key) is done:
            del self._asking[key]
        if not done.cancelled():
            done.exception()  # retrieved: when every caller left, nobody else reads it

    async def _ask(self, key: tuple[str, Role], changes_before: int) -> Principal:
        digest, role = key
        principal = await self._boundary.taskstore.send(
            Authenticate(credential_hash=digest, role=role)
        )
        if self._changes == changes_before:
            if len(self._cache) >= AUTH_CACHE_MAX_ENTRIES:
                self._cache.clear()
            self._cache[key] = (time.monotonic() + self._cache_seconds, principal)
        return principal

    def forget(self, role: Role, principal_id: str) -> None:
        """Drop every cached credential of this customer or worker."""
        self._changes += 1
        self._asking.clear()  # an answer on its way may predate the change: ask anew
        stale = [
            key
            for key, (_, principal) in self._cache.items()
            if principal.principal_id == principal_id and principal.role == role
        ]
        for key in stale:
            del self._cache[key]

    def forget_all(self) -> None:
        self._changes += 1
        self._asking.clear()
        self._cache.clear()
