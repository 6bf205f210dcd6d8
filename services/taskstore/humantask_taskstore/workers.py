"""What the task-store knows of a worker for one customer (docs/reference/contract.md §10), as
the domain, the handlers and the repository pass it around. No I/O here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from . import quality


@dataclass(frozen=True)
class Standing:
    """What a claim needs to know of a worker for one customer."""

    blocked: bool = False
    # It was served one of the customer's tasks: its first gold task is behind it.
    started: bool = False


@dataclass(frozen=True)
class WorkerStanding:
    """What an answer's decision needs to know of a worker."""

    state: quality.WorkerState = field(default_factory=quality.WorkerState)
    blocked: bool = False


@dataclass(frozen=True)
class QualityContext:
    """What a decision on an answer reads besides the task: the customer's pooled state,
    its calibration, and each of the task's answering workers' standing (a worker
    missing here has no history and is not blocked)."""

    customer: quality.CustomerState = field(default_factory=quality.CustomerState)
    calibration: quality.Calibration = quality.IDENTITY
    workers: Mapping[str, WorkerStanding] = field(default_factory=dict)

    def standing(self, worker_id: str) -> WorkerStanding:
        return self.workers.get(worker_id) or WorkerStanding()


@dataclass(frozen=True)
class WorkerRecord:
    """A worker's counters for a customer, as its view and the blocking rule read them."""

    customer_id: str
    worker_id: str
    answers: int = 0
    gold_answers: int = 0
    gold_correct: int = 0
    blocked: bool = False


@dataclass(frozen=True)
class Applied:
    """A worker's counters after an increment; `written` False when that increment had
    been written before (its key was among those applied)."""

    worker: WorkerRecord
    written: bool
