"""Gold scoring, the accuracy estimate and the blocking rule (quality/gold.py)."""

from __future__ import annotations

import math

import pytest

from humantask_taskstore.quality import (
    DEFAULT_BLOCKING,
    BlockingParams,
    CountedAnswer,
    CustomerState,
    WorkerState,
    accuracy_estimate,
    apply,
    gold_answer_increments,
    gold_task_observation,
    is_blocked,
    posterior,
    probability_below,
)
from humantask_taskstore.quality.gold import regularized_incomplete_beta


def binomial_tail(n: int, x: float, k: int) -> float:
    """P(Binomial(n, x) ≥ k)."""
    return sum(math.comb(n, j) * x**j * (1 - x) ** (n - j) for j in range(k, n + 1))


@pytest.mark.parametrize(("a", "b"), [(1, 1), (2, 1), (3, 1), (3, 4), (10, 2), (2, 30)])
@pytest.mark.parametrize("x", [0.05, 0.3, 0.5, 0.7, 0.95])
def test_incomplete_beta_against_the_binomial_identity(a: int, b: int, x: float) -> None:
    # For integers, I_x(a, b) = P(Binomial(a + b - 1, x) ≥ a).
    assert regularized_incomplete_beta(x, a, b) == pytest.approx(
        binomial_tail(a + b - 1, x, a), abs=1e-10
    )


def test_scoring_a_gold_answer() -> None:
    right = gold_answer_increments("w1", "cat", "cat")
    wrong = gold_answer_increments("w1", "cat", "dog")
    worker, customer = WorkerState(), CustomerState()
    apply(right, customer, {"w1": worker})
    apply(wrong, customer, {"w1": worker})
    assert worker.counts == {"cat": {"cat": 1.0, "dog": 1.0}}
    assert worker.row_totals == {"cat": 2.0}
    assert worker.answered == {"cat": 1.0, "dog": 1.0}
    assert (worker.gold_answers, worker.gold_correct) == (2, 1)
    assert customer.counts == worker.counts
    assert customer.gold_answers == 2


def test_the_accuracy_estimate_starts_at_the_prior() -> None:
    prior = DEFAULT_BLOCKING.prior_correct / (
        DEFAULT_BLOCKING.prior_correct + DEFAULT_BLOCKING.prior_wrong
    )
    assert accuracy_estimate(0, 0) == pytest.approx(prior)
    assert accuracy_estimate(100, 95) == pytest.approx((95 + 3) / (100 + 4))


def test_one_unlucky_answer_never_blocks() -> None:
    assert not is_blocked(1, 0)
    # A good worker's single slip among right answers, wherever it falls.
    for right in range(0, 30):
        assert not is_blocked(right + 1, right)


def wrong_golds_to_block(rate_right: float = 0.0) -> int:
    """How many gold answers in a row, all wrong, block a worker."""
    n = 0
    while not is_blocked(n, 0):
        n += 1
    return n


def test_how_many_wrong_gold_answers_block_a_spammer() -> None:
    # The numbers docs/architecture/quality-model.md gives: three wrong in a row block...
    assert wrong_golds_to_block() == 3
    assert not is_blocked(2, 0)
    # ... and a spammer right half the time is blocked by 4 right out of 12 but not by 5 of 10.
    assert is_blocked(12, 4)
    assert not is_blocked(10, 5)
    assert probability_below(0.7, 2, 0) < 0.9 <= probability_below(0.7, 3, 0)


def test_a_worker_right_often_enough_is_never_blocked() -> None:
    for n in range(1, 200):
        assert not is_blocked(n, math.ceil(0.75 * n))


def test_the_threshold_and_certainty_are_settings() -> None:
    strict = BlockingParams(min_accuracy=0.9)
    assert is_blocked(10, 7, strict)
    assert not is_blocked(10, 7)


def test_a_gold_task_observation_holds_out_the_answers_own_scores() -> None:
    """The workers' scores on this very gold task are held out: the posterior is the one a
    regular task with these answers would have had."""
    cats = ["cat", "dog"]
    workers = {"w1": WorkerState(), "w2": WorkerState()}
    customer = CustomerState()
    for w in workers:
        apply(gold_answer_increments(w, "cat", "cat"), customer, workers)
    answers = [CountedAnswer("cat", workers["w1"]), CountedAnswer("cat", workers["w2"])]
    observed = gold_task_observation(cats, "cat", answers, customer)
    ((key, (n, correct, logit)),) = observed.calibration.items()
    fresh = posterior(cats, [CountedAnswer("cat", WorkerState())] * 2, CustomerState())
    assert (n, correct) == (1.0, 1.0)
    assert key[1:] == (2, 0)  # two answers, no dissent
    assert logit == pytest.approx(math.log(fresh["cat"] / fresh["dog"]))
