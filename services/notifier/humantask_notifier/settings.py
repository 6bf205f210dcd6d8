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
    # How long to wait for the task-store to hand over a customer's callback secret.
    rpc_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
