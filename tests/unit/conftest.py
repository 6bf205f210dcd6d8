"""In-process fixtures: the gateway with a fake boundary (no broker, no database)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest

from tests.support.gateway import Gateway, in_process_gateway

GatewayFactory = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def gateway() -> AsyncIterator[GatewayFactory]:
    """`await gateway(**settings)`: the real app on a local port, a fake boundary behind."""
    async with AsyncExitStack() as stack:

        async def start(**settings: Any) -> Gateway:
            return await stack.enter_async_context(in_process_gateway(**settings))

        yield start
