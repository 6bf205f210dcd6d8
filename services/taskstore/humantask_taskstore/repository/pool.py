"""The fair pool's customers: who has regular tasks waiting for workers, and each one's
weight (docs/reference/contract.md §6). One document per customer in `pool_customers`:
`active` while it has tasks in the pool, `touched` counted up by every insert of its
tasks, `weight` when an operator set one (1 otherwise).

A claim reads the active customers (`waiting`) and takes tasks from them in proportion
to their weights (`fair_pool.FairPool`). A customer is marked active right after its
tasks are inserted (`touch`, one write per insert group) and idle by a claim that found
none of its tasks in the pool (`set_idle`), only if nothing touched it since that claim
read it: an insert after the claim's look either touched it after the look (and the
write of idleness fails) or is touched after it (and is active again), so a customer with
a task in the pool is never left idle.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pymongo import ASCENDING, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from humantask_shared.runtime.mongo import Document

from ..domain import DEFAULT_WEIGHT, PoolCustomer
from ..fair_pool import FairPool

POOL_CUSTOMERS = "pool_customers"


async def ensure_pool_indexes(db: AsyncDatabase[Document]) -> None:
    await db[POOL_CUSTOMERS].create_index([("active", ASCENDING)], name="active")


class PoolRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._customers = db[POOL_CUSTOMERS]
        # This process's turns among the customers (`fair_pool`).
        self._turns = FairPool()

    async def waiting(self) -> list[PoolCustomer]:
        """The customers with regular tasks in the pool (or that had some a moment ago)."""
        cursor = self._customers.find({"active": True}, {"weight": 1, "touched": 1})
        customers = [
            PoolCustomer(doc["_id"], doc.get("weight", DEFAULT_WEIGHT), doc.get("touched", 0))
            async for doc in cursor
        ]
        self._turns.forget(customers)
        return customers

    def take_turn(self, customers: Sequence[PoolCustomer]) -> PoolCustomer | None:
        """The customer whose turn it is among these, its turn taken (this process's
        `fair_pool.FairPool`)."""
        customer = self._turns.next_turn(customers)
        if customer is not None:
            self._turns.take_turn(customer)
        return customer

    def give_back_turn(self, customer: PoolCustomer) -> None:
        self._turns.give_back_turn(customer)

    async def customer(self, customer_id: str) -> PoolCustomer | None:
        """The customer as the pool has it, if it is waiting."""
        doc = await self._customers.find_one({"_id": customer_id, "active": True})
        if doc is None:
            return None
        return PoolCustomer(doc["_id"], doc.get("weight", DEFAULT_WEIGHT), doc.get("touched", 0))

    async def touch(self, customer_ids: Iterable[str]) -> None:
        """These customers have (just inserted) tasks in the pool."""
        writes = [
            UpdateOne(
                {"_id": customer_id},
                {"$set": {"active": True}, "$inc": {"touched": 1}},
                upsert=True,
            )
            for customer_id in dict.fromkeys(customer_ids)
        ]
        if writes:
            await self._customers.bulk_write(writes, ordered=False)

    async def set_idle(self, customer: PoolCustomer) -> bool:
        """The customer has no task in the pool, as a look made after `customer` was read
        found: idle unless touched since. False if it was."""
        result = await self._customers.update_one(
            {"_id": customer.customer_id, "touched": customer.touched, "active": True},
            {"$set": {"active": False}},
        )
        return result.modified_count == 1

    async def set_weight(self, customer_id: str, weight: float) -> None:
        await self._customers.update_one(
            {"_id": customer_id}, {"$set": {"weight": weight}}, upsert=True
        )

    async def weight(self, customer_id: str) -> float:
        doc = await self._customers.find_one({"_id": customer_id}, {"weight": 1})
        return DEFAULT_WEIGHT if doc is None else doc.get("weight", DEFAULT_WEIGHT)
