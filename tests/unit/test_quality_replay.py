"""The replay of `make quality-sim` (bench/quality_replay.py) on a small synthetic crowd:
it mirrors the product's order of events and runs the product's own rules."""

from __future__ import annotations

import pytest

from bench.quality_replay import (
    ReplaySettings,
    event_stream,
    expected_calibration_error,
    replay,
    replay_scores,
    split_gold,
)
from bench.quality_synthetic import synthetic_crowd, worker_kind
from humantask_taskstore import quality

CROWD = synthetic_crowd(seed=1, items=300)
RULE = quality.CompletionRule(min_workers=1, max_workers=5, confidence=0.9)


def test_each_worker_answers_a_gold_task_before_its_first_regular_one() -> None:
    gold = split_gold(CROWD, 0.1, seed=1)
    first: dict[str, str] = {}
    for kind, _, worker, _ in event_stream(CROWD, gold, seed=1):
        if kind in ("gold", "answer"):
            first.setdefault(worker, kind)
    gold_answerers = {w for item, w, _ in CROWD.answers if item in gold}
    assert {w for w, kind in first.items() if kind == "gold"} == gold_answerers


def test_a_replay_completes_every_regular_item_within_max_workers() -> None:
    result = replay(CROWD, ReplaySettings(RULE, seed=1))
    regular = set(CROWD.items) - result.gold_items
    assert set(result.items) == regular
    assert all(r.counted <= RULE.max_workers for r in result.items.values())
    scores = replay_scores(CROWD, result)
    assert scores.accuracy > 0.8
    assert scores.answers_per_item < 5


def test_spammers_are_blocked_and_good_workers_are_not() -> None:
    result = replay(CROWD, ReplaySettings(RULE, seed=1))
    kinds = [worker_kind(b.worker) for b in result.blocks]
    assert "good" not in kinds
    assert "random spammer" in kinds


def test_expected_calibration_error() -> None:
    # Confidence 0.9, right 90%: calibrated. Confidence 0.9, right 50%: off by 0.4.
    assert expected_calibration_error([0.9] * 10, [True] * 9 + [False]) == pytest.approx(0.0)
    assert expected_calibration_error([0.9] * 10, [True] * 5 + [False] * 5) == pytest.approx(0.4)
