from __future__ import annotations

from pydantic import Field

from humantask_shared.core.credentials import credential_hash
from humantask_shared.runtime.settings import WorkerServiceSettings

from .repository.listing import ListLimits
from .repository.usage import QuotaLimits


class TaskStoreSettings(WorkerServiceSettings):
    def demo_customer_key_hash(self) -> str | None:
        key = (self.humantask_demo_api_key or "").strip()
        return credential_hash(key) if key else None

    def quota_limits(self) -> QuotaLimits:
        return QuotaLimits(
            pending_tasks=self.quota_pending_tasks, stored_bytes=self.quota_stored_bytes
        )

    def list_limits(self) -> ListLimits:
        return ListLimits(
            page_max_bytes=self.list_page_max_bytes, max_time_ms=self.list_max_time_ms
        )

    # How long a worker holds a claimed task before it returns to the pool.
    work_lease_seconds: float = Field(default=600, gt=0)
    # How often events left in a task's outbox (a crash between write and publish)
    # are looked for and published again.
    outbox_relay_interval_seconds: float = Field(default=5.0, gt=0)
    # docs/reference/contract.md §10: the share of the claims serving a customer (after a
    # worker's first) that serve one of its gold tasks instead, and the accuracy below
    # which (with 90% certainty, from its gold answers) a worker is blocked for a customer.
    gold_rate: float = Field(default=0.1, ge=0, le=1)
    worker_min_accuracy: float = Field(default=0.7, ge=0, le=1)
    # Lists (docs/operations/hardening.md, "Lists"): the bytes of tasks, as stored, one
    # page may hold before it ends early with a next_token; and the database time one
    # list may take, all its queries together (their maxTimeMS), before it is a 503.
    list_page_max_bytes: int = Field(default=2 * 1024 * 1024, ge=64 * 1024, le=64 * 1024 * 1024)
    list_max_time_ms: int = Field(default=5_000, ge=1, le=60_000)
    # Quotas (docs/operations/hardening.md, "Quotas"): what one customer may have by
    # default, pending tasks and bytes of tasks stored (`humantask-admin customers
    # set-quota` sets a customer's own); 0 is no limit. Counters of customers quiet for
    # QUOTA_RECONCILE_QUIET_SECONDS (longer than any create takes) are checked against
    # their tasks every QUOTA_RECONCILE_INTERVAL_SECONDS.
    quota_pending_tasks: int = Field(default=1_000_000, ge=0)
    quota_stored_bytes: int = Field(default=10 * 1024**3, ge=0)
    quota_reconcile_interval_seconds: float = Field(default=300, gt=0)
    quota_reconcile_quiet_seconds: float = Field(default=300, ge=120)
    # Retention (docs/operations/hardening.md, "Retention"): completed and canceled
    # tasks are deleted this many days after they ended; 0 keeps them for ever. The
    # job runs every TASK_RETENTION_INTERVAL_SECONDS, TASK_RETENTION_BATCH_SIZE at a time.
    task_retention_days: float = Field(default=0, ge=0)
    task_retention_interval_seconds: float = Field(default=600, gt=0)
    task_retention_batch_size: int = Field(default=500, ge=1, le=10_000)
    # The demo customer's API key, as the gateway's (docs/operations/accounts.md): the
    # only key the gateway's `customer.ensure` may make a customer for. Unset or empty:
    # the demo is off and the gateway can make no customer at all.
    humantask_demo_api_key: str | None = None
    # Test hooks, never set in production: exit the process right after a task's (or a
    # batch's) completion is written and before its event is published, to prove the
    # outbox relay recovers it (crash_hook.py).
    humantask_test_exit_after_completion_write: bool = False
    humantask_test_exit_after_batch_completion_write: bool = False
