"""How long callback logs are kept: `TASK_RETENTION_DAYS` after each attempt started, as
long as the task-store keeps finished tasks (docs/operations/hardening.md, "Retention").

A TTL index on the attempts' `at` does it, honoured by both engines (MongoDB's TTL
monitor; under FerretDB 2, DocumentDB's TTL job), both about once a minute. The index is
made, changed (`collMod`) or dropped at each start of the notifier, as the setting says;
with it unset (0) the logs are kept for ever. A delivery record (the copy of the task
being sent) has a TTL of its own (`repository.DELIVERY_RECORD_TTL_SECONDS`).
"""

from __future__ import annotations

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from humantask_shared.runtime.mongo import Document

from .repository import ATTEMPTS

LOG_RETENTION_INDEX = "retention"


async def keep_callback_logs(db: AsyncDatabase[Document], days: float) -> None:
    attempts = db[ATTEMPTS]
    index = (await attempts.index_information()).get(LOG_RETENTION_INDEX)
    if not days:
        if index is not None:
            await attempts.drop_index(LOG_RETENTION_INDEX)
        return
    seconds = round(days * 86400)
    if index is None:
        await attempts.create_index(
            [("at", ASCENDING)], name=LOG_RETENTION_INDEX, expireAfterSeconds=seconds
        )
    elif int(index.get("expireAfterSeconds", -1)) != seconds:
        await db.command(
            {
                "collMod": ATTEMPTS,
                "index": {"name": LOG_RETENTION_INDEX, "expireAfterSeconds": seconds},
            }
        )
