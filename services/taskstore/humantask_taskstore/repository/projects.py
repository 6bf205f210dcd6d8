"""Projects: one document each in `projects`, `_id` its id as an ObjectId, unique by
(customer, name); its params' versions in `history` (each one's params as JSON text:
metadata keys may hold `.` or `$`), `version` the current one's number. A new version is
one conditional write on the version it was decided on.

The list of a customer's projects is one answer (Scale's `GET projects` has no pages):
each project in it carries its current params only (`GET projects/{name}` has the
history), and the list is bounded as a page of tasks is (LIST_PAGE_MAX_BYTES, at most
MAX_PROJECTS_LISTED projects, LIST_MAX_TIME_MS in the database: `listing`)."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

import bson
import orjson
from bson import ObjectId
from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ExecutionTimeout, PyMongoError

from humantask_shared.core.scale_models import MAX_PROJECT_VERSIONS
from humantask_shared.core.timeutil import as_utc
from humantask_shared.runtime.mongo import Document, is_unique_conflict

from ..ports import ProjectExists
from ..projects import ParamsVersion, ProjectRecord
from .indexes import PROJECTS
from .listing import ListLimits, ListTimeLimit

# A customer's projects are listed in one answer: at most this many.
MAX_PROJECTS_LISTED = 1000


def _version_document(version: ParamsVersion) -> dict[str, Any]:
    return {
        "version": version.version,
        "params_json": orjson.dumps(version.params).decode(),
        "created_at": version.created_at,
    }


def _version(doc: dict[str, Any]) -> ParamsVersion:
    return ParamsVersion(
        version=doc["version"],
        params=orjson.loads(doc["params_json"]),
        created_at=as_utc(doc["created_at"]),
    )


def _project(doc: dict[str, Any]) -> ProjectRecord:
    return ProjectRecord(
        project_id=str(doc["_id"]),
        customer_id=doc["customer_id"],
        name=doc["name"],
        created_at=as_utc(doc["created_at"]),
        history=tuple(_version(version) for version in doc["history"]),
        type=doc.get("type", "categorization"),
    )


class ProjectRepository:
    def __init__(self, db: AsyncDatabase[Document], limits: ListLimits | None = None) -> None:
        self._projects = db[PROJECTS]
        self._limits = limits or ListLimits()

    async def add(self, project: ProjectRecord) -> None:
        """Insert a new project; `ProjectExists` when the customer has one of that name
        (the unique index decides)."""
        try:
            await self._projects.insert_one(
                {
                    "_id": ObjectId(project.project_id),
                    "customer_id": project.customer_id,
                    "name": project.name,
                    "type": project.type,
                    "created_at": project.created_at,
                    "history": [_version_document(v) for v in project.history],
                    "version": project.current.version,
                }
            )
        except PyMongoError as exc:
            if not is_unique_conflict(exc):
                raise
            existing = await self._projects.find_one({"_id": ObjectId(project.project_id)})
            if existing is None:
                existing = await self._projects.find_one(
                    {"customer_id": project.customer_id, "name": project.name}
                )
            if existing is None:  # the other insert is not visible yet: it exists
                raise ProjectExists(project) from None
            raise ProjectExists(_project(existing)) from None

    async def get(self, customer_id: str, name: str) -> ProjectRecord | None:
        doc = await self._projects.find_one({"customer_id": customer_id, "name": name})
        return None if doc is None else _project(doc)

    async def list(self, customer_id: str) -> builtins.list[ProjectRecord]:
        """The customer's projects, oldest first, each with its current params only: at
        most MAX_PROJECTS_LISTED, and those that fit in LIST_PAGE_MAX_BYTES (one at
        least); `Unavailable` past LIST_MAX_TIME_MS."""
        budget = ListTimeLimit(self._limits.max_time_ms)
        cursor = (
            self._projects.find({"customer_id": customer_id}, {"history": {"$slice": -1}})
            .sort([("created_at", ASCENDING), ("_id", ASCENDING)])
            .limit(MAX_PROJECTS_LISTED)
            .max_time_ms(budget.left_ms())
        )
        found: builtins.list[ProjectRecord] = []
        total = 0
        try:
            async for doc in cursor:
                total += len(bson.encode(doc))
                if total > self._limits.page_max_bytes and found:
                    break
                found.append(_project(doc))
        except ExecutionTimeout:
            raise budget.exceeded() from None
        finally:
            await cursor.close()
        return found

    async def add_version(
        self, project: ProjectRecord, version: ParamsVersion, now: datetime
    ) -> ProjectRecord | None:
        """Append a version of params if the project is still at the one it was read at;
        None when another writer got there first."""
        doc = await self._projects.find_one_and_update(
            {"_id": ObjectId(project.project_id), "version": project.current.version},
            {
                "$push": {
                    "history": {
                        "$each": [_version_document(version)],
                        "$slice": -MAX_PROJECT_VERSIONS,
                    }
                },
                "$set": {"version": version.version, "updated_at": now},
            },
            return_document=ReturnDocument.AFTER,
        )
        return None if doc is None else _project(doc)
