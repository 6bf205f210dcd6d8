"""The handlers of the customer's commands (through the gateway) and of the other
services' questions: each takes a command and the dependencies (`ports.Dependencies`)
and returns the command's result. The worker's are in `work_handlers`, the operator's in
`account_handlers`; `handler_table` is the one table of them all.

They translate between messages and the domain; the rules live in `domain`, the storage
behind `ports.Tasks` and `ports.Accounts`, publishing behind `ports.Outbox`.
"""

from __future__ import annotations

import hmac
from datetime import datetime

from humantask_shared.core.credentials import new_callback_secret
from humantask_shared.core.errors import Conflict, NotFound, Unauthorized, Unavailable
from humantask_shared.core.messages.commands import (
    Authenticate,
    CallbackSecret,
    CancelTask,
    CreateTask,
    EnsureCustomer,
    GetCallbackSecret,
    GetTask,
    ListTasks,
    Principal,
)
from humantask_shared.core.messages.events import TaskEvent
from humantask_shared.core.models import Task, TaskPage
from humantask_shared.core.timeutil import utcnow
from humantask_shared.runtime.logging import request_id_var
from humantask_shared.runtime.publishing import stamp_all

from . import domain
from .changes import change_task
from .ports import Dependencies, TaskExists


async def authenticate(command: Authenticate, deps: Dependencies) -> Principal:
    principal = await deps.accounts.authenticate(command.credential_hash, command.role)
    if principal is None:
        raise Unauthorized("invalid credentials")
    return principal


async def ensure_customer(command: EnsureCustomer, deps: Dependencies) -> Principal:
    """The demo customer, for the gateway. The gateway's broker user may send this, so
    it makes a customer only for the demo key the task-store itself was given: with the
    demo off here, or for another key, a gateway's credentials cannot mint API keys."""
    demo = deps.demo_customer_key_hash
    if demo is None:
        raise Unauthorized(
            "customer.ensure is refused: HUMANTASK_DEMO_API_KEY is not set in the task-store "
            "(set it there too, to the gateway's, for a demo customer)"
        )
    if not hmac.compare_digest(command.credential_hash, demo):
        raise Unauthorized(
            "customer.ensure is refused: the key is not the task-store's HUMANTASK_DEMO_API_KEY"
        )
    principal = await deps.accounts.ensure_customer(
        command.customer_name, command.credential_hash, new_callback_secret(), utcnow()
    )
    if principal is None:
        raise Conflict("this key was revoked: set HUMANTASK_DEMO_API_KEY to another, or unset it")
    return principal


async def get_callback_secret(command: GetCallbackSecret, deps: Dependencies) -> CallbackSecret:
    """For the notifier, which signs callbacks with it; no HTTP endpoint exposes it."""
    secrets = await deps.accounts.signing_secrets(command.customer_id)
    if secrets is None:
        raise NotFound(f"no customer with customer_id {command.customer_id}")
    until = secrets.previous_until
    if secrets.previous_secret is None or until is None or until <= utcnow():
        return CallbackSecret(callback_secret=secrets.callback_secret)  # no overlap now
    return secrets


async def create_task(command: CreateTask, deps: Dependencies) -> Task:
    request, now = command.request, utcnow()
    record, raised = domain.create_task(
        command.task_id, command.customer_id, request, now, request_id_var.get()
    )
    return (await store_new_task(deps, record, raised, now)).to_public()


async def store_new_task(
    deps: Dependencies, record: domain.TaskRecord, raised: list[TaskEvent], now: datetime
) -> domain.TaskRecord:
    """The new task as stored, its events on their way; or the task its create already
    made (the same id or the same `unique_id` and parameters), or a conflict."""
    events = stamp_all(raised, now)
    try:
        await deps.tasks.add(record, events, now)
    except TaskExists as exists:
        # The same task id: a redelivered command whose reply was lost. The same
        # unique_id: the customer's retry, or a conflict if the parameters differ.
        earlier = exists.existing
        if earlier.customer_id != record.customer_id:  # the gateway's new id was taken
            raise Unavailable("the task could not be stored, try again") from None
        if earlier.task_id != record.task_id and earlier.fingerprint != record.fingerprint:
            raise Conflict(
                f"unique_id {record.unique_id!r} already belongs to task {earlier.task_id}, "
                "created with different parameters"
            ) from None
        return earlier
    deps.outbox.publish_after_reply(record.task_id, events)
    return record


async def get_task(command: GetTask, deps: Dependencies) -> Task:
    record = await deps.tasks.get(command.task_id, command.customer_id)
    if record is None:
        raise NotFound(f"no task with task_id {command.task_id}")
    return record.to_public()


async def list_tasks(command: ListTasks, deps: Dependencies) -> TaskPage:
    """A page; its `next_token` is signed, and only a token signed for this customer and
    these filters is taken back (the cursor's span decides what the next page costs)."""
    owner, query, tokens = command.customer_id, command.query, deps.list_tokens
    after = None if query.next_token is None else tokens.verify(query.next_token, owner, query)
    records, next_page = await deps.tasks.list(owner, query, utcnow(), after)
    next_token = None if next_page is None else tokens.sign(next_page, owner, query)
    return TaskPage(tasks=[record.to_public() for record in records], next_token=next_token)


async def cancel_task(command: CancelTask, deps: Dependencies) -> Task:
    request_id = request_id_var.get()
    saved, events = await change_task(
        deps.tasks,
        command.task_id,
        lambda record, now: domain.cancel_task(record, now, request_id),
        customer_id=command.customer_id,
    )
    if events:  # canceling a canceled task changes nothing and raises nothing
        deps.outbox.publish_after_reply(saved.task_id, events)
    return saved.to_public()
