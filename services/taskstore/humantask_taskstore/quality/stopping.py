"""When a task has enough answers (docs/reference/contract.md §10), and what its response says.

A task completes as soon as it has at least `min_workers` counted answers and its
aggregate's (calibrated) confidence is at least `confidence`, or when it has `max_workers`
counted answers. A single-worker task (`max_workers` 1, the default) completes on its
first answer with that answer, exactly as before there were several workers; its
response has no `confidence` and no `votes`.
"""

from __future__ import annotations

from dataclasses import dataclass

from humantask_taskstore.quality.aggregation import Aggregate

MAX_WORKERS_LIMIT = 10


@dataclass(frozen=True)
class CompletionRule:
    """A task's `min_workers`, `max_workers` and `confidence` (validated at create)."""

    min_workers: int = 1
    max_workers: int = 1
    confidence: float = 0.9

    @property
    def several_workers(self) -> bool:
        return self.max_workers > 1


def is_complete(rule: CompletionRule, counted_answers: int, confidence: float) -> bool:
    """The completion rule on a task's counted answers and its aggregate's confidence."""
    if counted_answers >= rule.max_workers:
        return True
    return counted_answers >= rule.min_workers and confidence >= rule.confidence


@dataclass(frozen=True)
class Outcome:
    """What the completion rule decided, and the response a completed task gets."""

    complete: bool
    category: str | None = None
    # Only on several-worker tasks (`max_workers` > 1):
    confidence: float | None = None
    votes: dict[str, int] | None = None


def decide(rule: CompletionRule, answered: list[str], aggregate: Aggregate | None) -> Outcome:
    """The task's outcome after its counted answers `answered` (categories, in the order
    they were counted) and their aggregate (None when there are none, as after a block
    discarded them all). A single-worker task's response is its one answer."""
    if not answered or aggregate is None:
        return Outcome(complete=False)
    if not rule.several_workers:
        return Outcome(complete=True, category=answered[0])
    if not is_complete(rule, len(answered), aggregate.confidence):
        return Outcome(complete=False)
    return Outcome(
        complete=True,
        category=aggregate.category,
        confidence=aggregate.confidence,
        votes=dict(aggregate.votes),
    )
