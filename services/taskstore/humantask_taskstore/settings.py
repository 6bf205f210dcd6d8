from __future__ import annotations

from pydantic import Field

from humantask_shared.core.credentials import credential_hash
from humantask_shared.runtime.settings import WorkerServiceSettings

from .repository.listing import ListLimits


class TaskStoreSettings(WorkerServiceSettings):
    def demo_customer_key_hash(self) -> str | None:
        key = (self.humantask_demo_api_key or "").strip()
        return credential_hash(key) if key else None

    def list_limits(self) -> ListLimits:
        return ListLimits(
            page_max_bytes=self.list_page_max_bytes, max_time_ms=self.list_max_time_ms
        )

    # How long a worker holds a claimed task before it returns to the pool.
    work_lease_seconds: float = Field(default=600, gt=0)
    # How often events left in a task's outbox (a crash between write and publish)
    # are looked for and published again.
    outbox_relay_interval_seconds: float = Field(default=5.0, gt=0)
    # Lists (docs/operations/hardening.md, "Lists"): the bytes of tasks, as stored, one
    # page may hold before it ends early with a next_token; and the database time one
    # list may take, all its queries together (their maxTimeMS), before it is a 503.
    list_page_max_bytes: int = Field(default=2 * 1024 * 1024, ge=64 * 1024, le=64 * 1024 * 1024)
    list_max_time_ms: int = Field(default=5_000, ge=1, le=60_000)
    # The demo customer's API key, as the gateway's (docs/operations/accounts.md): the
    # only key the gateway's `customer.ensure` may make a customer for. Unset or empty:
    # the demo is off and the gateway can make no customer at all.
    humantask_demo_api_key: str | None = None
    # Test hook, never set in production: exit the process right after a completion is
    # written and before its event is published, to prove the outbox relay recovers it.
    humantask_test_exit_after_completion_write: bool = False
