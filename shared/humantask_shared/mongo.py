"""Connecting to MongoDB with PyMongo's asyncio API (the successor of Motor)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

log = logging.getLogger(__name__)


async def connect_mongo(url: str, app_name: str) -> AsyncMongoClient:
    """A client whose server answered a ping; retries with backoff until it does."""
    client: AsyncMongoClient = AsyncMongoClient(
        url,
        appname=app_name,
        tz_aware=True,
        # A 200 means the data is safe: acknowledged by a majority, in the journal.
        w="majority",
        journal=True,
        serverSelectionTimeoutMS=5000,
    )
    delay = 0.5
    while True:
        try:
            await client.admin.command("ping")
            log.info("connected to MongoDB")
            return client
        except PyMongoError as exc:
            log.warning(
                "MongoDB is not reachable, retrying",
                extra={"error": str(exc), "retry_in_seconds": delay},
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 15)


async def ping(database: AsyncDatabase) -> bool:
    await database.command("ping")
    return True


async def mongo_context(url: str, database: str, app_name: str) -> AsyncIterator[AsyncDatabase]:
    client = await connect_mongo(url, app_name)
    try:
        yield client[database]
    finally:
        await client.close()
