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
    BatchFinalized,
    BatchTaskSettled,
    TaskAnswered,
    TaskCanceled,
    TaskCompleted,
    WorkerBlocked,
)
from humantask_shared.core.messages.quotas import SetCustomerQuota
from humantask_shared.core.messages.scale_commands import (
    AuditTask,
    CancelScaleTask,
    ChangeTaskTags,
    CreateBatch,
    CreateProject,
    CreateScaleTask,
    FinalizeBatch,
    GetBatch,
    GetBatchStatus,
    GetProject,
    GetScaleTask,
    ListBatches,
    ListProjects,
    ListScaleTasks,
    SetProjectParams,
    SetTaskMetadata,
    SetTaskUniqueId,
)
from humantask_shared.runtime.command_server import CommandHandler, UnboundHandler
from humantask_shared.runtime.event_dispatcher import MessageHandler

from . import (
    account_handlers,
    batch_handlers,
    customer_handlers,
    project_handlers,
    quality_handlers,
    quota_handlers,
    scale_handlers,
    work_handlers,
)
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
        # `/scale/v1`'s (docs/reference/contract.md §11), through the gateway.
        CreateScaleTask: scale_handlers.create_scale_task,
        GetScaleTask: scale_handlers.get_scale_task,
        ListScaleTasks: scale_handlers.list_scale_tasks,
        CancelScaleTask: scale_handlers.cancel_scale_task,
        SetTaskMetadata: scale_handlers.set_task_metadata,
        ChangeTaskTags: scale_handlers.change_task_tags,
        SetTaskUniqueId: scale_handlers.set_task_unique_id,
        AuditTask: scale_handlers.audit_task,
        CreateProject: project_handlers.create_project,
        ListProjects: project_handlers.list_projects,
        GetProject: project_handlers.get_project,
        SetProjectParams: project_handlers.set_project_params,
        CreateBatch: batch_handlers.create_batch,
        FinalizeBatch: batch_handlers.finalize_batch,
        GetBatch: batch_handlers.get_batch,
        GetBatchStatus: batch_handlers.get_batch_status,
        ListBatches: batch_handlers.list_batches,
    }
)

# `taskstore.batch-progress` (`topology.TASKSTORE_BATCH_PROGRESS_QUEUE`): what may
# complete a batch, served by an `EventDispatcher`.
BATCH_PROGRESS_HANDLERS: Mapping[type[Message], Any] = MappingProxyType(
    {
        BatchTaskSettled: batch_handlers.on_task_settled,
        BatchFinalized: batch_handlers.on_batch_finalized,
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


def bind_batch_progress_handlers(deps: Dependencies) -> dict[type[Message], MessageHandler]:
    return {
        event: partial(handler, deps=deps) for event, handler in BATCH_PROGRESS_HANDLERS.items()
    }


def bind_quality_handlers(deps: Dependencies) -> dict[type[Message], MessageHandler]:
    """The quality queue's table with its dependencies filled in, for its dispatcher."""
    return {event: partial(handler, deps=deps) for event, handler in QUALITY_HANDLERS.items()}
