"""The requests of `api.batches`, as `Call`s (no I/O: the sync and async clients send
them). Batches live in Scale's current API, under `/scale/v1/`."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from ._http import Call, drop_none
from .models import Batch, BatchStatus

PAGE_SIZE = 100


def batch_path(name: str, suffix: str = "") -> str:
    if not isinstance(name, str) or not name:
        raise ValueError("a batch's name must be a non-empty string")
    return f"batches/{quote(name, safe='')}{suffix}"


def create(
    project: str, name: str, callback: str | None, metadata: dict[str, Any] | None
) -> Call[Batch]:
    body = drop_none({"project": project, "name": name, "callback": callback, "metadata": metadata})
    return Call("POST", "batches", Batch.model_validate, json=body, scale=True)


def finalize(name: str) -> Call[Batch]:
    # Finalizing a finalized batch answers it again: safe to repeat.
    return Call(
        "POST", batch_path(name, "/finalize"), Batch.model_validate, retryable=True, scale=True
    )


def get(name: str) -> Call[Batch]:
    return Call("GET", batch_path(name), Batch.model_validate, retryable=True, scale=True)


def status(name: str) -> Call[BatchStatus]:
    return Call(
        "GET", batch_path(name, "/status"), BatchStatus.model_validate, retryable=True, scale=True
    )


def page(
    project: str | None, status: str | None, offset: int, limit: int = PAGE_SIZE
) -> Call[tuple[list[Batch], bool]]:
    """A page of batches, newest first, and whether more follow."""
    params = drop_none(
        {"project": project, "status": status, "offset": str(offset), "limit": str(limit)}
    )

    def parse(body: Any) -> tuple[list[Batch], bool]:
        return [Batch.model_validate(doc) for doc in body["docs"]], bool(body["has_more"])

    return Call("GET", "batches", parse, params=params, retryable=True, scale=True)
