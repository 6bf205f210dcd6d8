"""The quality model: aggregating several workers' answers, completing tasks, gold
scoring and blocking, calibration. Pure (no I/O, no clock, no randomness): the task-store
runs it on state it keeps as counters, and `bench/quality_sim.py` replays real crowds
through the same functions. docs/architecture/quality-model.md explains the model.
"""

from humantask_taskstore.quality.aggregation import (
    Aggregate,
    CountedAnswer,
    aggregate,
    most_probable,
    posterior,
)
from humantask_taskstore.quality.calibration import (
    IDENTITY,
    Calibration,
    calibrate,
    fit_calibration,
)
from humantask_taskstore.quality.gold import (
    accuracy_estimate,
    gold_answer_increments,
    gold_task_observation,
    is_blocked,
    probability_below,
)
from humantask_taskstore.quality.learning import completion_increments
from humantask_taskstore.quality.model import (
    CalibrationBin,
    CustomerIncrement,
    CustomerState,
    Increments,
    WorkerIncrement,
    WorkerState,
    apply,
)
from humantask_taskstore.quality.params import (
    DEFAULT_BLOCKING,
    DEFAULT_PARAMS,
    BlockingParams,
    QualityParams,
)
from humantask_taskstore.quality.stopping import CompletionRule, Outcome, decide, is_complete

__all__ = [
    "DEFAULT_BLOCKING",
    "DEFAULT_PARAMS",
    "IDENTITY",
    "Aggregate",
    "BlockingParams",
    "Calibration",
    "CalibrationBin",
    "CompletionRule",
    "CountedAnswer",
    "CustomerIncrement",
    "CustomerState",
    "Increments",
    "Outcome",
    "QualityParams",
    "WorkerIncrement",
    "WorkerState",
    "accuracy_estimate",
    "aggregate",
    "apply",
    "calibrate",
    "completion_increments",
    "decide",
    "fit_calibration",
    "gold_answer_increments",
    "gold_task_observation",
    "is_blocked",
    "is_complete",
    "most_probable",
    "posterior",
    "probability_below",
]
