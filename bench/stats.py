"""Pure helpers of the benchmark: percentiles, phase summaries, targets. No I/O."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# The targets (bench/README.md, "Targets"): evaluated on every run, drawn on the plot.
CREATE_RATE_OF_RPC = 0.5  # create@64 throughput >= this x the RabbitMQ request/reply ceiling
CREATE_P99_OF_RPC = 2.0  # create@64 p99 <= this x the ceiling's p99
GET_RATE_OF_RPC = 0.7  # get@64 throughput >= this x the ceiling
GROWTH_RATE_OF_EMPTY = 0.85  # with the growth tasks >= this x the empty database's rate
CALLBACK_P50_MS = 20.0  # submit->callback p50 at 1 client
# claim+submit on tasks of max_workers 3 at 64 >= this x claim+submit on single-worker
# tasks at 64, in the same run (docs/reference/contract.md §10)
SEVERAL_WORKERS_RATE = 0.8
IDLE_RSS_MB = 80.0  # per service, right after it is ready


def percentile(samples: Sequence[float], fraction: float) -> float | None:
    """The `fraction` (0..1) percentile of `samples`, interpolated linearly between the
    two nearest ranks (numpy's default method); None for no samples."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be within 0..1, not {fraction}")
    if not samples:
        return None
    ordered = sorted(samples)
    position = fraction * (len(ordered) - 1)
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    weight = position - lower
    return ordered[lower] + (ordered[upper] - ordered[lower]) * weight


def latency_summary(latencies_seconds: Sequence[float]) -> dict[str, float | None]:
    """p50/p90/p99/max in milliseconds, rounded to microseconds."""

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 3)

    return {
        "p50_ms": ms(percentile(latencies_seconds, 0.50)),
        "p90_ms": ms(percentile(latencies_seconds, 0.90)),
        "p99_ms": ms(percentile(latencies_seconds, 0.99)),
        "max_ms": ms(max(latencies_seconds) if latencies_seconds else None),
    }


def phase_summary(
    latencies_seconds: Sequence[float], window_seconds: float, errors: Mapping[str, int]
) -> dict[str, Any]:
    """What a phase reports: ok operations per second over the measured window, the
    latency percentiles of those operations, and failures counted by kind."""
    if window_seconds <= 0:
        raise ValueError("window_seconds must be positive")
    return {
        "ok": len(latencies_seconds),
        "window_s": round(window_seconds, 3),
        "throughput": round(len(latencies_seconds) / window_seconds, 2),
        **latency_summary(latencies_seconds),
        "errors": dict(sorted(errors.items())),
        "error_count": sum(errors.values()),
    }


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


@dataclass(frozen=True)
class Target:
    """One target of bench/README.md, evaluated on one run. `passed` is None when the run did
    not measure what the goal needs."""

    name: str
    value: float | None
    limit: float
    comparison: str  # ">=" or "<="
    unit: str = ""
    detail: str = ""

    @property
    def passed(self) -> bool | None:
        if self.value is None:
            return None
        return self.value >= self.limit if self.comparison == ">=" else self.value <= self.limit

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: "N/A"}[self.passed]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": None if self.value is None else round(self.value, 4),
            "comparison": self.comparison,
            "limit": self.limit,
            "unit": self.unit,
            "result": self.verdict,
            "detail": self.detail,
        }


def find(
    results: Iterable[Mapping[str, Any]], op: str, clients: int, stage: str = "sweep"
) -> Mapping[str, Any] | None:
    """The result row of `op` at `clients` in `stage`, if measured."""
    for row in results:
        if (
            row.get("op") == op
            and row.get("clients") == clients
            and row.get("stage", "sweep") == stage
        ):
            return row
    return None


def evaluate_targets(
    results: Sequence[Mapping[str, Any]],
    rss: Mapping[str, Mapping[str, Any]],
    *,
    at: int = 64,
    latency_at: int = 1,
    rss_limit_mb: float = IDLE_RSS_MB,
) -> list[Target]:
    """The targets, from the rows of one run (`find` keys) and RSS per service."""
    targets: list[Target] = []
    rpc = find(results, "rabbitmq_rpc", at)
    create = find(results, "create", at)
    get = find(results, "get", at)

    def value(row: Mapping[str, Any] | None, key: str) -> float | None:
        return None if row is None else row.get(key)

    rpc_rate, rpc_p99 = value(rpc, "throughput"), value(rpc, "p99_ms")
    targets.append(
        Target(
            f"create@{at} throughput / RabbitMQ RPC ceiling@{at}",
            ratio(value(create, "throughput"), rpc_rate),
            CREATE_RATE_OF_RPC,
            ">=",
            "x",
            f"{value(create, 'throughput')} vs {rpc_rate} ops/s",
        )
    )
    targets.append(
        Target(
            f"create@{at} errors",
            value(create, "error_count"),
            0,
            "<=",
            "",
            str(value(create, "errors") or {}),
        )
    )
    targets.append(
        Target(
            f"create@{at} p99 / RabbitMQ RPC ceiling p99@{at}",
            ratio(value(create, "p99_ms"), rpc_p99),
            CREATE_P99_OF_RPC,
            "<=",
            "x",
            f"{value(create, 'p99_ms')} vs {rpc_p99} ms",
        )
    )
    targets.append(
        Target(
            f"get@{at} throughput / RabbitMQ RPC ceiling@{at}",
            ratio(value(get, "throughput"), rpc_rate),
            GET_RATE_OF_RPC,
            ">=",
            "x",
            f"{value(get, 'throughput')} vs {rpc_rate} ops/s",
        )
    )
    for op in ("create", "get", "claim_submit", "list"):
        empty, full = find(results, op, at, "growth_empty"), find(results, op, at, "growth_full")
        targets.append(
            Target(
                f"{op}@{at} with the growth tasks / empty database",
                ratio(value(full, "throughput"), value(empty, "throughput")),
                GROWTH_RATE_OF_EMPTY,
                ">=",
                "x",
                f"{value(full, 'throughput')} vs {value(empty, 'throughput')} ops/s",
            )
        )
    single, several = find(results, "claim_submit", at), find(results, "claim_submit_3", at)
    if several is not None:
        targets.append(
            Target(
                f"claim+submit@{at} on max_workers 3 tasks / on single-worker tasks",
                ratio(value(several, "throughput"), value(single, "throughput")),
                SEVERAL_WORKERS_RATE,
                ">=",
                "x",
                f"{value(several, 'throughput')} vs {value(single, 'throughput')} ops/s",
            )
        )
    callback = find(results, "submit_to_callback", latency_at)
    targets.append(
        Target(
            f"submit->callback p50@{latency_at}",
            value(callback, "p50_ms"),
            CALLBACK_P50_MS,
            "<=",
            "ms",
            f"p99 {value(callback, 'p99_ms')} ms",
        )
    )
    for service in sorted(rss):
        targets.append(
            Target(
                f"idle RSS {service}",
                rss[service].get("idle_mb"),
                rss_limit_mb,
                "<=",
                "MB",
                f"peak under load {rss[service].get('peak_mb')} MB",
            )
        )
    return targets
