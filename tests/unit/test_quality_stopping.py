"""The completion rule (quality/stopping.py): docs/reference/contract.md §10's edges."""

from __future__ import annotations

import pytest

from humantask_taskstore.quality import (
    CompletionRule,
    CountedAnswer,
    CustomerState,
    WorkerState,
    aggregate,
    apply,
    decide,
    gold_answer_increments,
    is_complete,
)

RULE = CompletionRule(min_workers=2, max_workers=4, confidence=0.9)


@pytest.mark.parametrize(
    ("counted", "confidence", "complete"),
    [
        (1, 0.99, False),  # confident, but fewer than min_workers
        (2, 0.89, False),  # enough workers, not confident enough
        (2, 0.9, True),  # exactly the confidence asked for
        (3, 0.95, True),
        (3, 0.5, False),
        (4, 0.3, True),  # max_workers: complete however unsure
        (5, 0.3, True),
    ],
)
def test_the_completion_rule(counted: int, confidence: float, complete: bool) -> None:
    assert is_complete(RULE, counted, confidence) is complete


def test_min_workers_one_completes_on_a_confident_first_answer() -> None:
    assert is_complete(CompletionRule(1, 5, 0.9), 1, 0.95)
    assert not is_complete(CompletionRule(1, 5, 0.9), 1, 0.7)


def test_a_single_worker_task_completes_on_its_first_answer_with_that_answer() -> None:
    """The defaults keep the single-worker behaviour: the answer is the response, even
    where the model would prefer another category, and no confidence or votes."""
    leaner = WorkerState()
    for _ in range(50):
        apply(gold_answer_increments("w", "cat", "dog"), CustomerState(), {"w": leaner})
    answers = [CountedAnswer("dog", leaner)]
    agg = aggregate(["cat", "dog"], answers, CustomerState())
    assert agg.category == "cat"
    outcome = decide(CompletionRule(), ["dog"], agg)
    assert outcome.complete
    assert outcome.category == "dog"
    assert outcome.confidence is None and outcome.votes is None


def test_a_several_worker_response_has_confidence_and_votes() -> None:
    answers = [CountedAnswer("dog", WorkerState()) for _ in range(4)]
    agg = aggregate(["cat", "dog"], answers, CustomerState())
    outcome = decide(RULE, ["dog"] * 4, agg)
    assert outcome.complete
    assert outcome.category == "dog"
    assert outcome.confidence == pytest.approx(agg.confidence)
    assert outcome.votes == {"dog": 4}


def test_no_counted_answers_is_not_complete() -> None:
    """As after a block discarded every answer: the task waits for more."""
    assert not decide(RULE, [], None).complete
