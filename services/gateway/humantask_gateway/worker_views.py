"""The worker endpoints (docs/reference/contract.md §6) and the workbench page that uses them
(`GET /work`).

Workers authenticate with their token (role `worker`); a customer key is `401` here, as a
worker token is on the customer endpoints. The page itself needs no credentials: its
script sends the token the worker types in with every API call.

Each route is declared once, at the bottom (`WORKER_ENDPOINTS`).
"""

from __future__ import annotations

from importlib import resources

from aiohttp import web
from aiohttp.typedefs import Handler

from humantask_shared.core.messages.commands import ClaimWork, ReleaseWork, SubmitWork
from humantask_shared.core.models import TASK_ID_PATTERN
from humantask_shared.core.worker_models import (
    CompletedWork,
    SubmitWorkRequest,
    WorkItem,
    no_live_lease,
)
from humantask_shared.runtime.http_routes import WORKER_AUTH, Endpoint, Operation, ResponseDoc

from .appkeys import authenticator_key, boundary_key
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
    result = await request.app[boundary_key].taskstore.send(ClaimWork(worker_id=worker_id))
    if result.item is None:
        return web.Response(status=204)
    return json_response(result.item.model_dump(mode="json"))


async def submit_work(request: web.Request) -> web.Response:
    worker_id = await _worker_id(request)
    task_id = _held_task_id(request)
    body = validate(SubmitWorkRequest, await read_fields(request))
    command = SubmitWork(worker_id=worker_id, task_id=task_id, category=body.category)
    completed = await request.app[boundary_key].taskstore.send(command)
    # The worker's own answer: `{"category", "status_code"}`, whatever the task decided.
    return json_response(completed.model_dump(mode="json", exclude_none=True))


async def release_work(request: web.Request) -> web.Response:
    worker_id = await _worker_id(request)
    command = ReleaseWork(worker_id=worker_id, task_id=_held_task_id(request))
    await request.app[boundary_key].taskstore.send(command)
    return web.Response(status=204)


def _static_handler(file_name: str, content_type: str) -> Handler:
    body = (resources.files(__package__) / "static" / file_name).read_bytes()

    async def serve(_request: web.Request) -> web.Response:
        return web.Response(
            body=body, content_type=content_type, charset="utf-8", headers=WORKBENCH_HEADERS
        )

    return serve


WORKER_ENDPOINTS = (
    Endpoint(
        "POST",
        "/v1/work/claim",
        claim_work,
        Operation(
            "claimWork",
            "Lease a pending task",
            "work",
            (
                ResponseDoc(
                    200, "The task, leased to the caller until `lease_expires_at`.", model=WorkItem
                ),
                ResponseDoc(204, "Nothing to do: no pending task is free."),
            ),
            errors=(401, 429, 503),
            security=WORKER_AUTH,
            description="Leases a pending task the caller may answer for "
            "`WORK_LEASE_SECONDS`: customers are served in proportion to their weights, each "
            "customer's oldest task first; a task takes as many leases as it has free slots "
            "(one, unless its customer asked for several workers), and a worker never gets "
            "a task it answered. A worker that holds a live lease gets that task again (a "
            "reload leaks no lease); an expired lease returns its slot to the pool. The "
            "body, if any, is ignored.",
        ),
    ),
    Endpoint(
        "POST",
        "/v1/work/{task_id}/submit",
        submit_work,
        Operation(
            "submitWork",
            "Complete a leased task with a category",
            "work",
            (
                ResponseDoc(
                    200,
                    "The caller's work on the task, `completed`, with its own answer.",
                    model=CompletedWork,
                ),
            ),
            errors=(400, 401, 404, 409, 413, 415, 429, 503),
            security=WORKER_AUTH,
            body_model=SubmitWorkRequest,
            form_body=True,
            description="The caller must hold the live lease on the task: otherwise `409` "
            "(never claimed, expired, released, canceled or already completed). A category "
            "the task does not offer is a `400`. A task answered by one worker is completed "
            "with that answer; one that several workers answer completes once its answers "
            "agree enough (docs/reference/contract.md §10). Either way the caller sees its own "
            "answer, and nothing of other workers' answers.",
        ),
    ),
    Endpoint(
        "POST",
        "/v1/work/{task_id}/release",
        release_work,
        Operation(
            "releaseWork",
            "Give a lease back",
            "work",
            (ResponseDoc(204, "Released: the task is back in the pool at once."),),
            errors=(401, 404, 409, 429, 503),
            security=WORKER_AUTH,
            description="The caller must hold the live lease on the task, otherwise `409`.",
        ),
    ),
    # The workbench is a page for people, not an API operation: outside the OpenAPI
    # document (docs/reference/contract.md §6 describes it), like the script and style it is
    # made of.
    Endpoint("GET", "/work", _static_handler("workbench.html", "text/html"), None),
    Endpoint("GET", "/work/workbench.js", _static_handler("workbench.js", "text/javascript"), None),
    Endpoint("GET", "/work/workbench.css", _static_handler("workbench.css", "text/css"), None),
)
