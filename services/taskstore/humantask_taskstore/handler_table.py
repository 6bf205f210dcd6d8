"""The task-store's one handler table: each command its queue carries
(`topology.TASKSTORE_COMMANDS_QUEUE`, the one list of them) and the handler that answers
it. The command server refuses to start unless the table answers exactly those
commands, and `tests/unit/test_topology.py` checks that each handler takes its command
and returns the command's result type."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from types import MappingProxyType
from typing import Any

from humantask_shared.core.messages.base import Command
from humantask_shared.core.messages.commands import (
    Authenticate,
    CancelTask,
    ClaimWork,
    CreateCustomer,
    CreateTask,
    CreateWorker,
    EnsureCustomer,
    GetCallbackSecret,
    GetTask,
    ListAccounts,
    ListTasks,
    ReleaseWork,
    RevokeAccount,
    RotateCallbackSecret,
    RotateCredential,
    SubmitWork,
)
from humantask_shared.core.messages.quotas import SetCustomerQuota
from humantask_shared.runtime.command_server import CommandHandler, UnboundHandler

from . import account_handlers, customer_handlers, quota_handlers, work_handlers
from .ports import Dependencies

HANDLERS: Mapping[type[Command[Any]], UnboundHandler] = MappingProxyType(
    {
        # The customer's, through the gateway, and the other services' questions.
        Authenticate: customer_handlers.authenticate,
        EnsureCustomer: customer_handlers.ensure_customer,
        GetCallbackSecret: customer_handlers.get_callback_secret,
        CreateTask: customer_handlers.create_task,
        GetTask: customer_handlers.get_task,
        ListTasks: customer_handlers.list_tasks,
        CancelTask: customer_handlers.cancel_task,
        # The worker's.
        ClaimWork: work_handlers.claim_work,
        SubmitWork: work_handlers.submit_work,
        ReleaseWork: work_handlers.release_work,
        # The operator's (`humantask-admin`).
        CreateCustomer: account_handlers.create_customer,
        CreateWorker: account_handlers.create_worker,
        ListAccounts: account_handlers.list_accounts,
        RevokeAccount: account_handlers.revoke_account,
        RotateCredential: account_handlers.rotate_credential,
        RotateCallbackSecret: account_handlers.rotate_callback_secret,
        SetCustomerQuota: quota_handlers.set_customer_quota,
    }
)


def bind_handlers(deps: Dependencies) -> dict[type[Command[Any]], CommandHandler]:
    """The handler table with its dependencies filled in, for the command server."""
    return {command: partial(handler, deps=deps) for command, handler in HANDLERS.items()}
