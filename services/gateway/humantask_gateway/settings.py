from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import NoDecode
from yarl import URL

from humantask_shared.runtime.settings import CommonSettings

from .client_addresses import ForwardedHeader, IPNetwork, parse_networks


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
    # Requests a second with one API key before 429; 0 turns it off.
    rate_limit_per_second: float = Field(default=100.0, ge=0)
    # Requests a second with one worker token before 429 (people at the workbench); 0 off.
    worker_rate_limit_per_second: float = Field(default=20.0, ge=0)
    # Where clients reach this API (https://api.example.com, or with a path prefix): links
    # the gateway hands out (`Link`) are built on it. Unset: on the request's own URL.
    public_base_url: str | None = None
    # How long a refused credential is refused again without asking the task-store.
    auth_failure_cache_seconds: float = Field(default=5.0, ge=0)
    # Failed look-ups a second one client address (an IPv6 /64) may cause (bursts of 10 s
    # worth) before its further failures are 429 rather than 401; 0 turns it off.
    auth_failures_per_second: float = Field(default=10.0, ge=0)
    # The reverse proxies whose X-Forwarded-For (or Forwarded) header names the client,
    # as CIDRs separated by commas; none by default (the peer is the client).
    trusted_proxies: Annotated[list[IPNetwork], NoDecode] = Field(default_factory=list)
    # Which header those proxies add: x-forwarded-for or forwarded (RFC 7239).
    trusted_proxy_header: ForwardedHeader = "x-forwarded-for"
    # Redeliveries of callbacks (`POST /v1/task/{id}/callbacks/redeliver`), counted in
    # this process too: per customer, this many a minute (bursts of a minute's worth),
    # and one per task per CALLBACK_REDELIVERY_INTERVAL_SECONDS; past either, 429. 0: off.
    callback_redeliveries_per_minute: float = Field(default=10.0, ge=0)
    callback_redelivery_interval_seconds: float = Field(default=60.0, ge=0)
    # How long a request body may take to arrive, from the start of the request: 408.
    request_body_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    # Requests in flight before the rest are 503 at once (overload.py); 0 turns it off.
    gateway_max_in_flight: int = Field(default=256, ge=0)
    # Requests one API key or worker token may have in flight before its next are 429 at
    # once (overload.py), so one credential cannot take every slot; 0 turns it off.
    gateway_max_in_flight_per_credential: int = Field(default=32, ge=0)
    # What one task may take, as UTF-8 JSON of its fields, before its creation is 400.
    max_task_bytes: int = Field(default=128 * 1024, ge=1024, le=1024 * 1024)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> list[IPNetwork]:
        return parse_networks(value)

    @field_validator("trusted_proxy_header", mode="before")
    @classmethod
    def _header_name(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("public_base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        url = URL(value)
        if url.scheme not in ("http", "https") or not url.host or url.query_string or url.fragment:
            raise ValueError(
                "must be an absolute http(s) URL without a query, e.g. https://api.example.com"
            )
        return str(url.with_path(url.path.rstrip("/")))
