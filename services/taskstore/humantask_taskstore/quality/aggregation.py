"""The posterior over a task's categories given its counted answers (Dawid–Skene).

Each worker w has a confusion matrix π_w[t][a], the probability that it answers `a` when
the true category is `t`, one row per true category (not one accuracy: a worker who
answers "relevant" to everything is right on every relevant item and wrong on every other,
and one number cannot say so). Given the answers a_w of the task's workers,

    P(t | answers) ∝ ρ(t) · Π_w π_w[t][a_w]        for t in the task's categories C

with ρ the customer's class prior. Each row is estimated from counts, restricted to the
task's categories (a worker's behaviour given that the answer is one of C):

    ρ(t)        = (m[t] + γ) / Σ_{t'∈C} (m[t'] + γ)
    q[t][a]     = (N[t][a] + β[t][a]) / (N[t][C] + Σ_{a'∈C} β[t][a'])   the pooled worker
    π_w[t][a]   = (n_w[t][a] + s · q[t][a]) / (n_w[t][C] + s)

where n_w are the worker's counts (scored gold answers, and soft counts learnt from
completed tasks: `model.py`), N the same summed over the customer's workers, m the
customer's soft class counts, β the base prior (`prior_accuracy` on the diagonal,
the rest spread evenly, `pool_prior_strength` in all) and s the worker's shrinkage towards
the pooled worker (`params.QualityParams`). So a worker with no
history counts as the customer's typical worker, and a customer with no history as
workers right `prior_accuracy` of the time: the first answers of a new customer are
weighed like a majority vote.

The raw posterior is over-confident where workers' errors are correlated (hard items);
`calibration.py` maps its confidence to a calibrated one, fitted on gold tasks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from humantask_taskstore.quality.calibration import IDENTITY, Calibration, calibrate
from humantask_taskstore.quality.model import CustomerState, Evidence, WorkerState
from humantask_taskstore.quality.params import DEFAULT_PARAMS, QualityParams


class CountedAnswer(NamedTuple):
    """One counted answer of a task: the category answered, and what is known of its worker."""

    category: str
    worker: WorkerState


def _row_total(row: dict[str, float] | None, categories: frozenset[str]) -> float:
    """A row's counts over the task's categories."""
    if not row:
        return 0.0
    return sum(count for answered, count in row.items() if answered in categories)


def _totals(evidence: Evidence, categories: list[str], category_set: frozenset[str]) -> list[float]:
    """Each row's total over the task's categories. When everything the evidence ever
    saw answered is one of them (a customer whose tasks share one set: the usual case),
    the stored row totals are those totals."""
    if evidence.answered.keys() <= category_set:
        totals = evidence.row_totals
        return [totals.get(t, 0.0) for t in categories]
    rows = evidence.counts
    return [_row_total(rows.get(t), category_set) for t in categories]


def posterior(
    categories: Sequence[str],
    answers: Sequence[CountedAnswer],
    customer: CustomerState,
    params: QualityParams = DEFAULT_PARAMS,
) -> dict[str, float]:
    """The raw posterior {category: probability} of the task's true category (module doc).

    `categories` are the task's (distinct); every answer's category must be one of them.
    Pure and deterministic: same inputs, same floats."""
    cats = list(categories)
    k = len(cats)
    cat_set = frozenset(cats)
    gamma = params.class_pseudo_count
    probs = [customer.classes.get(t, 0.0) + gamma for t in cats]
    if not answers:
        total = sum(probs)
        return {t: p / total for t, p in zip(cats, probs, strict=True)}

    strength = params.pool_prior_strength
    diag_prior = strength * params.prior_accuracy
    off_prior = strength * (1.0 - params.prior_accuracy) / (k - 1) if k > 1 else 0.0
    # The pooled worker, once per task: its rows and their totals over C.
    pool_rows = [customer.counts.get(t) for t in cats]
    pool_totals = [total + strength for total in _totals(customer, cats, cat_set)]
    s = params.worker_prior_strength
    columns: dict[str, list[float]] = {}
    for answered, worker in answers:
        # q[t][answered] for every t: a column of the pooled matrix, once per category.
        column = columns.get(answered)
        if column is None:
            column = [
                ((row.get(answered, 0.0) if row else 0.0) + off_prior) / total
                for row, total in zip(pool_rows, pool_totals, strict=True)
            ]
            i = cats.index(answered)
            column[i] += (diag_prior - off_prior) / pool_totals[i]
            columns[answered] = column
        likelihood = column
        counts = worker.counts
        if counts and worker.answered.keys() <= cat_set:
            # The worker's own rows, shrunk towards the pooled worker's; a row it has no
            # counts for is the pooled worker's. (The usual case, in one pass: every
            # category it ever answered is one of the task's, so its stored row totals
            # are the totals over C.)
            totals = worker.row_totals
            likelihood = [
                (row.get(answered, 0.0) + s * q) / (totals[t] + s) if (row := counts.get(t)) else q
                for t, q in zip(cats, column, strict=True)
            ]
        elif counts:
            rows = [counts.get(t) for t in cats]
            row_totals = _totals(worker, cats, cat_set)
            likelihood = [
                (row.get(answered, 0.0) + s * q) / (total + s) if row else q
                for row, total, q in zip(rows, row_totals, column, strict=True)
            ]
        probs = [p * q for p, q in zip(probs, likelihood, strict=True)]
        # Rescale so ten answers over a hundred categories never underflow.
        top = max(probs)
        probs = [p / top for p in probs]
    total = sum(probs)
    return {t: p / total for t, p in zip(cats, probs, strict=True)}


@dataclass(frozen=True)
class Aggregate:
    """A task's aggregate answer."""

    category: str  # the most probable category (ties: the first in the task's order)
    confidence: float  # its calibrated probability
    raw_confidence: float  # its probability under the raw posterior
    probabilities: dict[str, float]  # the calibrated posterior
    votes: dict[str, int]  # counted answers per category (categories nobody chose left out)


def most_probable(categories: Sequence[str], probabilities: dict[str, float]) -> str:
    """The category of highest probability; of equals, the first in the task's order."""
    best = categories[0]
    best_p = probabilities[best]
    for t in categories[1:]:
        p = probabilities[t]
        if p > best_p:
            best, best_p = t, p
    return best


def votes(answers: Sequence[CountedAnswer]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for answered, _ in answers:
        counts[answered] = counts.get(answered, 0) + 1
    return counts


def aggregate(
    categories: Sequence[str],
    answers: Sequence[CountedAnswer],
    customer: CustomerState,
    calibration: Calibration = IDENTITY,
    params: QualityParams = DEFAULT_PARAMS,
) -> Aggregate:
    """The task's aggregate answer after its counted answers: the raw posterior, its top
    category, and the calibrated confidence the completion rule and the response use."""
    raw = posterior(categories, answers, customer, params)
    top = most_probable(categories, raw)
    dissent = sum(1 for answered, _ in answers if answered != top)
    calibrated = calibrate(categories, raw, top, calibration, len(answers), dissent)
    return Aggregate(
        category=top,
        confidence=calibrated[top],
        raw_confidence=raw[top],
        probabilities=calibrated,
        votes=votes(answers),
    )
