"""The fair pool's turns (fair_pool.py): stride scheduling over the customers waiting,
in proportion to their weights, with no burst for a customer that idled, and turns taken
at once so that claims at the same moment spread over the customers."""

from __future__ import annotations

from collections import Counter

from humantask_taskstore.domain import PoolCustomer, Standing
from humantask_taskstore.fair_pool import FairPool, pools_to_try

A, B, C = PoolCustomer("a"), PoolCustomer("b"), PoolCustomer("c")


def turns(pool: FairPool, customers: list[PoolCustomer], count: int) -> list[str]:
    taken = []
    for _ in range(count):
        customer = pool.next_turn(customers)
        assert customer is not None
        pool.take_turn(customer)
        taken.append(customer.customer_id)
    return taken


def test_equal_weights_take_turns() -> None:
    assert turns(FairPool(), [A, B, C], 6) == ["a", "b", "c", "a", "b", "c"]


def test_shares_follow_the_weights() -> None:
    heavy = PoolCustomer("heavy", weight=3)
    served = Counter(turns(FairPool(), [heavy, B], 400))
    assert served == {"heavy": 300, "b": 100}


def test_a_newcomer_is_served_next_whatever_the_backlog_of_others() -> None:
    pool = FairPool()
    turns(pool, [A], 10_000)
    assert turns(pool, [A, B], 2)[0] == "b"


def test_a_customer_that_idled_gets_no_burst() -> None:
    pool = FairPool()
    turns(pool, [A, B], 10)
    turns(pool, [A], 100)  # b was away
    assert Counter(turns(pool, [A, B], 10)) == {"a": 5, "b": 5}


def test_claims_at_the_same_moment_take_successive_turns() -> None:
    """Each claim takes its turn before its lease is written: the next one, at the same
    moment, takes the next customer's."""
    pool = FairPool()
    first, second = pool.next_turn([A, B]), None
    assert first is not None
    pool.take_turn(first)
    second = pool.next_turn([A, B])
    assert second is not None and second != first


def test_a_turn_given_back_does_not_count() -> None:
    pool = FairPool()
    customer = pool.next_turn([A, B])
    assert customer is not None
    pool.take_turn(customer)
    pool.give_back_turn(customer)
    assert pool.next_turn([A, B]) == customer


def test_gold_first_before_a_workers_first_task_then_at_the_rate() -> None:
    assert pools_to_try(Standing(started=False), 0.99, 0.1) == ("gold", "work")
    assert pools_to_try(Standing(started=True), 0.05, 0.1) == ("gold", "work")
    assert pools_to_try(Standing(started=True), 0.5, 0.1) == ("work",)
