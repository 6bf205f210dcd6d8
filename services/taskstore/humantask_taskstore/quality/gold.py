"""Gold tasks: scoring a worker's answer, its accuracy for the customer, the blocking rule,
and what a gold task's answers teach the calibration.

A worker's accuracy θ on a customer's gold tasks has a Beta(α, β) prior
(`BlockingParams`: α = `prior_correct`, β = `prior_wrong`); after `correct` right and
`wrong` wrong gold answers its posterior is Beta(α + correct, β + wrong). The estimate the
customer sees is its mean. The worker is blocked for the customer when

    P(θ < WORKER_MIN_ACCURACY | its gold answers) ≥ 0.9

i.e. when the regularized incomplete beta function I_{min}(α + correct, β + wrong) ≥ 0.9.
With the default prior Beta(3, 1) (mean 0.75: a new worker is given the benefit of the
doubt) one or two wrong gold answers never block; three wrong out of three do, as do 1
right of 5, 4 of 10, 10 of 20; a spammer answering at random between two categories is
blocked after 11 gold answers (median), one answering at random among four after 5
(docs/architecture/quality-model.md has the table).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import TypeVar

from humantask_taskstore.quality.aggregation import CountedAnswer, most_probable, posterior
from humantask_taskstore.quality.calibration import observation
from humantask_taskstore.quality.model import (
    CustomerIncrement,
    CustomerState,
    Evidence,
    Increments,
    WorkerIncrement,
)
from humantask_taskstore.quality.params import (
    DEFAULT_BLOCKING,
    DEFAULT_PARAMS,
    BlockingParams,
    QualityParams,
)

# Gold-task posteriors teach calibration while the task has at most this many answers:
# a regular task never counts more (max_workers ≤ 10), and a gold task answered by a
# hundred workers says nothing about a task answered by five.
CALIBRATION_MAX_ANSWERS = 10


def gold_answer_increments(worker: str, gold_category: str, answered: str) -> Increments:
    """What scoring one gold answer adds: a hard count in the worker's gold matrix and in
    the customer's pooled one, and the worker's gold answers (and correct ones)."""
    correct = int(answered == gold_category)
    cell = {(gold_category, answered): 1.0}
    return Increments(
        workers={
            worker: WorkerIncrement(counts=cell, gold_answers=1, gold_correct=correct),
        },
        customer=CustomerIncrement(counts=cell, gold_answers=1),
    )


def accuracy_posterior(
    gold_answers: int, gold_correct: int, blocking: BlockingParams = DEFAULT_BLOCKING
) -> tuple[float, float]:
    """Beta(α, β) of the worker's gold accuracy after its scored gold answers."""
    return (
        blocking.prior_correct + gold_correct,
        blocking.prior_wrong + (gold_answers - gold_correct),
    )


def accuracy_estimate(
    gold_answers: int, gold_correct: int, blocking: BlockingParams = DEFAULT_BLOCKING
) -> float:
    """The posterior mean of the worker's gold accuracy (what the customer's view shows)."""
    a, b = accuracy_posterior(gold_answers, gold_correct, blocking)
    return a / (a + b)


def probability_below(
    threshold: float,
    gold_answers: int,
    gold_correct: int,
    blocking: BlockingParams = DEFAULT_BLOCKING,
) -> float:
    """P(accuracy < threshold | the worker's gold answers)."""
    a, b = accuracy_posterior(gold_answers, gold_correct, blocking)
    return regularized_incomplete_beta(threshold, a, b)


def is_blocked(
    gold_answers: int, gold_correct: int, blocking: BlockingParams = DEFAULT_BLOCKING
) -> bool:
    """The blocking rule (module doc)."""
    below = probability_below(blocking.min_accuracy, gold_answers, gold_correct, blocking)
    return below >= blocking.certainty


def regularized_incomplete_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b), the CDF of Beta(a, b) at x (Lentz's continued fraction; Numerical
    Recipes §6.4). Accurate to ~1e-12 for the small a, b of gold counts."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    # The continued fraction converges fast for x < (a + 1) / (a + b + 2); use the
    # symmetry I_x(a, b) = 1 − I_{1−x}(b, a) beyond.
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(x, a, b) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(1.0 - x, b, a) / b


def _beta_fraction(x: float, a: float, b: float) -> float:
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


E = TypeVar("E", bound=Evidence)


def _hold_out(evidence: E, true: str, answered: str) -> E:
    """The evidence less one count at [true][answered] (clamped at zero), with its sums:
    a copy sharing every row but one."""
    row = evidence.counts.get(true)
    held = min(1.0, row.get(answered, 0.0)) if row else 0.0
    if held <= 0.0 or row is None:
        return evidence
    return replace(
        evidence,
        counts={**evidence.counts, true: {**row, answered: row[answered] - held}},
        row_totals={**evidence.row_totals, true: evidence.row_totals.get(true, 0.0) - held},
        answered={**evidence.answered, answered: evidence.answered.get(answered, 0.0) - held},
    )


def gold_task_observation(
    categories: Sequence[str],
    gold_category: str,
    answers: Sequence[CountedAnswer],
    customer: CustomerState,
    params: QualityParams = DEFAULT_PARAMS,
) -> CustomerIncrement:
    """What a gold task's answers so far teach the calibration (calibration.py). Call it
    once per new answer on the gold task, after that answer's scoring has been applied,
    with every answer of the task so far, the new one last, and the workers' states as
    read then. Each worker's score on this very task is held out of its matrix and of the
    pooled one (it knows the answer), so the posterior of the answers so far is what a
    regular task that got them in this order would have had. Nothing once the task has
    more than `CALIBRATION_MAX_ANSWERS` answers."""
    if not answers or len(answers) > CALIBRATION_MAX_ANSWERS:
        return CustomerIncrement()
    pooled = customer
    held: list[CountedAnswer] = []
    for answered, worker in answers:
        pooled = _hold_out(pooled, gold_category, answered)
        held.append(CountedAnswer(answered, _hold_out(worker, gold_category, answered)))
    raw = posterior(categories, held, pooled, params)
    top = most_probable(categories, raw)
    dissent = sum(1 for answered, _ in answers if answered != top)
    return observation(raw[top], len(answers), dissent, top == gold_category)
