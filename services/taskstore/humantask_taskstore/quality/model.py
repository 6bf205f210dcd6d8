"""What is known of a customer's workers and of its tasks, as counters.

Everything the quality model learns is a sum: each event (a gold answer scored, a task
completed, a gold task's answers seen together) returns the *increments* it causes, and
the state is the sum of all increments so far. So the task-store can keep the state in
documents updated with MongoDB `$inc` by concurrent writers, with no transaction and no
read-modify-write: increments commute, and applying them in any order gives the same
state (`apply`). The one value that is not a sum, the calibration fitted from the
counters, is a cache of a pure function of them (`calibration.fit_calibration`).

State is keyed by category strings, never by a category's position: tasks of one
customer may have different category sets, and a worker's behaviour on "cat" is the same
whatever else a task offers.

Per (customer, worker), `WorkerState`:
- `counts[true][answered]`: its evidence, one matrix: each scored gold answer adds 1 at
  [gold category][answered]; each counted answer on a completed task is spread over the
  true categories by the task's posterior, times the agreement weight (soft counts:
  online Dawid–Skene);
- `row_totals[true]` and `answered[answered]`: the matrix's row and column sums, kept
  beside it so a posterior reads a row's total in O(1);
- `gold_answers`, `gold_correct`, `answers` (the counts the customer's view shows, and
  the blocking rule's).

Per customer, `CustomerState`:
- `classes[category]`: soft counts of the true categories of its completed tasks;
- `counts`, `row_totals`, `answered`: its workers' summed (the pooled worker, the prior of
  a worker with little history);
- `calibration_bins`: gold tasks' raw confidences and whether they were right
  (`calibration.py`); `gold_answers`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

# A confusion matrix as nested counters: matrix[true category][answered category].
Matrix = dict[str, dict[str, float]]
# The same, as the flat increments an event causes: (true, answered) -> amount.
MatrixIncrement = Mapping[tuple[str, str], float]


@dataclass
class CalibrationBin:
    """Gold-task posteriors whose raw confidence fell in one bin (`calibration.py`)."""

    n: float = 0.0  # posteriors seen
    correct: float = 0.0  # of them, how many had the gold category on top
    logit_sum: float = 0.0  # the sum of their raw log-odds (the bin's mean, for the fit)


@dataclass
class Evidence:
    """A confusion matrix of counts with its row and column sums."""

    counts: Matrix = field(default_factory=dict)
    row_totals: dict[str, float] = field(default_factory=dict)
    answered: dict[str, float] = field(default_factory=dict)


@dataclass
class WorkerState(Evidence):
    """What a customer knows of one worker."""

    gold_answers: int = 0
    gold_correct: int = 0
    answers: int = 0


@dataclass
class CustomerState(Evidence):
    """What a customer's tasks and workers taught, pooled over its workers."""

    classes: dict[str, float] = field(default_factory=dict)
    calibration_bins: dict[tuple[int, int, int], CalibrationBin] = field(default_factory=dict)
    gold_answers: int = 0


@dataclass(frozen=True)
class WorkerIncrement:
    """What one event adds to one worker's counters."""

    counts: MatrixIncrement = field(default_factory=dict)
    gold_answers: int = 0
    gold_correct: int = 0
    answers: int = 0


@dataclass(frozen=True)
class CustomerIncrement:
    """What one event adds to the customer's counters."""

    classes: Mapping[str, float] = field(default_factory=dict)
    counts: MatrixIncrement = field(default_factory=dict)
    # (log-odds bin, answers, dissenting answers) -> (n, correct, logit_sum)
    calibration: Mapping[tuple[int, int, int], tuple[float, float, float]] = field(
        default_factory=dict
    )
    gold_answers: int = 0


@dataclass(frozen=True)
class Increments:
    """Everything one event adds: to some workers' counters and to the customer's."""

    workers: Mapping[str, WorkerIncrement] = field(default_factory=dict)
    customer: CustomerIncrement = field(default_factory=CustomerIncrement)

    def worker_paths(self, worker: str) -> Iterator[tuple[tuple[str, ...], float]]:
        """The worker's increments as (field path, amount): what a `$inc` needs. The
        category strings are path parts as they are; the adapter encodes them for its
        field names (a category may contain `.` or start with `$`)."""
        inc = self.workers.get(worker)
        if inc is None:
            return
        yield from _matrix_paths(inc.counts)
        for name in ("gold_answers", "gold_correct", "answers"):
            amount = getattr(inc, name)
            if amount:
                yield (name,), amount

    def customer_paths(self) -> Iterator[tuple[tuple[str, ...], float]]:
        """The customer's increments as (field path, amount)."""
        inc = self.customer
        for category, amount in inc.classes.items():
            yield ("classes", category), amount
        yield from _matrix_paths(inc.counts)
        for key, (n, correct, logit_sum) in inc.calibration.items():
            name = ":".join(map(str, key))
            yield ("calibration_bins", name, "n"), n
            yield ("calibration_bins", name, "correct"), correct
            yield ("calibration_bins", name, "logit_sum"), logit_sum
        if inc.gold_answers:
            yield ("gold_answers",), inc.gold_answers


def _matrix_paths(matrix: MatrixIncrement) -> Iterator[tuple[tuple[str, ...], float]]:
    """A matrix increment with the row and column sums it changes."""
    rows: dict[str, float] = {}
    columns: dict[str, float] = {}
    for (true, answered), amount in matrix.items():
        yield ("counts", true, answered), amount
        rows[true] = rows.get(true, 0.0) + amount
        columns[answered] = columns.get(answered, 0.0) + amount
    for true, amount in rows.items():
        yield ("row_totals", true), amount
    for answered, amount in columns.items():
        yield ("answered", answered), amount


def _add(counters: dict[str, float], key: str, amount: float) -> None:
    counters[key] = counters.get(key, 0.0) + amount


def _add_evidence(evidence: Evidence, increment: MatrixIncrement) -> None:
    for (true, answered), amount in increment.items():
        _add(evidence.counts.setdefault(true, {}), answered, amount)
        _add(evidence.row_totals, true, amount)
        _add(evidence.answered, answered, amount)


def apply(
    increments: Increments, customer: CustomerState, workers: Mapping[str, WorkerState]
) -> None:
    """Adds the increments to in-memory state, as `$inc` does to the documents (the
    simulation's store and the tests'). A worker missing from `workers` is skipped: the
    caller passes every worker it keeps."""
    for worker, inc in increments.workers.items():
        state = workers.get(worker)
        if state is None:
            continue
        _add_evidence(state, inc.counts)
        state.gold_answers += inc.gold_answers
        state.gold_correct += inc.gold_correct
        state.answers += inc.answers
    c = increments.customer
    for category, amount in c.classes.items():
        _add(customer.classes, category, amount)
    _add_evidence(customer, c.counts)
    for index, (n, correct, logit_sum) in c.calibration.items():
        b = customer.calibration_bins.setdefault(index, CalibrationBin())
        b.n += n
        b.correct += correct
        b.logit_sum += logit_sum
    customer.gold_answers += c.gold_answers
