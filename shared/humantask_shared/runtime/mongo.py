"""Connecting to MongoDB with PyMongo's asyncio API (the successor of Motor)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, OperationFailure, PyMongoError

from .retrying import until_it_works

log = logging.getLogger(__name__)

# What the collections hold: PyMongo's default document class.
Document = dict[str, Any]


async def connect_mongo(url: str, app_name: str) -> AsyncMongoClient[Document]:
    """A client whose server answered a ping; retries with backoff until it does."""
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        url,
        appname=app_name,
        tz_aware=True,
        # A 200 means the data is safe: acknowledged by a majority, in the journal.
        w="majority",
        journal=True,
        serverSelectionTimeoutMS=5000,
    )
    await until_it_works(
        lambda: client.admin.command("ping"), (PyMongoError,), "MongoDB is not reachable"
    )
    log.info("connected to MongoDB")
    return client


# FerretDB 2.7 passes two answers of DocumentDB through unmapped when writes race on a
# unique index that is partial, where MongoDB answers DuplicateKeyError (11000):
# PostgreSQL's exclusion-constraint violation (InternalError, code 1) and a deadlock
# between the racing statements (16908292). Either way the write did not happen and a
# racing one won or is winning, which is what a duplicate key means to the caller.
_UNIQUE_CONFLICT_MESSAGES = ("violates exclusion constraint", "deadlock detected")


def is_unique_conflict(exc: PyMongoError) -> bool:
    """A unique index refused the write because another write holds the key."""
    if isinstance(exc, DuplicateKeyError):
        return True
    return isinstance(exc, OperationFailure) and any(
        message in str(exc) for message in _UNIQUE_CONFLICT_MESSAGES
    )


async def ping(database: AsyncDatabase[Document]) -> bool:
    await database.command("ping")
    return True


async def mongo_context(
    url: str, database: str, app_name: str
) -> AsyncIterator[AsyncDatabase[Document]]:
    client = await connect_mongo(url, app_name)
    try:
        yield client[database]
    finally:
        await client.close()
