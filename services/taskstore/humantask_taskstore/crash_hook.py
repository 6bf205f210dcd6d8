"""A test seam, wired in only when `HUMANTASK_TEST_EXIT_AFTER_COMPLETION_WRITE` is set
(never in production): the task-store dies between writing a completed task and
publishing its `task.completed` event (or answering), to prove the outbox relay
recovers the event after a restart (`tests/e2e/test_work_crash.py`). With
`HUMANTASK_TEST_EXIT_AFTER_BATCH_COMPLETION_WRITE`, the same between writing a completed
batch and publishing its `batch.completed` (`tests/e2e/test_scale_batch_crash.py`).

It wraps the handlers' outbox (`bootstrap`), so no handler knows of it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from humantask_shared.core.messages.base import Event
from humantask_shared.core.messages.envelope import StampedEvent
from humantask_shared.core.messages.events import TaskCompleted

from .ports import Outbox

log = logging.getLogger(__name__)

EXIT_CODE = 70


class ExitBeforePublishingCompletion:
    """An outbox that ends the process when handed a completion (a `completion` event,
    `task.completed` unless told otherwise): by then the handler has written it (with
    its event in the task's or batch's outbox) and not yet published it."""

    def __init__(self, outbox: Outbox, completion: type[Event] = TaskCompleted) -> None:
        self._outbox = outbox
        self._completion = completion

    def publish_after_reply(self, task_id: str, events: Sequence[StampedEvent]) -> None:
        if any(isinstance(stamped.event, self._completion) for stamped in events):
            log.warning("test hook: exiting after the completion write, before publishing")
            os._exit(EXIT_CODE)
        self._outbox.publish_after_reply(task_id, events)
