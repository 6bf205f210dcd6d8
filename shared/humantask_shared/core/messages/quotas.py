"""What `humantask-admin` asks the task-store about a customer's quotas: how many pending
tasks, and how many bytes of tasks, the customer may have (docs/operations/hardening.md,
"Quotas"). Each quota is the task-store's default (QUOTA_PENDING_TASKS,
QUOTA_STORED_BYTES) unless the operator set one for the customer; 0 is no limit."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from .base import Command

QuotaSource = Literal["default", "customer"]
# A new quota: a number (0: no limit), "default" (the task-store's), or None (unchanged).
QuotaSetting = Annotated[int, Field(ge=0)] | Literal["default"] | None


class CustomerQuota(BaseModel):
    """A customer's quotas and what it uses of them now."""

    model_config = ConfigDict(frozen=True)

    customer_id: str
    pending_tasks: int
    pending_tasks_limit: int  # 0: no limit
    pending_tasks_limit_is: QuotaSource
    stored_bytes: int
    stored_bytes_limit: int  # 0: no limit
    stored_bytes_limit_is: QuotaSource


class SetCustomerQuota(Command[CustomerQuota]):
    """Set either quota of a customer (or neither, to read them); answered with them."""

    routing_key = "customer.set_quota"
    senders = frozenset({"admin"})

    customer_id: str
    pending_tasks: QuotaSetting = None
    stored_bytes: QuotaSetting = None
