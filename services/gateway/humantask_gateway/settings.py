from __future__ import annotations

from pydantic import Field

from humantask_shared.settings import CommonSettings


class GatewaySettings(CommonSettings):
    gateway_port: int = Field(default=8080, ge=0, le=65535)
    # How long a request waits for the task-store before answering 503.
    rpc_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # How long a verified credential is trusted before it is looked up again.
    auth_cache_seconds: float = Field(default=30.0, ge=0)
    # When set, a customer with this API key is created at start (demo and local runs).
    humantask_demo_api_key: str | None = None
