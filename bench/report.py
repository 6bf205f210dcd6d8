"""The benchmark's outputs: the printed tables, `bench/results/<date>.json`, and the PNG."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.stats import (
    CALLBACK_P50_MS,
    CREATE_P99_OF_RPC,
    CREATE_RATE_OF_RPC,
    GET_RATE_OF_RPC,
    GROWTH_RATE_OF_EMPTY,
    Target,
    find,
)

CEILINGS = ("bare_http", "rabbitmq_rpc", "mongo_insert")
STACK = ("create", "get", "list", "claim_submit", "claim_submit_3")
LATENCY_ONLY = ("submit_to_callback",)
LABELS = {
    "bare_http": "ceiling: bare aiohttp POST",
    "rabbitmq_rpc": "ceiling: RabbitMQ request/reply",
    "mongo_insert": "ceiling: insert_one (majority, j)",
    "create": "create task",
    "get": "get task",
    "list": "list page (100)",
    "claim_submit": "claim+submit",
    "claim_submit_3": "claim+submit, max_workers 3",
    "submit_to_callback": "submit -> callback",
}
CPU_COLUMNS = (
    ("gateway", "gw"),
    ("taskstore", "ts"),
    ("notifier", "nt"),
    ("ceiling", "ceil"),
    ("rabbitmq", "mq"),
    ("ferretdb", "fdb"),
    ("postgres", "pg"),
    ("mongod", "mgo"),
    ("loadgen", "load"),
    ("bench", "orch"),
    ("irq", "irq"),
    ("other", "oth"),
)


def _num(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


STAGES = ("sweep", "profile", "growth_empty", "growth_full")


def _table_order(row: Mapping[str, Any]) -> tuple[int, int, int]:
    ops = CEILINGS + STACK + LATENCY_ONLY
    stage, op = row.get("stage", "sweep"), row["op"]
    return (
        STAGES.index(stage) if stage in STAGES else len(STAGES),
        ops.index(op) if op in ops else len(ops),
        row["clients"],
    )


def results_table(rows: Sequence[Mapping[str, Any]]) -> str:
    used = [
        (key, short)
        for key, short in CPU_COLUMNS
        if any((row.get("cpu") or {}).get(key) for row in rows)
    ]
    header = (
        f"{'stage':<12} {'operation':<34} {'clients':>7} {'ops/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'errors':>7}  CPU % of one core: " + " ".join(f"{short:>5}" for _, short in used)
    )
    lines = [header, "-" * len(header)]
    previous = None
    for row in sorted(rows, key=_table_order):
        key = (row.get("stage"), row["op"])
        if previous is not None and key != previous:
            lines.append("")
        previous = key
        cpu = row.get("cpu") or {}
        throughput = "-" if row["op"] in LATENCY_ONLY else _num(row.get("throughput"))
        errors = row.get("error_count", 0)
        error_text = str(errors) if not errors else f"{errors}*"
        lines.append(
            f"{row.get('stage', 'sweep'):<12} {LABELS.get(row['op'], row['op']):<34} "
            f"{row['clients']:>7} {throughput:>9} "
            f"{_num(row.get('p50_ms')):>8} {_num(row.get('p99_ms')):>8} {error_text:>7}  "
            + " " * 19
            + " ".join(f"{_num(cpu.get(key), 0):>5}" for key, _ in used)
            + ("  !" if row.get("disturbed") else "")
        )
    if any(row.get("disturbed") for row in rows):
        lines.append("")
        lines.append(
            "! processes outside the benchmark used over a third of a core during this phase "
            "(oth): another user of the machine; read it with care"
        )
    failed = [row for row in rows if row.get("error_count")]
    if failed:
        lines.append("")
        lines.append("* errors by kind:")
        for row in failed:
            lines.append(f"  {row.get('stage')} {row['op']} @{row['clients']}: {row.get('errors')}")
    return "\n".join(lines)


def rss_table(rss: Mapping[str, Mapping[str, Any]]) -> str:
    lines = [f"{'service':<10} {'idle MB':>8} {'peak MB':>8} {'end MB':>8}"]
    for service, values in sorted(rss.items()):
        lines.append(
            f"{service:<10} {_num(values.get('idle_mb')):>8} {_num(values.get('peak_mb')):>8} "
            f"{_num(values.get('end_mb')):>8}"
        )
    return "\n".join(lines)


def growth_table(rows: Sequence[Mapping[str, Any]], clients: int, tasks: int) -> str:
    lines = [
        f"{'operation':<18} {'empty ops/s':>11} {f'{tasks:,} ops/s':>14} {'ratio':>6} "
        f"{'empty p50/p99 ms':>17} {'full p50/p99 ms':>17}"
    ]
    for op in ("create", "get", "list", "claim_submit"):
        empty, full = (
            find(rows, op, clients, "growth_empty"),
            find(rows, op, clients, "growth_full"),
        )
        if empty is None or full is None:
            continue
        ratio = (full["throughput"] / empty["throughput"]) if empty.get("throughput") else None
        lines.append(
            f"{op:<18} {_num(empty.get('throughput')):>11} {_num(full.get('throughput')):>14} "
            f"{_num(ratio, 2):>6} "
            f"{_num(empty.get('p50_ms')) + ' / ' + _num(empty.get('p99_ms')):>17} "
            f"{_num(full.get('p50_ms')) + ' / ' + _num(full.get('p99_ms')):>17}"
        )
    return "\n".join(lines)


def targets_table(targets: Sequence[Target]) -> str:
    lines = [f"{'target':<52} {'value':>9} {'limit':>10}  result  detail"]
    for target in targets:
        value = "-" if target.value is None else f"{target.value:,.2f}"
        lines.append(
            f"{target.name:<52} {value:>9} {target.comparison + ' ' + f'{target.limit:g}':>10}"
            f"  {target.verdict:<6}  {target.detail}"
        )
    return "\n".join(lines)


def target_marks(
    rows: Sequence[Mapping[str, Any]], at: int
) -> list[tuple[str, int, float, str, str]]:
    """Where each target of a line panel is drawn: (panel key, clients, level, op, label).
    Levels relative to a ceiling use the ceiling measured in the same run."""
    marks = []
    rpc = find(rows, "rabbitmq_rpc", at) or {}
    for key, op, factor, what in (
        ("throughput", "create", CREATE_RATE_OF_RPC, ">= {}x the RabbitMQ ceiling"),
        ("throughput", "get", GET_RATE_OF_RPC, ">= {}x the RabbitMQ ceiling"),
        ("p99_ms", "create", CREATE_P99_OF_RPC, "p99 <= {}x the ceiling's p99"),
    ):
        if rpc.get(key):
            label = f"target: {LABELS[op]}@{at} {what.format(factor)}"
            marks.append((key, at, rpc[key] * factor, op, label))
    label = f"target: {LABELS['submit_to_callback']}@1 p50 <= {CALLBACK_P50_MS:g} ms"
    marks.append(("p50_ms", 1, CALLBACK_P50_MS, "submit_to_callback", label))
    return marks


def result_paths(directory: Path, now: datetime) -> tuple[Path, Path]:
    """`<date>.json` and `<date>.png`, or `<date>-HHMM...` when that date has a run."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = now.strftime("%Y-%m-%d")
    if (directory / f"{stem}.json").exists() or (directory / f"{stem}.png").exists():
        stem = now.strftime("%Y-%m-%d-%H%M")
        suffix = 2
        base = stem
        while (directory / f"{stem}.json").exists():
            stem = f"{base}-{suffix}"
            suffix += 1
    return directory / f"{stem}.json", directory / f"{stem}.png"


