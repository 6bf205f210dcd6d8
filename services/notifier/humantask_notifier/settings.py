from __future__ import annotations

from pydantic import Field

from humantask_shared.settings import WorkerServiceSettings


class NotifierSettings(WorkerServiceSettings):
    callback_retry_delay_seconds: float = Field(default=60, ge=0)
    callback_timeout_seconds: float = Field(default=10, gt=0)
    callback_allow_private_networks: bool = False
