"""Secrets the task-store keeps for itself in its database, made once and shared by every
copy: the key that signs list cursors (`cursors.CursorSigner`). Nothing is configured:
the first copy to start makes it, the unique `_id` decides which copy's key stays, and
every other copy reads that one. Deleting it makes a new one at the next start, and
cursors given out before stop working (their lists start again from the first page)."""

from __future__ import annotations

import contextlib
import os

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from humantask_shared.runtime.mongo import Document

KEYS = "task_store_keys"
LIST_CURSOR_KEY = "list_cursor"
KEY_BYTES = 32


async def shared_key(db: AsyncDatabase[Document], name: str = LIST_CURSOR_KEY) -> bytes:
    """The key called `name`, made (random) if there is none yet."""
    keys = db[KEYS]
    found = await keys.find_one({"_id": name})
    if found is None:
        # DuplicateKeyError: another copy made it at the same moment, and theirs stays.
        with contextlib.suppress(DuplicateKeyError):
            await keys.insert_one({"_id": name, "key": os.urandom(KEY_BYTES)})
        found = await keys.find_one({"_id": name})
    if found is None:  # pragma: no cover - written a moment ago with w=majority
        raise RuntimeError(f"the {name} key could not be stored")
    return bytes(found["key"])
