"""The task-store's handler tables: each command its queue carries
(`topology.TASKSTORE_COMMANDS_QUEUE`, the one list of them) and the handler that answers
it; each event its quality queue carries (`topology.TASKSTORE_QUALITY_QUEUE`) and the
handler that hears it. The command server and the dispatcher refuse to start unless
their table serves exactly what their queue carries, and `tests/unit/test_topology.py`
checks that each handler takes its message and a command's returns the command's result
type."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from types import MappingProxyType
from typing import Any

from humantask_shared.core.messages.base import Command, Message
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
    ListWorkerQuality,
    ReleaseWork,
    RevokeAccount,
    RotateCallbackSecret,
    RotateCredential,
    SetCustomerWeight,
    SubmitWork,
)
from humantask_shared.core.messages.events import (
    TaskAnswered,
    TaskCanceled,
    TaskCompleted,
    WorkerBlocked,
)
from humantask_shared.core.messages.quotas import SetCustomerQuota
from humantask_shared.runtime.command_server import CommandHandler, UnboundHandler
from humantask_shared.runtime.event_dispatcher import MessageHandler

from . import account_handlers, customer_handlers, quality_handlers, quota_handlers, work_handlers
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
        ListWorkerQuality: quality_handlers.list_worker_quality,
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
        SetCustomerWeight: account_handlers.set_customer_weight,
        SetCustomerQuota: quota_handlers.set_customer_quota,
    }
)

# `taskstore.quality` (`topology.TASKSTORE_QUALITY_QUEUE`), served by an `EventDispatcher`.
QUALITY_HANDLERS: Mapping[type[Message], Any] = MappingProxyType(
    {
        TaskAnswered: quality_handlers.on_task_answered,
        TaskCompleted: quality_handlers.on_task_completed,
        TaskCanceled: quality_handlers.on_task_canceled,
        WorkerBlocked: quality_handlers.on_worker_blocked,
    }
)


def bind_handlers(deps: Dependencies) -> dict[type[Command[Any]], CommandHandler]:
    """The handler table with its dependencies filled in, for the command server."""
    return {command: partial(handler, deps=deps) for command, handler in HANDLERS.items()}


def bind_quality_handlers(deps: Dependencies) -> dict[type[Message], MessageHandler]:
    """The quality queue's table with its dependencies filled in, for its dispatcher."""
    return {event: partial(handler, deps=deps) for event, handler in QUALITY_HANDLERS.items()}
