"""The benchmark's pure helpers: percentiles, summaries, targets, profile reading."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from bench.profiles import frame_name, top_frames
from bench.report import result_paths
from bench.stats import Target, evaluate_targets, latency_summary, percentile, phase_summary


def test_percentile_interpolates_between_ranks() -> None:
    samples = [4.0, 1.0, 3.0, 2.0]  # unsorted on purpose
    assert percentile(samples, 0.0) == 1.0
    assert percentile(samples, 1.0) == 4.0
    assert percentile(samples, 0.5) == pytest.approx(2.5)
    assert percentile(list(range(101)), 0.99) == pytest.approx(99.0)


def test_percentile_edge_cases() -> None:
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.99) == 7.0
    with pytest.raises(ValueError):
        percentile([1.0], 1.5)


def test_latency_summary_is_in_milliseconds() -> None:
    summary = latency_summary([0.001, 0.002, 0.003])
    assert summary["p50_ms"] == 2.0
    assert summary["max_ms"] == 3.0
    assert latency_summary([])["p99_ms"] is None


def test_phase_summary_counts_ok_operations_per_second_and_errors() -> None:
    summary = phase_summary([0.01] * 50, 2.0, {"503": 2, "timeout": 1})
    assert summary["ok"] == 50
    assert summary["throughput"] == 25.0
    assert summary["error_count"] == 3
    assert summary["errors"] == {"503": 2, "timeout": 1}
    with pytest.raises(ValueError):
        phase_summary([], 0, {})


def test_target_verdicts() -> None:
    assert Target("a", 0.6, 0.5, ">=").verdict == "PASS"
    assert Target("a", 0.4, 0.5, ">=").verdict == "FAIL"
    assert Target("a", 21.0, 20.0, "<=").verdict == "FAIL"
    assert Target("a", None, 20.0, "<=").verdict == "N/A"


def row(
    op: str,
    clients: int,
    throughput: float,
    p99: float = 10.0,
    errors: int = 0,
    stage: str = "sweep",
    p50: float = 5.0,
) -> dict:
    return {
        "op": op,
        "clients": clients,
        "stage": stage,
        "throughput": throughput,
        "p50_ms": p50,
        "p99_ms": p99,
        "error_count": errors,
        "errors": {},
    }


def test_evaluate_targets_compares_with_the_ceiling_of_the_same_run() -> None:
    rows = [
        row("rabbitmq_rpc", 64, 1000.0, p99=20.0),
        row("create", 64, 600.0, p99=30.0),
        row("get", 64, 650.0),
        row("create", 64, 600.0, stage="growth_empty"),
        row("create", 64, 500.0, stage="growth_full"),
        row("submit_to_callback", 1, 0, p50=12.0),
    ]
    rss = {"gateway": {"idle_mb": 70.0}, "notifier": {"idle_mb": 90.0}}
    results = {t.name: t for t in evaluate_targets(rows, rss)}
    assert results["create@64 throughput / RabbitMQ RPC ceiling@64"].verdict == "PASS"
    assert results["create@64 errors"].verdict == "PASS"
    assert results["create@64 p99 / RabbitMQ RPC ceiling p99@64"].value == pytest.approx(1.5)
    assert results["get@64 throughput / RabbitMQ RPC ceiling@64"].verdict == "FAIL"
    assert results["create@64 with the growth tasks / empty database"].verdict == "FAIL"
    assert results["list@64 with the growth tasks / empty database"].verdict == "N/A"
    assert results["submit->callback p50@1"].verdict == "PASS"
    assert results["idle RSS gateway"].verdict == "PASS"
    assert results["idle RSS notifier"].verdict == "FAIL"


def test_profile_frames_drop_line_numbers_and_keep_the_module() -> None:
    assert frame_name(
        "create_task (/work/main/services/gateway/humantask_gateway/views.py:31)"
    ) == ("create_task (humantask_gateway/views.py)")
    raw = [
        "main (a/run.py:1);handle (x/humantask_gateway/views.py:3);dumps (lib/json.py:9) 30",
        "main (a/run.py:1);handle (x/humantask_gateway/views.py:4) 10",
        "main (a/run.py:1);select (lib/selectors.py:2) 60",
        "garbage line",
    ]
    summary = top_frames(raw)
    assert summary["samples"] == 100
    assert summary["self"][0] == ("select (lib/selectors.py)", 60.0)
    assert ("handle (humantask_gateway/views.py)", 40.0) in summary["inclusive"]
    assert all("humantask" in frame for frame, _ in summary["inclusive"])


def test_result_paths_never_overwrite(tmp_path: Path) -> None:
    now = datetime(2026, 5, 1, 14, 30)
    first_json, first_png = result_paths(tmp_path, now)
    assert first_json.name == "2026-05-01.json" and first_png.name == "2026-05-01.png"
    first_json.write_text("{}")
    second_json, _ = result_paths(tmp_path, now)
    assert second_json.name == "2026-05-01-1430.json"
    second_json.write_text("{}")
    assert result_paths(tmp_path, now)[0].name == "2026-05-01-1430-2.json"


def test_profile_samples_in_the_event_loop_are_counted_apart() -> None:
    raw = [
        "<module> (humantask_gateway/main.py:1);run_app (aiohttp/web.py:500) 50",
        "<module> (humantask_gateway/main.py:1);run_app (aiohttp/web.py:500);"
        "handle (x/humantask_gateway/views.py:3) 50",
    ]
    summary = top_frames(raw)
    assert (
        summary["samples"] == 100
        and summary["loop_samples"] == 50
        and summary["python_samples"] == 50
    )
    assert summary["self"] == [("handle (humantask_gateway/views.py)", 100.0)]


def test_the_overload_summary_reads_shedding_and_recovery_from_the_phases() -> None:
    from bench.overload import summary, table

    phases = {
        "reference": {"throughput": 100.0, "errors": {}, "issued": 600},
        "overload": {
            "throughput": 90.0,
            "errors": {"503": 300, "timeout": 2},
            "issued": 1200,
            "p50_ms": 400.0,
            "p99_ms": 900.0,
            "rss_peak_mb": {"gateway": 81.5},
            "disturbed": True,
        },
        "recovery": {"throughput": 95.0, "errors": {}, "issued": 600},
    }
    row = summary("create", 256, True, phases)
    assert row["overload_503_share"] == 0.25
    assert row["overload_other_errors"] == {"timeout": 2}
    assert row["recovery_ratio"] == 0.95
    assert row["gateway_rss_peak_mb"] == 81.5
    assert row["disturbed"] is True
    assert (
        "| create | on, 256 (wait Retry-After) | 100 | 90 | 25% | 400 / 900 | 81.5 | 95 (0.95) |"
        in (table([row]))
    )


def test_the_plot_draws_each_line_target_where_it_is_read() -> None:
    from bench.report import target_marks

    rows = [
        {"op": "rabbitmq_rpc", "clients": 64, "throughput": 1000.0, "p99_ms": 80.0},
    ]
    marks = {(key, op): (clients, level) for key, clients, level, op, _ in target_marks(rows, 64)}
    assert marks == {
        ("throughput", "create"): (64, 500.0),
        ("throughput", "get"): (64, 700.0),
        ("p99_ms", "create"): (64, 160.0),
        ("p50_ms", "submit_to_callback"): (1, 20.0),
    }
