"""The posterior over a task's categories (quality/aggregation.py), on tiny hand-made
crowds whose right answer is obvious."""

from __future__ import annotations

import math

import pytest

from humantask_taskstore.quality import (
    CountedAnswer,
    CustomerState,
    WorkerState,
    aggregate,
    apply,
    gold_answer_increments,
    most_probable,
    posterior,
)

CATS = ["cat", "dog"]


def fresh() -> WorkerState:
    return WorkerState()


def with_gold(
    right: dict[str, int], wrong: dict[tuple[str, str], int] | None = None
) -> WorkerState:
    """A worker with scored gold answers: `right[c]` right on c; `wrong[(true, said)]`
    (on a customer of its own: the pooled worker stays the prior)."""
    state = WorkerState()
    scored = [(c, c, n) for c, n in right.items()]
    scored += [(true, said, n) for (true, said), n in (wrong or {}).items()]
    for true, said, n in scored:
        for _ in range(n):
            apply(gold_answer_increments("w", true, said), CustomerState(), {"w": state})
    return state


def test_no_answers_is_the_class_prior() -> None:
    customer = CustomerState(classes={"cat": 9.0, "dog": 1.0})
    p = posterior(CATS, [], customer)
    assert p["cat"] == pytest.approx(10 / 12)
    assert sum(p.values()) == pytest.approx(1.0)


def test_unanimous_fresh_workers_win() -> None:
    p = posterior(CATS, [CountedAnswer("dog", fresh()) for _ in range(3)], CustomerState())
    assert p["dog"] > 0.9


def test_fresh_workers_weigh_like_a_majority_vote() -> None:
    answers = [
        CountedAnswer("dog", fresh()),
        CountedAnswer("dog", fresh()),
        CountedAnswer("cat", fresh()),
    ]
    p = posterior(CATS, answers, CustomerState())
    assert most_probable(CATS, p) == "dog"
    # Two against one with the prior accuracy 0.7: 0.7 / (0.7 + 0.3) after cancelling.
    assert p["dog"] == pytest.approx(0.7)


def test_one_proven_worker_outweighs_two_proven_spammers() -> None:
    expert = with_gold({"cat": 20, "dog": 20})
    spammer = with_gold({"cat": 5, "dog": 5}, {("cat", "dog"): 5, ("dog", "cat"): 5})
    answers = [
        CountedAnswer("cat", expert),
        CountedAnswer("dog", spammer),
        CountedAnswer("dog", spammer),
    ]
    p = posterior(CATS, answers, CustomerState())
    assert most_probable(CATS, p) == "cat"
    assert p["cat"] > 0.9


def test_a_worker_who_always_says_one_category_is_not_trusted_on_it() -> None:
    """Per-class confusion: its "relevant" says nothing, its rare "irrelevant" says a lot.
    One accuracy per worker could not tell these apart."""
    cats = ["relevant", "irrelevant"]
    leaner = with_gold({"relevant": 20}, {("irrelevant", "relevant"): 20})
    honest = with_gold(
        {"relevant": 8, "irrelevant": 8},
        {("relevant", "irrelevant"): 2, ("irrelevant", "relevant"): 2},
    )
    p = posterior(
        cats,
        [CountedAnswer("relevant", leaner), CountedAnswer("irrelevant", honest)],
        CustomerState(),
    )
    assert most_probable(cats, p) == "irrelevant"
    # Alone, the leaner's "relevant" barely moves the prior.
    alone = posterior(cats, [CountedAnswer("relevant", leaner)], CustomerState())
    assert alone["relevant"] == pytest.approx(0.5, abs=0.05)


def test_categories_are_per_task() -> None:
    """A worker's history on other categories does not leak into a task without them."""
    worker = with_gold({"cat": 10}, {("cat", "fox"): 10})
    p = posterior(["cat", "dog"], [CountedAnswer("cat", worker)], CustomerState())
    assert set(p) == {"cat", "dog"}
    assert sum(p.values()) == pytest.approx(1.0)
    # Within {cat, dog} it always said cat when it was cat: a strong "cat".
    assert p["cat"] > 0.7


def test_ties_go_to_the_first_category_of_the_task() -> None:
    answers = [CountedAnswer("dog", fresh()), CountedAnswer("cat", fresh())]
    p = posterior(CATS, answers, CustomerState())
    assert p["cat"] == pytest.approx(p["dog"])
    assert most_probable(["dog", "cat"], p) == "dog"
    assert most_probable(["cat", "dog"], p) == "cat"


def test_a_hundred_categories_and_ten_answers_do_not_underflow() -> None:
    cats = [f"c{i}" for i in range(100)]
    answers = [CountedAnswer("c7", fresh()) for _ in range(10)]
    p = posterior(cats, answers, CustomerState())
    assert all(math.isfinite(v) for v in p.values())
    assert most_probable(cats, p) == "c7"
    assert p["c7"] > 0.999


def test_aggregate_reports_votes_and_the_calibrated_confidence() -> None:
    answers = [
        CountedAnswer("dog", fresh()),
        CountedAnswer("dog", fresh()),
        CountedAnswer("cat", fresh()),
    ]
    result = aggregate(CATS, answers, CustomerState())
    assert result.category == "dog"
    assert result.votes == {"dog": 2, "cat": 1}
    # With no calibration fitted yet, the identity: the raw confidence.
    assert result.confidence == pytest.approx(result.raw_confidence)
    assert sum(result.probabilities.values()) == pytest.approx(1.0)


def test_history_on_categories_outside_the_task_changes_nothing() -> None:
    """Rows and answers outside the task's categories are left out of its posterior."""
    worker = with_gold({"cat": 6, "dog": 3}, {("cat", "dog"): 2})
    wider = with_gold({"cat": 6, "dog": 3, "fox": 5}, {("cat", "dog"): 2})
    customer = CustomerState(classes={"cat": 3.0, "dog": 1.0})
    for answered in CATS:
        narrow_p = posterior(CATS, [CountedAnswer(answered, worker)], customer)
        wide_p = posterior(CATS, [CountedAnswer(answered, wider)], customer)
        assert wide_p == pytest.approx(narrow_p)
