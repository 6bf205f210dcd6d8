"""`GET /v1/task/{task_id}/callbacks` (API.md §5): a task's callback log.

The task-store says whether the task is the caller's (else `404`, as for any task of
another customer); the notifier, which owns the delivery records, gives the attempts.
"""

from __future__ import annotations

from aiohttp import web

from humantask_shared.messages.commands import CallbackLog, GetTask, ListCallbacks
from humantask_shared.models import Task

from .appkeys import notifier_key, taskstore_key
from .requests import customer_id, json_response, task_id_from_path


async def list_callbacks(request: web.Request) -> web.Response:
    owner = await customer_id(request)
    task_id = task_id_from_path(request)
    taskstore, notifier = request.app[taskstore_key], request.app[notifier_key]
    await taskstore.send(GetTask(customer_id=owner, task_id=task_id), Task)  # or 404
    callback_log = await notifier.send(
        ListCallbacks(customer_id=owner, task_id=task_id), CallbackLog
    )
    return json_response([attempt.model_dump(mode="json") for attempt in callback_log.attempts])
