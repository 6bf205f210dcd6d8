"""HTTP Basic authentication: the API key or worker token is the username
(docs/reference/contract.md §3).

The gateway never sees the database: it asks the task-store who owns the credential's
SHA-256 and remembers the answer for a short while.
"""

from __future__ import annotations

import base64
import binascii

from aiohttp import web

from humantask_shared.core.credentials import credential_hash
from humantask_shared.core.errors import Unauthorized
from humantask_shared.core.messages.commands import Authenticate, Principal, Role
from humantask_shared.runtime.cached_lookup import CachedLookup

from .boundary import Boundary

MAX_CREDENTIAL_LENGTH = 512
# The paths of the API, which take credentials: `/v1` and Scale's `/scale/v1`.
API_PREFIXES = ("/v1/", "/scale/v1/")
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


def request_credential_digest(request: web.Request) -> str | None:
    """The SHA-256 of the request's credential, or None when it has none the task-store
    would be asked about (the view answers those 401 on its own). Only the API's
    requests (`API_PREFIXES`) carry credentials: the health routes and the workbench
    page never do."""
    header = request.headers.get("Authorization")
    if not header or not request.path.startswith(API_PREFIXES):
        return None
    try:
        return credential_hash(credential_from_header(header))
    except Unauthorized:
        return None


class Authenticator:
    """Who a credential belongs to: asked of the task-store, remembered a short while
    (`CachedLookup`: concurrent look-ups of one credential share one question, and a
    `credential.changed` event makes it forget at once).

    It holds the boundary, not the task-store's client: in production that client is
    made when the app starts (`broker_boundary.BrokerBoundary.connect`), after this.
    """

    def __init__(self, boundary: Boundary, cache_seconds: float) -> None:
        self._boundary = boundary
        self._principals: CachedLookup[tuple[str, Role], Principal] = CachedLookup(
            self._ask, cache_seconds, AUTH_CACHE_MAX_ENTRIES
        )

    async def authenticate(self, request: web.Request, role: Role) -> Principal:
        digest = credential_hash(credential_from_header(request.headers.get("Authorization")))
        return await self._principals.get((digest, role))

    async def _ask(self, key: tuple[str, Role]) -> Principal:
        digest, role = key
        return await self._boundary.taskstore.send(Authenticate(credential_hash=digest, role=role))

    def forget(self, role: Role, principal_id: str) -> None:
        """Drop every cached credential of this customer or worker."""
        self._principals.forget(
            lambda _key, principal: (
                principal.principal_id == principal_id and principal.role == role
            )
        )

    def forget_all(self) -> None:
        self._principals.forget_all()
