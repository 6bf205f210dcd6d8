from __future__ import annotations

from pydantic import Field

from humantask_shared.runtime.settings import WorkerServiceSettings


class TaskStoreSettings(WorkerServiceSettings):
    # How long a worker holds a claimed task before it returns to the pool.
    work_lease_seconds: float = Field(default=600, gt=0)
    # How often events left in a task's outbox (a crash between write and publish)
    # are looked for and published again.
    outbox_relay_interval_seconds: float = Field(default=5.0, gt=0)
    # docs/reference/api.md §10: the share of the claims serving a customer (after a
    # worker's first) that serve one of its gold tasks instead, and the accuracy below
    # which (with 90% certainty, from its gold answers) a worker is blocked for a customer.
    gold_rate: float = Field(default=0.1, ge=0, le=1)
    worker_min_accuracy: float = Field(default=0.7, ge=0, le=1)
    # Test hook, never set in production: exit the process right after a completion is
    # written and before its event is published, to prove the outbox relay recovers it.
    humantask_test_exit_after_completion_write: bool = False
