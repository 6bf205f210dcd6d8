"""The worker endpoints (API.md §6) and the workbench page that uses them (`GET /work`).

Workers authenticate with their token (role `worker`); a customer key is `401` here, as a
worker token is on the customer endpoints. The page itself needs no credentials: its
script sends the token the worker types in with every API call.
"""

from __future__ import annotations

from importlib import resources

from aiohttp import web
from aiohttp.typedefs import Handler

from humantask_shared.messages.commands import ClaimWork, ReleaseWork, SubmitWork
from humantask_shared.models import TASK_ID_PATTERN
from humantask_shared.worker_models import (
    ClaimResult,
    CompletedWork,
    SubmitWorkRequest,
    WorkReleased,
    no_live_lease,
)

from .appkeys import authenticator_key, taskstore_key
from .bodies import read_fields, validate
from .requests import json_response

# The page runs only its own script and style, and talks only to this gateway; task
# images may come from anywhere on the web.
WORKBENCH_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src http: https:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
# URL path -> (file in static/, content type)
WORKBENCH_FILES = {
    "/work": ("workbench.html", "text/html"),
    "/work/workbench.js": ("workbench.js", "text/javascript"),
    "/work/workbench.css": ("workbench.css", "text/css"),
}


async def _worker_id(request: web.Request) -> str:
    principal = await request.app[authenticator_key].authenticate(request, "worker")
    return principal.principal_id


def _held_task_id(request: web.Request) -> str:
    """The `{task_id}` of the path. One that cannot exist is a task the worker does not
    hold, answered like any other (409), so ids tell a worker nothing."""
    task_id = request.match_info["task_id"]
    if not TASK_ID_PATTERN.match(task_id):
        raise no_live_lease(task_id)
    return task_id


async def claim_work(request: web.Request) -> web.Response:
    worker_id = await _worker_id(request)
    result = await request.app[taskstore_key].send(ClaimWork(worker_id=worker_id), ClaimResult)
    if result.item is None:
        return web.Response(status=204)
    return json_response(result.item.model_dump(mode="json"))


async def submit_work(request: web.Request) -> web.Response:
    worker_id = await _worker_id(request)
    task_id = _held_task_id(request)
    body = validate(SubmitWorkRequest, await read_fields(request))
    command = SubmitWork(worker_id=worker_id, task_id=task_id, category=body.category)
    completed = await request.app[taskstore_key].send(command, CompletedWork)
    return json_response(completed.model_dump(mode="json"))


async def release_work(request: web.Request) -> web.Response:
    worker_id = await _worker_id(request)
    command = ReleaseWork(worker_id=worker_id, task_id=_held_task_id(request))
    await request.app[taskstore_key].send(command, WorkReleased)
    return web.Response(status=204)


def _static_handler(file_name: str, content_type: str) -> Handler:
    body = (resources.files(__package__) / "static" / file_name).read_bytes()

    async def serve(_request: web.Request) -> web.Response:
        return web.Response(
            body=body, content_type=content_type, charset="utf-8", headers=WORKBENCH_HEADERS
        )

    return serve


def add_worker_routes(app: web.Application) -> None:
    app.router.add_post("/v1/work/claim", claim_work)
    app.router.add_post("/v1/work/{task_id}/submit", submit_work)
    app.router.add_post("/v1/work/{task_id}/release", release_work)
    for path, (file_name, content_type) in WORKBENCH_FILES.items():
        app.router.add_get(path, _static_handler(file_name, content_type))
