from __future__ import annotations

from pydantic import Field

from humantask_shared.runtime.settings import WorkerServiceSettings


class TaskStoreSettings(WorkerServiceSettings):
    # How long a worker holds a claimed task before it returns to the pool.
    work_lease_seconds: float = Field(default=600, gt=0)
    # How often events left in a task's outbox (a crash between write and publish)
    # are looked for and published again.
    outbox_relay_interval_seconds: float = Field(default=5.0, gt=0)
    # Test hooks, never set in production: exit the process right after a task's (or a
    # batch's) completion is written and before its event is published, to prove the
    # outbox relay recovers it (crash_hook.py).
    humantask_test_exit_after_completion_write: bool = False
    humantask_test_exit_after_batch_completion_write: bool = False
