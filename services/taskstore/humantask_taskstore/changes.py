"""Changing a stored task: load it, apply a domain rule, save it with its events.

The save is conditional on the version that was loaded; when another command changed the
task in between, the rule runs again on the fresh task, so it always sees the latest
state. Each lost race means another write landed, so the retries are few and need no
pause.

Whatever the rule, a change the customer can see moves the task's `updated_at`, and one
that settles a task of a batch (completes or cancels it) also tells the batch
(`batches.settled`): one place, so that every path that settles a task does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from humantask_shared.core.errors import NotFound, Unavailable
from humantask_shared.core.messages.base import Event
from humantask_shared.core.messages.envelope import StampedEvent
from humantask_shared.core.timeutil import utcnow
from humantask_shared.runtime.publishing import stamp_all

from . import batches
from .domain import TaskRecord, touched
from .ports import Tasks

MAX_WRITE_ATTEMPTS = 5

Change = Callable[[TaskRecord, datetime], tuple[TaskRecord, Sequence[Event]]]


async def change_task(
    tasks: Tasks, task_id: str, change: Change, customer_id: str | None = None
) -> tuple[TaskRecord, Sequence[StampedEvent]]:
    """The task as saved after `change(task, now)`, and the events that change raised,
    stamped (written to the task's outbox; the caller publishes them). `customer_id` limits the
    lookup to that customer's tasks. A change that leaves the task as it was writes
    nothing."""
    for _ in range(MAX_WRITE_ATTEMPTS):
        record = await tasks.get(task_id, customer_id)
        if record is None:
            raise NotFound(f"no task with task_id {task_id}")
        now = utcnow()
        changed, events = change(record, now)
        if changed == record:
            return record, []
        changed = touched(record, changed, now)
        stamped = stamp_all([*events, *batches.settled(record, changed)], now)
        saved = await tasks.save(changed, stamped, now)
        if saved is not None:
            return saved, stamped
    raise Unavailable("the task is changing too often, try again")
