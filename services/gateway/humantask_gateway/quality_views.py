"""The customer's view of its workers (docs/reference/contract.md §10): `GET /v1/quality/workers`.

Each worker under a pseudonym of this customer's (the task-store makes it): never a
worker's id, and two customers' pseudonyms for one worker differ.
"""

from __future__ import annotations

from aiohttp import web

from humantask_shared.core.messages.commands import ListWorkerQuality, WorkerQuality
from humantask_shared.runtime.http_routes import CUSTOMER_AUTH, Endpoint, Operation, ResponseDoc

from .appkeys import boundary_key
from .requests import customer_id, json_response


async def list_workers(request: web.Request) -> web.Response:
    owner = await customer_id(request)
    listed = await request.app[boundary_key].taskstore.send(ListWorkerQuality(customer_id=owner))
    return json_response([worker.model_dump(mode="json") for worker in listed.workers])


QUALITY_ENDPOINTS = (
    Endpoint(
        "GET",
        "/v1/quality/workers",
        list_workers,
        Operation(
            "listWorkerQuality",
            "The workers who answered the caller's tasks, and how they did",
            "quality",
            (
                ResponseDoc(
                    200,
                    "One object per worker who answered any of the caller's tasks, by pseudonym.",
                    model=WorkerQuality,
                    many=True,
                ),
            ),
            errors=(401, 429, 503),
            security=CUSTOMER_AUTH,
            description="`worker` is a pseudonym, stable for the caller and different for "
            "every other customer; never a worker's id. `accuracy` is the estimate from the "
            "worker's scored gold answers (a Beta(3, 1) prior: 0.75 before any); `blocked`: "
            "it gets none of the caller's tasks any more, and its answers on open tasks "
            "stopped counting.",
        ),
    ),
)
