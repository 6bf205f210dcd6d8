"""What every view needs from a request, and how every view answers with JSON."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from humantask_shared.core.errors import NotFound
from humantask_shared.core.models import TASK_ID_PATTERN

from .appkeys import authenticator_key


def json_response(value: Any) -> web.Response:
    return web.json_response(value, dumps=lambda obj: orjson.dumps(obj).decode())


async def customer_id(request: web.Request) -> str:
    principal = await request.app[authenticator_key].authenticate(request, "customer")
    return principal.principal_id


def task_id_from_path(request: web.Request) -> str:
    """The `{task_id}` of the path; one that cannot exist is an unknown task (404)."""
    task_id = request.match_info["task_id"]
    if not TASK_ID_PATTERN.match(task_id):
        raise NotFound(f"no task with task_id {task_id}")
    return task_id
