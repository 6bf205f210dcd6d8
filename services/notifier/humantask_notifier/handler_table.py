"""The notifier's handler tables: for each queue it consumes, each message the queue
carries (`topology`, the one list of them) and the handler that serves it. A queue's
dispatcher or command server refuses to start unless its table serves exactly those
messages, and `tests/unit/test_topology.py` checks that each handler takes its message
(and that a command's returns the command's result type)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from types import MappingProxyType
from typing import Any

from humantask_shared.core.messages.base import Command, Message
from humantask_shared.core.messages.commands import (
    ListCallbacks,
    ListFailedCallbacks,
    RedeliverCallback,
)
from humantask_shared.core.messages.events import BatchCompleted, TaskCompleted
from humantask_shared.core.messages.retries import RedeliveryDue, RetryDue
from humantask_shared.core.topology import (
    CALLBACK_RETRY_QUEUE,
    NOTIFIER_BATCH_COMPLETIONS_QUEUE,
    NOTIFIER_COMPLETIONS_QUEUE,
    Queue,
)
from humantask_shared.runtime.command_server import CommandHandler, UnboundHandler
from humantask_shared.runtime.event_dispatcher import MessageHandler

from .handlers import (
    handle_batch_completed,
    handle_redelivery_due,
    handle_retry_due,
    handle_task_completed,
    list_callbacks,
    list_failed_callbacks,
    redeliver_callback,
)
from .ports import Dependencies

# The queues of events and retries, each served by an `EventDispatcher`.
MESSAGE_HANDLERS: Mapping[Queue, Mapping[type[Message], Any]] = MappingProxyType(
    {
        NOTIFIER_COMPLETIONS_QUEUE: MappingProxyType({TaskCompleted: handle_task_completed}),
        NOTIFIER_BATCH_COMPLETIONS_QUEUE: MappingProxyType(
            {BatchCompleted: handle_batch_completed}
        ),
        CALLBACK_RETRY_QUEUE: MappingProxyType(
            {RetryDue: handle_retry_due, RedeliveryDue: handle_redelivery_due}
        ),
    }
)
# `notifier.commands`, served by a `CommandServer`.
COMMAND_HANDLERS: Mapping[type[Command[Any]], UnboundHandler] = MappingProxyType(
    {
        ListCallbacks: list_callbacks,
        RedeliverCallback: redeliver_callback,
        ListFailedCallbacks: list_failed_callbacks,
    }
)


def bind_message_handlers(queue: Queue, deps: Dependencies) -> dict[type[Message], MessageHandler]:
    """`queue`'s table with the dependencies filled in, for its dispatcher."""
    table = MESSAGE_HANDLERS[queue]
    return {message: partial(handler, deps=deps) for message, handler in table.items()}


def bind_command_handlers(deps: Dependencies) -> dict[type[Command[Any]], CommandHandler]:
    return {command: partial(handler, deps=deps) for command, handler in COMMAND_HANDLERS.items()}
