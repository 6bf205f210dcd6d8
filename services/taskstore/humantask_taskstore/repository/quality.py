"""What each customer knows of its workers (docs/reference/contract.md §10): the quality
model's state (`quality.model`) as documents of counters, updated with `$inc`.

One collection, `quality`, so that an answer's decision reads everything it needs in one
query (`context`):
- `c/<customer id>`: the customer's pooled state (`classes`, `counts`, `row_totals`,
  `answered`, `calibration_bins`, `gold_answers`), its cached calibration fit
  (`calibration`), and the secret its workers' pseudonyms are made with;
- `w/<customer id>/<worker id>`: one worker for one customer: its matrix (`counts`,
  `row_totals`, `answered`), `answers`, `gold_answers`, `gold_correct`, `blocked`,
  `started` (it was served a task of the customer's: the first gold is behind it), and
  `applied`, the keys of the last increments written to it.

Category strings are field names here, encoded (`field_name`: a category may hold `.` or
start with `$`). A worker's increments are written once per key: the write's filter says
the key is not among the last `APPLIED_KEPT` applied, and the write adds it (a redelivered
event, processed again, changes nothing). The customer's pooled counters are a prior:
its increments are written after its workers', and skipped when every worker's had been
written already (a redelivery); a crash between the two loses that one event's pooled
increment, which the model does not need exactly.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from humantask_shared.core.errors import Unavailable
from humantask_shared.runtime.mongo import Document, is_unique_conflict

from .. import quality
from ..workers import Applied, QualityContext, Standing, WorkerRecord, WorkerStanding

QUALITY = "quality"
T = TypeVar("T")
# First writes of one document racing each other: the loser writes on the winner's.
RACE_ATTEMPTS = 3
# How many keys of applied increments a worker's document remembers: its own answers and
# the completions of tasks it answered, each written once (the worker answers one task at
# a time, so a redelivery comes long before this many later writes).
APPLIED_KEPT = 64
# What a decision on an answer never reads of the customer's document.
_NOT_FOR_DECISIONS = {"calibration_bins": 0, "applied": 0, "pseudonym_key": 0}


def field_name(category: str) -> str:
    """A category as a field name: `%`, `.`, `$` and NUL escaped (reversible)."""
    return category.replace("%", "%25").replace(".", "%2E").replace("$", "%24").replace("\0", "%00")


def category_of(name: str) -> str:
    return name.replace("%00", "\0").replace("%24", "$").replace("%2E", ".").replace("%25", "%")


def customer_key(customer_id: str) -> str:
    return f"c/{customer_id}"


def worker_key(customer_id: str, worker_id: str) -> str:
    return f"w/{customer_id}/{worker_id}"


async def ensure_quality_indexes(db: AsyncDatabase[Document]) -> None:
    documents = db[QUALITY]
    # A claim reads a worker's standing with every customer; a customer's view, its workers.
    await documents.create_index(
        [("worker_id", ASCENDING), ("customer_id", ASCENDING)],
        name="worker_customers",
        partialFilterExpression={"worker_id": {"$type": "string"}},
    )
    await documents.create_index(
        [("customer_id", ASCENDING), ("worker_id", ASCENDING)], name="customer_workers"
    )
    # The gauge of blocked workers (DocumentDB's planner does not take a partial index
    # for it: a whole one, small all the same).
    await documents.create_index([("blocked", ASCENDING)], name="blocked_workers")


def _matrix(doc: Mapping[str, Any], name: str) -> dict[str, dict[str, float]]:
    return {
        category_of(true): {category_of(a): float(n) for a, n in row.items()}
        for true, row in (doc.get(name) or {}).items()
    }


def _counters(doc: Mapping[str, Any], name: str) -> dict[str, float]:
    return {category_of(key): float(value) for key, value in (doc.get(name) or {}).items()}


def _worker_state(doc: Mapping[str, Any]) -> quality.WorkerState:
    return quality.WorkerState(
        counts=_matrix(doc, "counts"),
        row_totals=_counters(doc, "row_totals"),
        answered=_counters(doc, "answered"),
        gold_answers=int(doc.get("gold_answers", 0)),
        gold_correct=int(doc.get("gold_correct", 0)),
        answers=int(doc.get("answers", 0)),
    )


def _bins(doc: Mapping[str, Any]) -> dict[tuple[int, int, int], quality.CalibrationBin]:
    bins = {}
    for name, value in (doc.get("calibration_bins") or {}).items():
        b, k, d = (int(part) for part in name.split(":"))
        bins[(b, k, d)] = quality.CalibrationBin(
            n=float(value.get("n", 0.0)),
            correct=float(value.get("correct", 0.0)),
            logit_sum=float(value.get("logit_sum", 0.0)),
        )
    return bins


def _customer_state(doc: Mapping[str, Any]) -> quality.CustomerState:
    return quality.CustomerState(
        counts=_matrix(doc, "counts"),
        row_totals=_counters(doc, "row_totals"),
        answered=_counters(doc, "answered"),
        classes=_counters(doc, "classes"),
        calibration_bins=_bins(doc),
        gold_answers=int(doc.get("gold_answers", 0)),
    )


def _calibration(doc: Mapping[str, Any]) -> quality.Calibration:
    fit = doc.get("calibration")
    if not fit:
        return quality.IDENTITY
    return quality.Calibration(
        slope=fit["slope"],
        intercept=fit["intercept"],
        dissent_weight=fit["dissent_weight"],
        answers_weight=fit["answers_weight"],
    )


def _worker_record(doc: Mapping[str, Any]) -> WorkerRecord:
    return WorkerRecord(
        customer_id=doc["customer_id"],
        worker_id=doc["worker_id"],
        answers=int(doc.get("answers", 0)),
        gold_answers=int(doc.get("gold_answers", 0)),
        gold_correct=int(doc.get("gold_correct", 0)),
        blocked=bool(doc.get("blocked", False)),
    )


def _inc(paths: Iterable[tuple[tuple[str, ...], float]]) -> dict[str, float]:
    """Increments as `$inc` fields: categories encoded, one sum per field."""
    fields: dict[str, float] = {}
    for path, amount in paths:
        name = ".".join((path[0], *(field_name(part) for part in path[1:])))
        fields[name] = fields.get(name, 0) + amount
    return fields


def _nested(fields: dict[str, float]) -> dict[str, Any]:
    """`$inc` fields as the document a first write inserts."""
    document: dict[str, Any] = {}
    for name, amount in fields.items():
        *parents, leaf = name.split(".")
        node = document
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = amount
    return document


def _raced(exc: PyMongoError) -> bool:
    """Two first writes of one document: the second is refused by its `_id` (FerretDB
    says so in its own words for an upsert)."""
    return is_unique_conflict(exc) or "duplicate key" in str(exc)


async def _upserting(write: Callable[[], Awaitable[T]]) -> T:
    """An upsert, once more if a concurrent one inserted the document first."""
    try:
        return await write()
    except PyMongoError as exc:
        if not _raced(exc):
            raise
        return await write()


def _new_customer(customer_id: str) -> dict[str, Any]:
    return {
        "kind": "customer",
        "customer_id": customer_id,
        "pseudonym_key": base64.b64encode(secrets.token_bytes(32)).decode(),
    }


class QualityRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._documents = db[QUALITY]

    # --- what a claim and an answer read ------------------------------------------------

    async def standings(self, worker_id: str) -> dict[str, Standing]:
        """The worker's standing with every customer it has one with."""
        cursor = self._documents.find(
            {"worker_id": {"$type": "string", "$eq": worker_id}},
            {"customer_id": 1, "blocked": 1, "started": 1},
        )
        return {
            doc["customer_id"]: Standing(
                blocked=bool(doc.get("blocked")), started=bool(doc.get("started"))
            )
            async for doc in cursor
        }

    async def mark_started(self, customer_id: str, worker_id: str) -> None:
        await _upserting(
            lambda: self._documents.update_one(
                {"_id": worker_key(customer_id, worker_id)},
                {
                    "$set": {"started": True},
                    "$setOnInsert": {
                        "kind": "worker",
                        "customer_id": customer_id,
                        "worker_id": worker_id,
                    },
                },
                upsert=True,
            )
        )

    async def context(self, customer_id: str, worker_ids: Sequence[str]) -> QualityContext:
        """The customer's pooled state and calibration, and these workers' standing, in
        one query."""
        keys = [customer_key(customer_id), *(worker_key(customer_id, w) for w in worker_ids)]
        customer: quality.CustomerState = quality.CustomerState()
        calibration = quality.IDENTITY
        workers: dict[str, WorkerStanding] = {}
        async for doc in self._documents.find({"_id": {"$in": keys}}, _NOT_FOR_DECISIONS):
            if doc["_id"] == keys[0]:
                customer, calibration = _customer_state(doc), _calibration(doc)
            else:
                workers[doc["worker_id"]] = WorkerStanding(
                    state=_worker_state(doc), blocked=bool(doc.get("blocked"))
                )
        return QualityContext(customer=customer, calibration=calibration, workers=workers)

    # --- what the quality consumer writes -----------------------------------------------

    async def apply_worker(
        self, customer_id: str, worker_id: str, key: str, increments: quality.Increments
    ) -> Applied:
        """The worker's part of `increments`, written once per `key`: one conditional
        write; a document not there yet is inserted (the first answer of the worker for
        the customer)."""
        inc = _inc(increments.worker_paths(worker_id))
        update: dict[str, Any] = {"$push": {"applied": {"$each": [key], "$slice": -APPLIED_KEPT}}}
        if inc:
            update["$inc"] = inc
        document_id = worker_key(customer_id, worker_id)
        for _ in range(RACE_ATTEMPTS):
            doc = await self._documents.find_one_and_update(
                {"_id": document_id, "applied": {"$ne": key}},
                update,
                return_document=ReturnDocument.AFTER,
            )
            if doc is not None:
                return Applied(_worker_record(doc), written=True)
            existing = await self._documents.find_one({"_id": document_id})
            if existing is not None:  # it holds the key: written before
                return Applied(_worker_record(existing), written=False)
            first = {
                "_id": document_id,
                "kind": "worker",
                "customer_id": customer_id,
                "worker_id": worker_id,
                "applied": [key],
                **_nested(inc),
            }
            try:
                await self._documents.insert_one(first)
            except PyMongoError as exc:
                if not _raced(exc):
                    raise
                continue  # another first write of this worker's landed: write on it
            return Applied(_worker_record(first), written=True)
        raise Unavailable("the worker's counters are changing too often, try again")

    async def apply_customer(self, customer_id: str, increments: quality.Increments) -> int:
        """The customer's part of `increments`; returns its gold answers since."""
        update: dict[str, Any] = {"$setOnInsert": _new_customer(customer_id)}
        inc = _inc(increments.customer_paths())
        if inc:
            update["$inc"] = inc
        doc = await _upserting(
            lambda: self._documents.find_one_and_update(
                {"_id": customer_key(customer_id)},
                update,
                projection={"gold_answers": 1},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        )
        return int((doc or {}).get("gold_answers", 0))

    async def customer_state(self, customer_id: str) -> quality.CustomerState:
        doc = await self._documents.find_one(
            {"_id": customer_key(customer_id)}, {"applied": 0, "pseudonym_key": 0}
        )
        return quality.CustomerState() if doc is None else _customer_state(doc)

    async def save_calibration(self, customer_id: str, calibration: quality.Calibration) -> None:
        """The cached fit (a pure function of the bins: a racing copy is as good)."""
        fit = {
            "slope": calibration.slope,
            "intercept": calibration.intercept,
            "dissent_weight": calibration.dissent_weight,
            "answers_weight": calibration.answers_weight,
        }
        await _upserting(
            lambda: self._documents.update_one(
                {"_id": customer_key(customer_id)},
                {"$set": {"calibration": fit}, "$setOnInsert": _new_customer(customer_id)},
                upsert=True,
            )
        )

    async def block(self, customer_id: str, worker_id: str, now: datetime) -> bool:
        """Block the worker for the customer; False if it was already."""
        result = await self._documents.update_one(
            {"_id": worker_key(customer_id, worker_id), "blocked": {"$ne": True}},
            {"$set": {"blocked": True, "blocked_at": now}},
        )
        return result.modified_count == 1

    # --- what the customer's view and the gauges read -----------------------------------

    async def workers_of(self, customer_id: str) -> list[WorkerRecord]:
        """The customer's workers who answered any of its tasks."""
        cursor = self._documents.find(
            {"customer_id": customer_id, "worker_id": {"$type": "string"}, "answers": {"$gt": 0}},
            {
                "customer_id": 1,
                "worker_id": 1,
                "answers": 1,
                "gold_answers": 1,
                "gold_correct": 1,
                "blocked": 1,
            },
        )
        return [_worker_record(doc) async for doc in cursor]

    async def pseudonym_key(self, customer_id: str) -> bytes:
        """The customer's secret for its workers' pseudonyms (made on first need)."""
        doc = await _upserting(
            lambda: self._documents.find_one_and_update(
                {"_id": customer_key(customer_id)},
                {"$setOnInsert": _new_customer(customer_id)},
                projection={"pseudonym_key": 1},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        )
        assert doc is not None
        return base64.b64decode(doc["pseudonym_key"])

    async def blocked_workers(self) -> int:
        """Worker-customer pairs blocked (a worker blocked by two customers counts twice)."""
        return await self._documents.count_documents({"blocked": True})
