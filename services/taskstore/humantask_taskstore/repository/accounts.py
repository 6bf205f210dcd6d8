"""Customers, workers and their credentials: the task-store's other aggregate."""

from __future__ import annotations

import contextlib
import hmac
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from humantask_shared.core.messages.commands import Account, CallbackSecret, Principal, Role
from humantask_shared.core.timeutil import as_utc
from humantask_shared.runtime.mongo import Document

CUSTOMERS = "customers"
WORKERS = "workers"
CREDENTIALS = "credentials"


class AccountRepository:
    """Customers, workers and their credentials (stored as SHA-256, never in clear).

    A credential document (`_id` = the SHA-256 of the key or token) names its principal;
    revoking or rotating it away sets its `revoked_at`, so it can never come back (not
    even as the demo key at the next start). A revoked principal has `revoked_at` too.
    """

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._customers = db[CUSTOMERS]
        self._workers = db[WORKERS]
        self._credentials = db[CREDENTIALS]

    async def authenticate(self, credential_hash: str, role: Role) -> Principal | None:
        doc = await self._credentials.find_one({"_id": credential_hash})
        if doc is None or doc["role"] != role or doc.get("revoked_at") is not None:
            return None
        if not hmac.compare_digest(doc["_id"], credential_hash):
            return None
        return Principal(principal_id=doc["principal_id"], role=role)

    async def owner_of(self, credential_hash: str, role: Role) -> Principal | None:
        """Whose credential this is, revoked or not."""
        doc = await self._credentials.find_one({"_id": credential_hash})
        if doc is None or doc["role"] != role:
            return None
        return Principal(principal_id=doc["principal_id"], role=role)

    async def add_customer(
        self, name: str, credential_hash: str, callback_secret: str, now: datetime
    ) -> Principal:
        customer_id = str(ObjectId())
        await self._customers.insert_one(
            {
                "_id": customer_id,
                "name": name,
                "callback_secret": callback_secret,
                "created_at": now,
            }
        )
        await self._add_credential(credential_hash, "customer", customer_id, now)
        return Principal(principal_id=customer_id, role="customer")

    async def add_worker(self, name: str, credential_hash: str, now: datetime) -> Principal:
        worker_id = str(ObjectId())
        await self._workers.insert_one({"_id": worker_id, "name": name, "created_at": now})
        await self._add_credential(credential_hash, "worker", worker_id, now)
        return Principal(principal_id=worker_id, role="worker")

    async def ensure_customer(
        self, name: str, credential_hash: str, callback_secret: str, now: datetime
    ) -> Principal | None:
        """The customer of this key, created if there is none; None if it was revoked."""
        if await self.owner_of(credential_hash, "customer") is None:
            # DuplicateKeyError: another gateway created it at the same moment.
            with contextlib.suppress(DuplicateKeyError):
                await self.add_customer(name, credential_hash, callback_secret, now)
        return await self.authenticate(credential_hash, "customer")

    async def callback_secret(self, customer_id: str) -> str | None:
        doc = await self._customers.find_one({"_id": customer_id}, {"callback_secret": 1})
        return None if doc is None else doc["callback_secret"]

    async def signing_secrets(self, customer_id: str) -> CallbackSecret | None:
        doc = await self._customers.find_one(
            {"_id": customer_id},
            {"callback_secret": 1, "previous_callback_secret": 1, "previous_secret_until": 1},
        )
        if doc is None:
            return None
        until = doc.get("previous_secret_until")
        return CallbackSecret(
            callback_secret=doc["callback_secret"],
            previous_secret=doc.get("previous_callback_secret"),
            previous_until=None if until is None else as_utc(until),
        )

    async def accounts(self, role: Role) -> list[Account]:
        """Every customer or worker, oldest first; no secret is read."""
        cursor = (
            self._principals(role)
            .find({}, {"name": 1, "created_at": 1, "revoked_at": 1})
            .sort([("created_at", ASCENDING), ("_id", ASCENDING)])
        )
        return [self._account(role, doc) async for doc in cursor]

    async def account(self, role: Role, principal_id: str) -> Account | None:
        doc = await self._principals(role).find_one(
            {"_id": principal_id}, {"name": 1, "created_at": 1, "revoked_at": 1}
        )
        return None if doc is None else self._account(role, doc)

    async def revoke(self, role: Role, principal_id: str, now: datetime) -> Account | None:
        """Revoke the principal and every credential of it; None if there is no such one.

        Credentials first: from that write on the key is refused, whatever happens next
        (running it again finishes the job)."""
        if await self.account(role, principal_id) is None:
            return None
        await self._revoke_credentials(role, principal_id, now)
        await self._principals(role).update_one(
            {"_id": principal_id, "revoked_at": {"$exists": False}}, {"$set": {"revoked_at": now}}
        )
        return await self.account(role, principal_id)

    async def rotate_credential(
        self, role: Role, principal_id: str, credential_hash: str, now: datetime
    ) -> Account | None:
        """The principal's credential becomes this one and every other is revoked. The
        caller checks that the principal exists and is not revoked."""
        try:
            await self._add_credential(credential_hash, role, principal_id, now)
        except DuplicateKeyError:  # a redelivered command: it is ours already
            owner = await self.owner_of(credential_hash, role)
            if owner is None or owner.principal_id != principal_id:
                raise
        await self._revoke_credentials(role, principal_id, now, keep=credential_hash)
        return await self.account(role, principal_id)

    async def rotate_callback_secret(
        self, customer_id: str, callback_secret: str, previous_until: datetime | None = None
    ) -> bool:
        """The replaced secret is read and kept in one conditional write on it (no
        pipeline updates: FerretDB): a rotation that lost a race reads again."""
        while True:
            doc = await self._customers.find_one({"_id": customer_id}, {"callback_secret": 1})
            if doc is None:
                return False
            if doc["callback_secret"] == callback_secret:
                return True  # a redelivered command: done already
            keep: dict[str, Any] = (
                {
                    "previous_callback_secret": doc["callback_secret"],
                    "previous_secret_until": previous_until,
                }
                if previous_until is not None
                else {"previous_callback_secret": None, "previous_secret_until": None}
            )
            result = await self._customers.update_one(
                {"_id": customer_id, "callback_secret": doc["callback_secret"]},
                {"$set": {"callback_secret": callback_secret, **keep}},
            )
            if result.matched_count == 1:
                return True

    def _principals(self, role: Role) -> AsyncCollection[Document]:
        return self._customers if role == "customer" else self._workers

    @staticmethod
    def _account(role: Role, doc: dict[str, Any]) -> Account:
        revoked_at = doc.get("revoked_at")
        return Account(
            role=role,
            principal_id=doc["_id"],
            name=doc["name"],
            created_at=as_utc(doc["created_at"]),
            revoked_at=None if revoked_at is None else as_utc(revoked_at),
        )

    async def _revoke_credentials(
        self, role: Role, principal_id: str, now: datetime, keep: str | None = None
    ) -> None:
        query: dict[str, Any] = {
            "principal_id": principal_id,
            "role": role,
            "revoked_at": {"$exists": False},
        }
        if keep is not None:
            query["_id"] = {"$ne": keep}
        await self._credentials.update_many(query, {"$set": {"revoked_at": now}})

    async def _add_credential(
        self, credential_hash: str, role: Role, principal_id: str, now: datetime
    ) -> None:
        await self._credentials.insert_one(
            {"_id": credential_hash, "role": role, "principal_id": principal_id, "created_at": now}
        )
