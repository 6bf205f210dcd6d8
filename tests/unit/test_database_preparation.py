"""A service whose database refuses its startup preparation for a moment tries again.

Two task-stores started together on an empty database both create their indexes;
DocumentDB may answer one of them "deadlock detected". That copy must retry, not exit
(found by `make chaos`, which starts two copies of each service).
"""

from __future__ import annotations

from typing import Any

import pytest
from pymongo.errors import OperationFailure

from humantask_shared.runtime import resources, retrying


async def test_a_refused_preparation_is_tried_again_until_it_succeeds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pauses: list[float] = []

    async def no_wait(seconds: float) -> None:
        pauses.append(seconds)

    monkeypatch.setattr(retrying.asyncio, "sleep", no_wait)
    attempts = 0

    async def prepare(_database: Any) -> None:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise OperationFailure("deadlock detected", code=16908292)

    await resources.prepare_with_retries(prepare, database=object())  # type: ignore[arg-type]
    assert attempts == 3
    assert pauses == [0.5, 1.0]  # backoff between the attempts


async def test_a_bug_in_preparation_is_not_retried() -> None:
    async def prepare(_database: Any) -> None:
        raise ValueError("not a database error")

    with pytest.raises(ValueError):
        await resources.prepare_with_retries(prepare, database=object())  # type: ignore[arg-type]
