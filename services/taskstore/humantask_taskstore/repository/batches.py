"""Batches: one document each in `batches`, `_id` its id as an ObjectId, unique by
(customer, name), with its outbox of unpublished events (`outbox`, `outbox_at`) as a
task has one, so that the write that completes a batch and its `batch.completed` are one
write (the batches' `OutboxStore` and relay publish them). Every change is one
conditional write on the version it was decided on.

A page of a customer's batches is bounded as a page of tasks is (`listing`): it ends
early rather than pass LIST_PAGE_MAX_BYTES (`has_more` says the rest follows), and its
queries share LIST_MAX_TIME_MS (`Unavailable` past it)."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import bson
import orjson
from bson import ObjectId
from pymongo import DESCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ExecutionTimeout, PyMongoError

from humantask_shared.core.messages.envelope import StampedEvent
from humantask_shared.core.scale_models import BatchCounts, BatchListQuery
from humantask_shared.core.timeutil import as_utc
from humantask_shared.runtime.mongo import Document, is_unique_conflict

from ..batches import BatchRecord
from ..ports import BatchExists
from .documents import outbox_entries
from .indexes import BATCH_LIST_INDEX, BATCHES
from .listing import NOT_LISTED, ListLimits, ListTimeLimit


def _fields(batch: BatchRecord) -> dict[str, Any]:
    return {
        "customer_id": batch.customer_id,
        "name": batch.name,
        "project": batch.project,
        "created_at": batch.created_at,
        "callback": batch.callback,
        "metadata_json": None if batch.metadata is None else orjson.dumps(batch.metadata).decode(),
        "status": batch.status,
        "finalized_at": batch.finalized_at,
        "completed_at": batch.completed_at,
        "counts": None if batch.counts is None else batch.counts.model_dump(),
        "version": batch.version,
        "request_id": batch.request_id,
    }


def _batch(doc: dict[str, Any]) -> BatchRecord:
    return BatchRecord(
        batch_id=str(doc["_id"]),
        customer_id=doc["customer_id"],
        name=doc["name"],
        project=doc["project"],
        created_at=as_utc(doc["created_at"]),
        callback=doc.get("callback") or "",
        metadata=None if doc.get("metadata_json") is None else orjson.loads(doc["metadata_json"]),
        status=doc["status"],
        finalized_at=as_utc(doc["finalized_at"]) if doc.get("finalized_at") else None,
        completed_at=as_utc(doc["completed_at"]) if doc.get("completed_at") else None,
        counts=BatchCounts.model_validate(doc["counts"]) if doc.get("counts") else None,
        version=doc.get("version", 0),
        request_id=doc.get("request_id"),
    )


class BatchRepository:
    def __init__(self, db: AsyncDatabase[Document], limits: ListLimits | None = None) -> None:
        self._batches = db[BATCHES]
        self._limits = limits or ListLimits()

    async def add(self, batch: BatchRecord) -> None:
        """Insert a new batch; `BatchExists` when its id (a redelivered command) or the
        customer's name for it is taken."""
        try:
            await self._batches.insert_one(
                {"_id": ObjectId(batch.batch_id), **_fields(batch), "outbox": []}
            )
        except PyMongoError as exc:
            if not is_unique_conflict(exc):
                raise
            existing = await self._batches.find_one({"_id": ObjectId(batch.batch_id)})
            if existing is None:
                existing = await self._batches.find_one(
                    {"customer_id": batch.customer_id, "name": batch.name}
                )
            raise BatchExists(batch if existing is None else _batch(existing)) from None

    async def get(self, customer_id: str, name: str) -> BatchRecord | None:
        doc = await self._batches.find_one({"customer_id": customer_id, "name": name})
        return None if doc is None else _batch(doc)

    async def save(
        self, batch: BatchRecord, events: Sequence[StampedEvent], now: datetime
    ) -> BatchRecord | None:
        """Write a changed batch and its events if nobody changed it since it was read;
        None when another writer got there first."""
        changed = _fields(batch) | {"version": batch.version + 1}
        update: dict[str, Any] = {"$set": changed}
        if events:
            update["$push"] = {"outbox": {"$each": outbox_entries(events)}}
            update["$min"] = {"outbox_at": now}
        doc = await self._batches.find_one_and_update(
            {"_id": ObjectId(batch.batch_id), "version": batch.version},
            update,
            return_document=ReturnDocument.AFTER,
        )
        return None if doc is None else _batch(doc)

    async def list(
        self, customer_id: str, query: BatchListQuery
    ) -> tuple[builtins.list[BatchRecord], int]:
        """A page of the customer's batches, newest first, and how many match in all. A
        customer's batches are sorted in memory (DocumentDB sorts what a filter matched):
        batches are few beside tasks."""
        criteria: dict[str, Any] = {"customer_id": customer_id}
        if query.project is not None:
            criteria["project"] = query.project
        if query.status is not None:
            criteria["status"] = query.status
        created: dict[str, Any] = {}
        if query.start_time is not None:
            created["$gte"] = query.start_time
        if query.end_time is not None:
            created["$lt"] = query.end_time
        if created:
            criteria["created_at"] = created
        budget = ListTimeLimit(self._limits.max_time_ms)
        try:
            cursor = (
                self._batches.find(criteria, NOT_LISTED)
                .sort([("created_at", DESCENDING), ("_id", DESCENDING)])
                .skip(query.offset)
                .limit(query.limit)
                .hint(BATCH_LIST_INDEX)
                .max_time_ms(budget.left_ms())
            )
            page: builtins.list[BatchRecord] = []
            size = 0
            async for doc in cursor:
                size += len(bson.encode(doc))
                if size > self._limits.page_max_bytes and page:
                    break
                page.append(_batch(doc))
            await cursor.close()
            total = await self._batches.count_documents(
                criteria, hint=BATCH_LIST_INDEX, maxTimeMS=budget.left_ms()
            )
        except ExecutionTimeout:
            raise budget.exceeded() from None
        return page, total
