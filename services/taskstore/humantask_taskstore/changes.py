"""Changing a stored task: load it, apply a domain rule, save it with its events.

A write that lost the race for the task's next version (another command changed the
task meanwhile) is retried on the fresh task, so the rule always sees the latest state.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime

from humantask_shared.errors import NotFound, Unavailable
from humantask_shared.messages.events import Event
from humantask_shared.timeutil import utcnow

from .domain import TaskRecord
from .repository import TaskRepository

# A write that lost an optimistic-concurrency race is retried this many times; the
# winner is writing at that moment, so a pause before each retry (doubling, about 2.5 s
# in all) lets it finish first, even on a busy database.
MAX_WRITE_ATTEMPTS = 8
FIRST_RETRY_PAUSE_SECONDS = 0.02
MAX_RETRY_PAUSE_SECONDS = 0.64

Change = Callable[[TaskRecord, datetime], tuple[TaskRecord, list[Event]]]


async def change_task(
    tasks: TaskRepository, task_id: str, change: Change, customer_id: str | None = None
) -> tuple[TaskRecord, list[Event]]:
    """The task as saved after `change(task, now)`, and the events that change raised
    (written to the task's outbox; the caller publishes them). `customer_id` limits the
    lookup to that customer's tasks. A change that leaves the task as it was writes
    nothing."""
    writer = uuid.uuid4().hex  # the same on every try: a missed write keeps its version
    for attempt in range(MAX_WRITE_ATTEMPTS):
        if attempt:
            await asyncio.sleep(min(FIRST_RETRY_PAUSE_SECONDS * 2**attempt, MAX_RETRY_PAUSE_SECONDS))
        record = await tasks.get(task_id, customer_id)
        if record is None:
            raise NotFound(f"no task with task_id {task_id}")
        now = utcnow()
        changed, events = change(record, now)
        if changed == record:
            return record, []
        saved = await tasks.save(changed, events, now, writer)
        if saved is not None:
            return saved, events
    raise Unavailable("the task is changing too often, try again")
