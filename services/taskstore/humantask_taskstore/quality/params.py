"""The quality model's priors and constants, in one place (docs/architecture/quality-model.md
explains each). One set for every customer: nothing here is tuned per data set."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QualityParams:
    # Class prior: a task's true category is drawn from the customer's completed tasks'
    # (soft) class counts plus this many pseudo-tasks per category of the task.
    class_pseudo_count: float = 1.0
    # The pooled worker (the customer's workers summed), row by true category, starts as
    # if it had answered `pool_prior_strength` times with accuracy `prior_accuracy` (the
    # rest spread evenly over the other categories).
    prior_accuracy: float = 0.7
    pool_prior_strength: float = 10.0
    # A worker's own row is shrunk towards the pooled worker's with this many pseudo-answers:
    # a worker with no history answers like the pooled worker; after many more answers
    # than this of a true category, like itself.
    worker_prior_strength: float = 4.0
    # How much one counted answer of a completed task weighs in the worker's counts, against
    # one scored gold answer (which knows the truth).
    agreement_weight: float = 1.0
    # A completed task's soft counts leave out true categories below this probability
    # (keeps the matrices sparse: one `$inc` field per category that matters).
    soft_count_floor: float = 1e-3


DEFAULT_PARAMS = QualityParams()


@dataclass(frozen=True)
class BlockingParams:
    # WORKER_MIN_ACCURACY and the certainty the contract asks for (docs/reference/contract.md §10).
    min_accuracy: float = 0.7
    certainty: float = 0.9
    # Beta prior on a worker's gold accuracy: as if it had answered
    # `prior_correct` gold tasks right and `prior_wrong` wrong before its first.
    prior_correct: float = 3.0
    prior_wrong: float = 1.0


DEFAULT_BLOCKING = BlockingParams()
