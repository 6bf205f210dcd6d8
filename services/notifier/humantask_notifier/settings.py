from __future__ import annotations

from pydantic import Field

from humantask_shared.runtime.settings import WorkerServiceSettings


class NotifierSettings(WorkerServiceSettings):
    # Wait before the one retry of a failed callback.
    callback_retry_delay_seconds: float = Field(default=60, ge=0)
    # How long one callback may take, from resolving its host to reading the answer.
    callback_timeout_seconds: float = Field(default=10, gt=0)
    # Allow callbacks to loopback, private, link-local and other non-public addresses.
    callback_allow_private_networks: bool = False
    # Callbacks one notifier sends to one host at once; past that, a callback to the host
    # is put back for CALLBACK_HOST_BUSY_DELAY_SECONDS (no attempt spent); 0: no limit.
    # Keep it well under PREFETCH_COUNT, so a slow host never holds every message in hand.
    callback_max_per_host: int = Field(default=8, ge=0)
    callback_host_busy_delay_seconds: float = Field(default=5, gt=0, le=3600)
    # How long resolving a callback's host may take, and how many look-ups may run at
    # once (keep it at least twice PREFETCH_COUNT: one per callback being sent).
    callback_dns_timeout_seconds: float = Field(default=5, gt=0, le=60)
    callback_dns_max_concurrent: int = Field(default=64, ge=1, le=10_000)
    # How long to wait for the task-store to hand over a customer's callback secret.
    rpc_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # How long callback logs are kept after each attempt, as the task-store keeps finished
    # tasks (the same setting); 0 keeps them for ever (`retention`).
    task_retention_days: float = Field(default=0, ge=0)
