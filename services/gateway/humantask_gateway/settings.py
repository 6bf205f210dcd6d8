from __future__ import annotations

from pydantic import Field

from humantask_shared.runtime.settings import CommonSettings


class GatewaySettings(CommonSettings):
    gateway_port: int = Field(default=8080, ge=0, le=65535)
    # /healthz, /readyz and /metrics for operators; /metrics is never on GATEWAY_PORT.
    health_port: int = Field(default=8081, ge=0, le=65535)
    # How long a request waits for the task-store before answering 503.
    rpc_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # How long a verified credential is trusted before it is looked up again. Revocation
    # and rotation reach the cache as events at once; this is only the backstop.
    auth_cache_seconds: float = Field(default=10.0, ge=0)
    # When set and not empty, a customer with this API key is made sure of at start
    # (demo and local runs); unset or empty: no demo customer.
    humantask_demo_api_key: str | None = None
    # Abuse limits (limits.py), each counted in this process: with N gateways, N times.
    # Requests a second with one API key or worker token before 429; 0 turns it off.
    rate_limit_per_second: float = Field(default=100.0, ge=0)
    # How long a refused credential is refused again without asking the task-store.
    auth_failure_cache_seconds: float = Field(default=5.0, ge=0)
    # Failed look-ups a second one client address may cause (bursts of 10 s worth) before
    # its unverified credentials are 429; 0 turns it off.
    auth_failures_per_second: float = Field(default=10.0, ge=0)
    # How long a request body may take to arrive, from the start of the request: 408.
    request_body_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    # Requests in flight before the rest are 503 at once (overload.py); 0 turns it off.
    gateway_max_in_flight: int = Field(default=256, ge=0)