def write_json(path: Path, document: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(document, indent=1, sort_keys=False) + "\n")


def plot(path: Path, document: Mapping[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = document["results"]
    levels = document["config"]["levels"]
    growth_clients = document["config"]["growth_clients"]
    fig, axes = plt.subplots(2, 2, figsize=(15, 10.5))
    (ax_rate, ax_growth), (ax_p50, ax_p99) = axes
    stack_colors = dict(
        zip(
            STACK + LATENCY_ONLY,
            ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:brown", "tab:purple"),
            strict=True,
        )
    )
    ceiling_styles = {
        "bare_http": ("0.55", "s"),
        "rabbitmq_rpc": ("black", "D"),
        "mongo_insert": ("0.35", "^"),
    }

    def series(op: str, key: str) -> tuple[list[int], list[float]]:
        xs, ys = [], []
        for clients in levels:
            row = find(rows, op, clients)
            if row is not None and row.get(key):
                xs.append(clients)
                ys.append(row[key])
        return xs, ys

    def disturbed(op: str, key: str) -> tuple[list[int], list[float]]:
        """Points measured while other users took over a third of a core: hollow."""
        source = "claim_submit" if op in LATENCY_ONLY else op
        xs, ys = [], []
        for clients in levels:
            row, cpu_row = find(rows, op, clients), find(rows, source, clients)
            if (
                row is not None
                and row.get(key)
                and cpu_row is not None
                and cpu_row.get("disturbed")
            ):
                xs.append(clients)
                ys.append(row[key])
        return xs, ys

    for ax, key, title in (
        (ax_rate, "throughput", "throughput (ok operations/s)"),
        (ax_p50, "p50_ms", "latency p50 (ms)"),
        (ax_p99, "p99_ms", "latency p99 (ms)"),
    ):
        for op in CEILINGS:
            color, marker = ceiling_styles[op]
            xs, ys = series(op, key)
            if xs:
                ax.plot(
                    xs,
                    ys,
                    linestyle="--",
                    color=color,
                    marker=marker,
                    markersize=5,
                    linewidth=1.4,
                    label=LABELS[op],
                )
        for op in STACK + (LATENCY_ONLY if key != "throughput" else ()):
            xs, ys = series(op, key)
            if xs:
                ax.plot(
                    xs,
                    ys,
                    linestyle="-",
                    color=stack_colors[op],
                    marker="o",
                    markersize=5,
                    linewidth=2,
                    label=LABELS[op],
                )
        for op in CEILINGS + STACK + (LATENCY_ONLY if key != "throughput" else ()):
            xs, ys = disturbed(op, key)
            if xs:
                ax.plot(
                    xs,
                    ys,
                    linestyle="none",
                    marker="o",
                    markersize=7,
                    markerfacecolor="white",
                    markeredgecolor=stack_colors.get(op, "black"),
                    markeredgewidth=1.5,
                )
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(levels, [str(level) for level in levels])
        ax.set_xlabel("concurrent clients")
        ax.set_title(title)
        ax.grid(True, which="major", alpha=0.4)
        ax.grid(True, which="minor", alpha=0.12)
    axes_by_key = {"throughput": ax_rate, "p50_ms": ax_p50, "p99_ms": ax_p99}
    for key, clients, y, op, label in target_marks(rows, growth_clients):
        # A short dotted bar at the level the target asks for, where it is read.
        axes_by_key[key].hlines(
            y,
            clients / 1.5,
            clients * 1.5,
            colors=stack_colors[op],
            linestyles=":",
            linewidth=2.2,
            label=label,
        )

    growth_ops = [op for op in STACK if find(rows, op, growth_clients, "growth_empty")]
    if growth_ops:
        width = 0.38
        positions = range(len(growth_ops))
        empty = [find(rows, op, growth_clients, "growth_empty")["throughput"] for op in growth_ops]
        full = [
            (find(rows, op, growth_clients, "growth_full") or {}).get("throughput") or 0
            for op in growth_ops
        ]
        ax_growth.bar(
            [p - width / 2 for p in positions],
            empty,
            width,
            color="tab:cyan",
            label="empty database",
        )
        ax_growth.bar(
            [p + width / 2 for p in positions],
            full,
            width,
            color="tab:gray",
            label=f"with {document['growth'].get('tasks', 0):,} tasks",
        )
        for p, (e, f) in enumerate(zip(empty, full, strict=True)):
            if e:
                ax_growth.annotate(
                    f"{f / e:.2f}x", (p + width / 2, f), ha="center", va="bottom", fontsize=9
                )
                # The target: the full database's bar reaches this line.
                ax_growth.hlines(
                    e * GROWTH_RATE_OF_EMPTY,
                    p,
                    p + width,
                    colors="black",
                    linestyles=":",
                    linewidth=2,
                    label=f"target: >= {GROWTH_RATE_OF_EMPTY}x empty" if p == 0 else None,
                )
        ax_growth.set_xticks(list(positions), [LABELS[op] for op in growth_ops], fontsize=9)
        ax_growth.set_title(
            f"growth at {growth_clients} clients: throughput (ops/s); "
            f"target ratio >= {GROWTH_RATE_OF_EMPTY}"
        )
        ax_growth.legend(loc="upper right", fontsize=9)
        ax_growth.grid(True, axis="y", alpha=0.4)
    else:
        ax_growth.set_axis_off()

    handles, labels = [], []
    for ax in (ax_rate, ax_p50, ax_p99):
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    if any(row.get("disturbed") for row in rows if row.get("stage", "sweep") == "sweep"):
        from matplotlib.lines import Line2D

        handles.append(
            Line2D(
                [],
                [],
                linestyle="none",
                marker="o",
                markersize=7,
                markerfacecolor="white",
                markeredgecolor="black",
            )
        )
        labels.append("hollow: other users took > 1/3 core")
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=9, frameon=False)
    host = document["host"]
    fig.suptitle(
        f"humantask make bench, {document['started_at'][:16].replace('T', ' ')} UTC, commit "
        f"{host.get('git_commit', '?')}{'+dirty' if host.get('git_dirty') else ''}, "
        f"{host.get('cpus')} cores; "
        f"{document['config']['seconds']:g} s per point. Stack solid, ceilings dashed. "
        "Compare ratios within one run only.",
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0.1, 1, 0.96))
    fig.savefig(path, dpi=90)
    plt.close(fig)
