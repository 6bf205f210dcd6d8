"""Integration fixtures: real RabbitMQ and MongoDB connections, a database per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit

import aio_pika
import pytest
from aio_pika.abc import AbstractRobustConnection
from pymongo.asynchronous.database import AsyncDatabase

from humantask_shared.runtime.mongo import connect_mongo

Prepare = Callable[[AsyncDatabase], Awaitable[None]]


@pytest.fixture
def fresh_database(mongodb_url: str) -> Callable[[Prepare], AsyncIterator[AsyncDatabase]]:
    """`async for db in fresh_database(ensure_indexes)`: a database of the test's own,
    next to the session's, prepared with a service's indexes and dropped afterwards."""

    async def open_database(prepare: Prepare) -> AsyncIterator[AsyncDatabase]:
        name = f"{urlsplit(mongodb_url).path.lstrip('/')}_{uuid.uuid4().hex[:8]}"
        client = await connect_mongo(mongodb_url, "humantask-integration-tests")
        try:
            await prepare(client[name])
            yield client[name]
            await client.drop_database(name)
        finally:
            await client.close()

    return open_database


@pytest.fixture
async def connection(amqp_url: str) -> AsyncIterator[AbstractRobustConnection]:
    connection = await aio_pika.connect_robust(amqp_url)
    try:
        yield connection
    finally:
        await connection.close()
