"""`python -m bench.overload`: the gateway past its capacity, with load
shedding off (`GATEWAY_MAX_IN_FLIGHT=0`) and on (its default) in one run, a fresh stack
each (bench/README.md).

For create and for get: 64 clients (the reference), then 512 clients (the overload: the
throughput of successes, the share of `503`s, p50/p99 of the successes, the gateway's
peak RSS), then 64 clients again right after (the recovery, as a ratio of the reference).
With shedding on it runs twice: clients that wait `Retry-After` after a `503`, as the
contract asks, and clients that ask again at once (the worst case).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from bench.run import DEFAULT_AMQP_URL, DEFAULT_MONGODB_URL, Bench, CallbackReceiver
from bench.stack import ROOT, Stack, Vhost, describe_host, drop_database, run_id
from humantask_gateway.settings import GatewaySettings

REFERENCE_CLIENTS = 64
OVERLOAD_CLIENTS = 512
OPS = ("create", "get")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured per phase")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument(
        "--max-in-flight",
        type=int,
        default=GatewaySettings.model_fields["gateway_max_in_flight"].default,
        help="GATEWAY_MAX_IN_FLIGHT of the shedding run (default: the setting's default)",
    )
    parser.add_argument("--amqp-url", default=os.environ.get("AMQP_URL") or DEFAULT_AMQP_URL)
    parser.add_argument(
        "--mongodb-url", default=os.environ.get("MONGODB_URL") or DEFAULT_MONGODB_URL
    )
    args = parser.parse_args(argv)
    # What bench.run.Bench reads of its arguments.
    args.levels, args.growth_clients, args.max_requests = [OVERLOAD_CLIENTS], 0, 10_000_000
    return args


def share(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


async def one_mode(
    args: argparse.Namespace, bench: Bench, rid: str, max_in_flight: int, honour: bool
) -> list[dict[str, Any]]:
    """The three phases of each operation on a fresh stack with GATEWAY_MAX_IN_FLIGHT;
    `honour`: clients wait `Retry-After` after a `503`."""
    name = f"humantask_bench_{rid}_{max_in_flight}_{int(honour)}"
    os.environ["GATEWAY_MAX_IN_FLIGHT"] = str(max_in_flight)  # Stack.env starts from it
    rows = []
    with Vhost(args.amqp_url, name) as vhost:
        stack = Stack(vhost.url, args.mongodb_url, name, bench.log_dir, f"live_bench_{rid}")
        bench.stack = stack
        try:
            await stack.start()
            await stack.prepare_accounts(1)
            bench.rss.pids = stack.pids()
            bench.rss.start()
            await bench.warm_up()
            task_ids: list[str] = []
            for op in OPS:
                extra: dict[str, Any] = {"honour_retry_after": honour}
                if op == "get":
                    extra["task_ids"] = task_ids
                stage = f"overload-{max_in_flight}-{'wait' if honour else 'spin'}"
                phases = {}
                for label, clients in (
                    ("reference", REFERENCE_CLIENTS),
                    ("overload", OVERLOAD_CLIENTS),
                    ("recovery", REFERENCE_CLIENTS),
                ):
                    phases[label] = await bench.phase(op, clients, f"{stage}-{label}", **extra)
                    task_ids.extend(phases[label].get("created_ids", []))
                rows.append(summary(op, max_in_flight, honour, phases))
                print(orjson.dumps(rows[-1]).decode(), flush=True)
        finally:
            await bench.rss.stop()
            await stack.stop()
            await drop_database(args.mongodb_url, stack.database)
    return rows


def summary(
    op: str, max_in_flight: int, honour: bool, phases: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    overload, reference, recovery = phases["overload"], phases["reference"], phases["recovery"]
    shed = int(overload["errors"].get("503", 0))
    return {
        "op": op,
        "max_in_flight": max_in_flight,
        "clients_wait_retry_after": honour,
        "reference_ops": reference["throughput"],
        "overload_ops": overload["throughput"],
        "overload_503_share": share(shed, int(overload["issued"])),
        "overload_other_errors": {k: v for k, v in overload["errors"].items() if k != "503"},
        "overload_p50_ms": overload.get("p50_ms"),
        "overload_p99_ms": overload.get("p99_ms"),
        "gateway_rss_peak_mb": overload.get("rss_peak_mb", {}).get("gateway"),
        "recovery_ops": recovery["throughput"],
        "recovery_ratio": share(recovery["throughput"], reference["throughput"]),
        "disturbed": any(phase.get("disturbed") for phase in phases.values()),
    }


def _n(value: float | None, spec: str = ".0f") -> str:
    return "-" if value is None else format(value, spec)


def table(rows: Sequence[Mapping[str, Any]]) -> str:
    lines = [
        "| op | shedding (clients after a 503) | 64 clients ops/s | 512: ok ops/s | "
        "512: 503 share | 512: p50 / p99 ms | gateway RSS MB | 64 after: ops/s (ratio) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        shedding = "off"
        if row["max_in_flight"]:
            then = "wait Retry-After" if row["clients_wait_retry_after"] else "retry at once"
            shedding = f"on, {row['max_in_flight']} ({then})"
        lines.append(
            f"| {row['op']} | {shedding} | {_n(row['reference_ops'])} | "
            f"{_n(row['overload_ops'])} | {_n(row['overload_503_share'], '.0%')} | "
            f"{_n(row['overload_p50_ms'])} / {_n(row['overload_p99_ms'])} | "
            f"{_n(row['gateway_rss_peak_mb'], 'g')} | {_n(row['recovery_ops'])} "
            f"({_n(row['recovery_ratio'], '.2f')}) |" + (" !" if row["disturbed"] else "")
        )
    return "\n".join(lines)


async def _run(args: argparse.Namespace) -> int:
    rid = run_id()
    started = datetime.now(UTC)
    log_dir = ROOT / ".local" / "bench" / f"{started:%Y%m%d-%H%M%S}-{rid}-overload"
    log_dir.mkdir(parents=True, exist_ok=True)
    receiver = CallbackReceiver()
    await receiver.start()
    bench = Bench(args, log_dir, receiver)
    rows = []
    try:
        for max_in_flight, honour in (
            (0, False),
            (args.max_in_flight, True),
            (args.max_in_flight, False),
        ):
            print(f"GATEWAY_MAX_IN_FLIGHT={max_in_flight}, clients wait Retry-After: {honour}")
            rows.extend(await one_mode(args, bench, rid, max_in_flight, honour))
    finally:
        await receiver.stop()
    print(table(rows))
    path = ROOT / "bench" / "results" / f"{started:%Y-%m-%d-%H%M}-overload.json"
    path.write_bytes(
        orjson.dumps(
            {
                "started": started.isoformat(),
                "host": describe_host(),  # git_commit: the docs name it beside the table
                "seconds": args.seconds,
                "rows": rows,
            },
            option=orjson.OPT_INDENT_2,
        )
    )
    print(f"wrote {path.relative_to(ROOT)}")
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    sys.exit(asyncio.run(_run(parse_args(argv))))


if __name__ == "__main__":
    main()
