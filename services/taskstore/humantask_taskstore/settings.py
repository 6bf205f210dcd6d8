from __future__ import annotations

from pydantic import Field

from humantask_shared.settings import WorkerServiceSettings


class TaskStoreSettings(WorkerServiceSettings):
    work_lease_seconds: float = Field(default=600, gt=0)
    # How often events left in a task's outbox (a crash between write and publish)
    # are looked for and published again.
    outbox_relay_interval_seconds: float = Field(default=5.0, gt=0)
