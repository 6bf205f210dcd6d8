"""The handlers of `/scale/v1`'s batch commands (docs/reference/contract.md §11), and of the
batches' progress: the events that may complete a batch (`taskstore.batch-progress`).

A batch completes once: `settle_batch` reads it, counts its tasks, and saves it
completed by a conditional write on the version it read, its `batch.completed` in its
outbox (the same write). A redelivered event, or two task-stores looking at once, find
it completed or lose the write; a crash after the write leaves the event to the
batches' outbox relay. Nothing here is lost to a crash before the write either: the
event that woke it is acked only after it.
"""

from __future__ import annotations

import logging

from humantask_shared.core.errors import Conflict, NotFound, Unavailable
from humantask_shared.core.messages.events import BatchFinalized, BatchTaskSettled
from humantask_shared.core.messages.scale_commands import (
    CreateBatch,
    FinalizeBatch,
    GetBatch,
    GetBatchStatus,
    ListBatches,
)
from humantask_shared.core.scale_models import Batch, BatchPage, BatchStatusView
from humantask_shared.core.timeutil import utcnow
from humantask_shared.runtime.logging import request_id_var
from humantask_shared.runtime.publishing import stamp_all

from . import batches
from .batches import BatchRecord
from .ports import BatchExists, Dependencies

log = logging.getLogger(__name__)

MAX_WRITE_ATTEMPTS = 5


async def create_batch(command: CreateBatch, deps: Dependencies) -> Batch:
    request = command.request
    if await deps.projects.get(command.customer_id, request.project) is None:
        raise NotFound(f"no project named {request.project!r}")
    batch = batches.new_batch(command.batch_id, command.customer_id, request, utcnow())
    try:
        await deps.batches.add(batch)
    except BatchExists as exists:
        if exists.existing.batch_id == batch.batch_id:  # a redelivered command
            return exists.existing.to_public()
        raise Conflict(f"a batch named {batch.name!r} already exists") from None
    return batch.to_public()


async def _batch(deps: Dependencies, customer_id: str, name: str) -> BatchRecord:
    batch = await deps.batches.get(customer_id, name)
    if batch is None:
        raise NotFound(f"no batch named {name!r}")
    return batch


async def get_batch(command: GetBatch, deps: Dependencies) -> Batch:
    return (await _batch(deps, command.customer_id, command.name)).to_public()


async def get_batch_status(command: GetBatchStatus, deps: Dependencies) -> BatchStatusView:
    batch = await _batch(deps, command.customer_id, command.name)
    counts = await deps.search.batch_counts(command.customer_id, batch.name)
    return batches.status_view(batch, counts)


async def list_batches(command: ListBatches, deps: Dependencies) -> BatchPage:
    query = command.query
    found, total = await deps.batches.list(command.customer_id, query)
    return BatchPage(
        docs=[batch.to_public() for batch in found],
        totalDocs=total,
        limit=query.limit,
        offset=query.offset,
        has_more=query.offset + len(found) < total,
    )


async def finalize_batch(command: FinalizeBatch, deps: Dependencies) -> Batch:
    request_id = request_id_var.get()
    for _ in range(MAX_WRITE_ATTEMPTS):
        batch = await _batch(deps, command.customer_id, command.name)
        now = utcnow()
        finalized, raised = batches.finalize(batch, now, request_id)
        if finalized == batch:
            return batch.to_public()
        events = stamp_all(raised, now)
        saved = await deps.batches.save(finalized, events, now)
        if saved is not None:
            deps.batch_outbox.publish_after_reply(saved.batch_id, events)
            return saved.to_public()
    raise Unavailable("the batch is changing too often, try again")


# -- the batches' progress (`taskstore.batch-progress`) ------------------------------------


async def on_task_settled(event: BatchTaskSettled, deps: Dependencies) -> None:
    await settle_batch(deps, event.customer_id, event.batch)


async def on_batch_finalized(event: BatchFinalized, deps: Dependencies) -> None:
    await settle_batch(deps, event.customer_id, event.batch.name)


async def settle_batch(deps: Dependencies, customer_id: str, name: str) -> None:
    """Complete the batch if it is finalized and none of its tasks is pending."""
    for _ in range(MAX_WRITE_ATTEMPTS):
        batch = await deps.batches.get(customer_id, name)
        if batch is None or batch.status != "in_progress":
            return
        if await deps.search.batch_has_pending(customer_id, name):
            return
        now = utcnow()
        counts = await deps.search.batch_counts(customer_id, name)
        completed, raised = batches.complete(batch, counts, now)
        if completed == batch:  # a task of it went back to pending meanwhile
            return
        events = stamp_all(raised, now)
        saved = await deps.batches.save(completed, events, now)
        if saved is not None:
            log.info("batch completed", extra={"batch_id": saved.batch_id})
            deps.batch_outbox.publish_after_reply(saved.batch_id, events)
            return
    raise Unavailable(f"batch {name!r} is changing too often, try again")
