"""Redelivering a task's callback (docs/reference/contract.md §5 and §7): `POST
/v1/task/{task_id}/callbacks/redeliver`.

The task-store says whether the task is the caller's (else `404`) and completed (else
`409`: a pending, canceled or gold task has no callback to send again); the notifier,
which owns the delivery records, starts one new delivery, with its own one retry, once
the task's latest delivery has finished (else `409`). The answer, `202`, means the
redelivery is durable and on its way; its attempts appear in the task's callback log
with their `delivery` number.

Redeliveries are rate-limited per customer (CALLBACK_REDELIVERIES_PER_MINUTE) and per
task (one per CALLBACK_REDELIVERY_INTERVAL_SECONDS), before any service is asked: a
`429` with `Retry-After`. Like the gateway's other limits they are counted in each
gateway process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiohttp import web

from humantask_shared.core.errors import Conflict
from humantask_shared.core.messages.commands import (
    CallbackRedelivery,
    GetTask,
    RedeliverCallback,
)
from humantask_shared.runtime.http_routes import CUSTOMER_AUTH, Endpoint, Operation, ResponseDoc

from .appkeys import boundary_key
from .limits import REJECTED, Clock, TokenBuckets, too_many_requests
from .requests import customer_id, json_response, task_id_from_path
from .settings import GatewaySettings


@dataclass(frozen=True)
class RedeliveryLimits:
    """Per customer and per (customer, task) token buckets; None: that limit is off."""

    per_customer: TokenBuckets[str] | None
    per_task: TokenBuckets[tuple[str, str]] | None

    @classmethod
    def from_settings(
        cls, settings: GatewaySettings, clock: Clock = time.monotonic
    ) -> RedeliveryLimits:
        per_minute = settings.callback_redeliveries_per_minute
        interval = settings.callback_redelivery_interval_seconds
        return cls(
            TokenBuckets(per_minute / 60, per_minute, clock) if per_minute > 0 else None,
            TokenBuckets(1 / interval, 1, clock) if interval > 0 else None,
        )

    def wait(self, owner: str, task_id: str) -> tuple[float, str] | None:
        """None, and a token of each taken; or how long to wait and why (nothing taken)."""
        if self.per_task is not None and (wait := self.per_task.wait((owner, task_id))) > 0:
            return wait, f"the callback of task {task_id} was redelivered moments ago"
        if self.per_customer is not None and (wait := self.per_customer.take(owner)) > 0:
            return wait, "too many callback redeliveries"
        if self.per_task is not None:
            self.per_task.take((owner, task_id))
        return None


redelivery_limits_key = web.AppKey("redelivery_limits", RedeliveryLimits)


async def redeliver_callback(request: web.Request) -> web.Response:
    owner = await customer_id(request)
    task_id = task_id_from_path(request)
    boundary = request.app[boundary_key]
    task = await boundary.taskstore.send(GetTask(customer_id=owner, task_id=task_id))  # or 404
    if task.status != "completed":
        raise Conflict(
            f"task {task_id} is {task.status}: only a completed task's callback can be redelivered"
        )
    limited = request.app[redelivery_limits_key].wait(owner, task_id)
    if limited is not None:
        wait, why = limited
        REJECTED.labels("redelivery_rate").inc()
        return too_many_requests(wait, f"{why}: try again later")
    redelivery = await boundary.notifier.send(RedeliverCallback(customer_id=owner, task_id=task_id))
    response = json_response(redelivery.model_dump(mode="json"))
    response.set_status(202)
    return response


CALLBACK_ENDPOINTS = (
    Endpoint(
        "POST",
        "/v1/task/{task_id}/callbacks/redeliver",
        redeliver_callback,
        Operation(
            "redeliverTaskCallback",
            "Deliver the task's callback again",
            "tasks",
            (
                ResponseDoc(
                    202,
                    "The redelivery is durable and on its way: `delivery` is its number, "
                    "as its attempts show it in the callback log.",
                    model=CallbackRedelivery,
                ),
            ),
            errors=(401, 404, 409, 429, 503),
            security=CUSTOMER_AUTH,
            description="One new delivery of the completed task's callback, numbered after "
            "its latest, with its own one retry (at most two more attempts): the latest "
            "delivery's message (after an audit, the latest completion's), the same body and "
            "`webhook-id`, signed anew. A task of another customer is a `404`; a task that is "
            "not completed (pending, canceled, gold), or whose latest delivery is still under "
            "way, a `409`. Rate-limited per customer and per task (`429` with `Retry-After`).",
        ),
    ),
)
