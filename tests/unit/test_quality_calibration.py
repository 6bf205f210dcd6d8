"""Calibration from gold-task posteriors (quality/calibration.py)."""

from __future__ import annotations

import math
import random

import pytest

from humantask_taskstore.quality import (
    IDENTITY,
    CalibrationBin,
    CustomerState,
    Increments,
    apply,
    calibrate,
    fit_calibration,
)
from humantask_taskstore.quality.calibration import observation, sigmoid


def observe(samples: list[tuple[float, int, int, bool]]) -> CustomerState:
    """Bins from (raw top probability, answers, dissent, right?) samples."""
    customer = CustomerState()
    for p, answers, dissent, right in samples:
        apply(Increments(customer=observation(p, answers, dissent, right)), customer, {})
    return customer


def test_no_observations_is_the_identity() -> None:
    assert fit_calibration({}) == IDENTITY


def test_a_well_calibrated_posterior_stays_about_as_it_is() -> None:
    rng = random.Random(1)
    samples = []
    for _ in range(5000):
        p = rng.uniform(0.5, 0.999)
        samples.append((p, 3, 0, rng.random() < p))
    fit = fit_calibration(observe(samples).calibration_bins)
    for p in (0.6, 0.8, 0.95):
        mapped = sigmoid(fit.log_odds(math.log(p / (1 - p)), 3, 0))
        assert mapped == pytest.approx(p, abs=0.03)


def test_an_over_confident_posterior_is_tempered() -> None:
    """Raw 0.99 that is right 80% of the time is reported as about 0.8."""
    rng = random.Random(2)
    samples = [(0.99, 5, 1, rng.random() < 0.8) for _ in range(2000)]
    samples += [(0.7, 1, 0, rng.random() < 0.65) for _ in range(2000)]
    fit = fit_calibration(observe(samples).calibration_bins)
    assert sigmoid(fit.log_odds(math.log(0.99 / 0.01), 5, 1)) == pytest.approx(0.8, abs=0.03)
    assert sigmoid(fit.log_odds(math.log(0.7 / 0.3), 1, 0)) == pytest.approx(0.65, abs=0.03)


def test_a_few_observations_that_agree_with_the_raw_posterior_keep_it() -> None:
    samples = [(0.8, 2, 0, True)] * 4 + [(0.8, 2, 0, False)]
    fit = fit_calibration(observe(samples).calibration_bins)
    assert sigmoid(fit.log_odds(math.log(0.8 / 0.2), 2, 0)) == pytest.approx(0.8, abs=0.02)
    assert fit.slope == pytest.approx(1.0, abs=0.1)


def test_the_fit_is_deterministic_whatever_the_order_of_the_bins() -> None:
    customer = observe([(0.9, 2, 0, True), (0.6, 3, 1, False), (0.99, 5, 1, True)] * 20)
    bins = customer.calibration_bins
    reversed_bins = {
        k: CalibrationBin(b.n, b.correct, b.logit_sum) for k, b in reversed(bins.items())
    }
    assert fit_calibration(bins) == fit_calibration(reversed_bins)


def test_calibrating_keeps_the_ranking_and_sums_to_one() -> None:
    raw = {"a": 0.6, "b": 0.3, "c": 0.1}
    harsh = IDENTITY.__class__(slope=0.1, intercept=-3.0)
    p = calibrate(["a", "b", "c"], raw, "a", harsh, 3, 1)
    assert sum(p.values()) == pytest.approx(1.0)
    assert p["a"] >= p["b"] > p["c"]
    assert p["b"] / p["c"] == pytest.approx(3.0)


def test_a_certain_raw_posterior_is_still_calibrated() -> None:
    tempered = IDENTITY.__class__(slope=0.5)
    p = calibrate(["a", "b"], {"a": 1.0, "b": 0.0}, "a", tempered, 10, 0)
    assert p["a"] < 1.0
    assert sum(p.values()) == pytest.approx(1.0)


def test_a_few_gold_observations_do_not_extrapolate_to_many_answers() -> None:
    """Twenty gold posteriors of one and five answers, raw 0.7, right 80% and 100% of the
    time: the answers term may not turn a raw 0.7 of ten answers, never observed, into a
    certainty (with a prior sd of 0.5 per answer it became 0.995)."""
    samples = [(0.7, 1, 0, True)] * 8 + [(0.7, 1, 0, False)] * 2 + [(0.7, 5, 1, True)] * 10
    fit = fit_calibration(observe(samples).calibration_bins)
    raw = math.log(0.7 / 0.3)
    assert sigmoid(fit.log_odds(raw, 1, 0)) == pytest.approx(0.8, abs=0.03)
    assert sigmoid(fit.log_odds(raw, 10, 0)) < 0.9
    assert abs(fit.answers_weight) <= 0.1
