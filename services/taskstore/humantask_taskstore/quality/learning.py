"""Learning from agreement: what a completed task teaches about its workers and classes.

When a task completes with posterior p over its categories, each counted answer `a`
of worker w is spread over the true categories by p: counts_w[t][a] += λ · p(t) (λ the
agreement weight), and the
customer's class counts get classes[t] += p(t). This is the E-step of Dawid–Skene done
once per task as it completes (online EM): the next task's posterior uses the new counts.
A worker who agrees with confident aggregates earns weight; one who disagrees loses it,
per true category, with no gold needed. Categories below `soft_count_floor` are left out
and the rest renormalised, so each completion touches a few counters, not |C|.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from humantask_taskstore.quality.model import (
    CustomerIncrement,
    Increments,
    WorkerIncrement,
)
from humantask_taskstore.quality.params import DEFAULT_PARAMS, QualityParams


def soft_label(
    categories: Sequence[str], probabilities: Mapping[str, float], floor: float
) -> dict[str, float]:
    """The posterior without its negligible categories, renormalised."""
    kept = {t: probabilities[t] for t in categories if probabilities[t] >= floor}
    total = sum(kept.values())
    return {t: p / total for t, p in kept.items()}


def completion_increments(
    categories: Sequence[str],
    probabilities: Mapping[str, float],
    answers: Mapping[str, str],
    params: QualityParams = DEFAULT_PARAMS,
) -> Increments:
    """What a task completing with posterior `probabilities` adds, for its counted
    `answers` ({worker: category answered}): each worker's soft counts and one counted
    answer, the customer's pooled soft counts and its class counts (module doc)."""
    label = soft_label(categories, probabilities, params.soft_count_floor)
    pooled: dict[tuple[str, str], float] = {}
    workers: dict[str, WorkerIncrement] = {}
    for worker, answered in answers.items():
        cells = {(t, answered): params.agreement_weight * p for t, p in label.items()}
        workers[worker] = WorkerIncrement(counts=cells, answers=1)
        for cell, p in cells.items():
            pooled[cell] = pooled.get(cell, 0.0) + p
    return Increments(
        workers=workers,
        customer=CustomerIncrement(classes=label, counts=pooled),
    )
