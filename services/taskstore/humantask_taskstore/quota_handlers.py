"""The operator's command for a customer's quotas (`humantask-admin customers
set-quota`): set either, or read both, with what the customer uses of them now."""

from __future__ import annotations

import logging

from humantask_shared.core.errors import NotFound
from humantask_shared.core.messages.quotas import CustomerQuota, SetCustomerQuota

from .ports import Dependencies

log = logging.getLogger(__name__)


async def set_customer_quota(command: SetCustomerQuota, deps: Dependencies) -> CustomerQuota:
    if await deps.accounts.account("customer", command.customer_id) is None:
        raise NotFound(f"no customer with customer_id {command.customer_id}")
    quota = await deps.tasks.set_quota(
        command.customer_id, command.pending_tasks, command.stored_bytes
    )
    if command.pending_tasks is not None or command.stored_bytes is not None:
        log.info(
            "customer quota set",
            extra={
                "customer_id": command.customer_id,
                "pending_tasks_limit": quota.pending_tasks_limit,
                "stored_bytes_limit": quota.stored_bytes_limit,
            },
        )
    return quota
