"""State as counters (quality/model.py): increments commute, so concurrent `$inc`s in any
order give the same state; what a completed task teaches (quality/learning.py)."""

from __future__ import annotations

import itertools
import random

import pytest

from humantask_taskstore.quality import (
    CustomerState,
    Increments,
    WorkerState,
    apply,
    completion_increments,
    gold_answer_increments,
)
from humantask_taskstore.quality.calibration import observation

CATS = ["cat", "dog", "fox"]


def events() -> list[Increments]:
    return [
        gold_answer_increments("w1", "cat", "cat"),
        gold_answer_increments("w2", "cat", "dog"),
        completion_increments(
            CATS, {"cat": 0.7, "dog": 0.2999, "fox": 0.0001}, {"w1": "cat", "w2": "dog"}
        ),
        completion_increments(
            CATS, {"cat": 0.1, "dog": 0.1, "fox": 0.8}, {"w2": "fox", "w3": "fox"}
        ),
        Increments(customer=observation(0.9, 2, 0, True)),
        Increments(customer=observation(0.9, 2, 0, False)),
    ]


def state_after(order: list[Increments]) -> tuple[CustomerState, dict[str, WorkerState]]:
    customer = CustomerState()
    workers = {w: WorkerState() for w in ("w1", "w2", "w3")}
    for increments in order:
        apply(increments, customer, workers)
    return customer, workers


def rounded(state: object) -> object:
    """The state with floats rounded (addition in another order differs in the last bit)."""
    if isinstance(state, dict):
        return {k: rounded(v) for k, v in state.items()}
    if isinstance(state, tuple | list):
        return [rounded(v) for v in state]
    if isinstance(state, float):
        return round(state, 9)
    if hasattr(state, "__dict__"):
        return {k: rounded(v) for k, v in vars(state).items()}
    return state


def test_increments_in_any_order_give_the_same_state() -> None:
    base = events()
    expected = rounded(state_after(base))
    for order in itertools.islice(itertools.permutations(base), 0, None, 37):
        assert rounded(state_after(list(order))) == expected
    shuffled = list(base)
    random.Random(3).shuffle(shuffled)
    assert rounded(state_after(shuffled)) == expected


def test_a_completed_task_spreads_each_answer_over_the_true_categories() -> None:
    increments = completion_increments(
        CATS, {"cat": 0.7, "dog": 0.2999, "fox": 0.0001}, {"w1": "cat", "w2": "dog"}
    )
    w1 = increments.workers["w1"]
    # fox is below the floor: left out, the rest renormalised.
    assert w1.counts == pytest.approx(
        {("cat", "cat"): 0.7 / 0.9999, ("dog", "cat"): 0.2999 / 0.9999}
    )
    assert w1.answers == 1
    assert sum(increments.customer.classes.values()) == pytest.approx(1.0)
    # The pooled counts are the workers' summed.
    assert sum(increments.customer.counts.values()) == pytest.approx(2.0)


def test_increments_as_field_paths() -> None:
    increments = gold_answer_increments("w1", "cat", "dog")
    matrix = {("counts", "cat", "dog"): 1.0, ("row_totals", "cat"): 1.0, ("answered", "dog"): 1.0}
    assert dict(increments.worker_paths("w1")) == {**matrix, ("gold_answers",): 1}
    assert dict(increments.customer_paths()) == {**matrix, ("gold_answers",): 1}
    assert list(increments.worker_paths("somebody else")) == []
    calibration = Increments(customer=observation(0.9, 2, 0, True))
    paths = dict(calibration.customer_paths())
    assert {path[-1] for path in paths} == {"n", "correct", "logit_sum"}
