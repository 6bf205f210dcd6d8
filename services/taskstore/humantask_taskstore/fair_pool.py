"""Whose task a claim serves (docs/reference/contract.md §6 and §10). No I/O here.

**Across customers: stride scheduling.** Each customer waiting in the pool has a weight w
(1 unless an operator set another: `humantask-admin customers set-weight`) and a pass.
A claim takes the customer of lowest pass (ties by customer id), and moves its pass on
by 1/w as it takes its turn, before its lease is written: a claim running at the same
moment sees that turn taken and takes the next customer (a turn that finds no task for
the worker is given back, and the claim takes the next). The virtual time is the lowest
pass of the customers waiting; a customer that starts waiting (again) starts there, never
below, so idling earns it no burst of claims later.

What this guarantees, over the claims one task-store process serves: while customers
keep tasks waiting, each one's share of those claims is its weight over the sum of the
weights of those waiting, off by at most one claim per customer at any moment; a
customer that starts waiting is served within as many claims as there are customers
waiting (its pass is the lowest but for ties). So one customer's backlog, however deep,
holds another's new task back by at most one claim per other customer waiting. Each
process keeps its own passes (RabbitMQ spreads claims over the processes), so with P
processes a new task waits at most that many claims of whichever process serves the next
claims. Within a customer, oldest first (the repository's claim).

**Gold** (docs/reference/contract.md §10): before a worker's first task of a customer, the claim
tries the customer's gold tasks first; after that, a share GOLD_RATE of the claims that
serve the customer try its gold tasks first. A gold try that finds none the worker has not
answered falls back to regular work.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .domain import PoolCustomer, PoolKind, Standing


class FairPool:
    """One process's passes (module doc). The pool adapter keeps one (`ports.Pool`)."""

    def __init__(self) -> None:
        self._passes: dict[str, float] = {}
        self._virtual_time = 0.0

    def pass_of(self, customer_id: str) -> float:
        return max(self._passes.get(customer_id, self._virtual_time), self._virtual_time)

    def next_turn(self, customers: Iterable[PoolCustomer]) -> PoolCustomer | None:
        """The waiting customer whose turn it is (lowest pass, then id); None for none."""
        waiting = list(customers)
        if not waiting:
            return None
        for customer in waiting:  # a newcomer, or one back from idling, starts at the time
            self._passes[customer.customer_id] = self.pass_of(customer.customer_id)
        # The virtual time follows the lowest pass of those waiting, up only.
        lowest = min(self._passes[c.customer_id] for c in waiting)
        self._virtual_time = max(self._virtual_time, lowest)
        return min(waiting, key=lambda c: (self._passes[c.customer_id], c.customer_id))

    def take_turn(self, customer: PoolCustomer) -> None:
        self._passes[customer.customer_id] = (
            self.pass_of(customer.customer_id) + 1.0 / customer.weight
        )

    def give_back_turn(self, customer: PoolCustomer) -> None:
        """A turn that served nothing (no task for the worker) is not counted."""
        if customer.customer_id in self._passes:
            self._passes[customer.customer_id] -= 1.0 / customer.weight

    def forget(self, waiting: Sequence[PoolCustomer]) -> None:
        """Drop the passes of customers no longer waiting and not ahead of the virtual
        time (they would start from it anyway): the state stays as large as the pool."""
        keep = {customer.customer_id for customer in waiting}
        for customer_id, value in list(self._passes.items()):
            if customer_id not in keep and value <= self._virtual_time:
                del self._passes[customer_id]


def pools_to_try(standing: Standing, draw: float, gold_rate: float) -> tuple[PoolKind, ...]:
    """Which of a customer's pools a claim tries, in order (module doc). `draw` is uniform
    in [0, 1)."""
    if not standing.started or draw < gold_rate:
        return ("gold", "work")
    return ("work",)
