"""`/scale/v1`'s task-store handlers (docs/reference/contract.md §11) against in-memory fakes
of the ports (tests/support/fakes.py): projects and their defaults, batches from staging
to completed, audits, tags, metadata, unique_id and the list. What MongoDB adds
(indexes, conditional writes under races) is in tests/integration/test_scale_repository.py."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from humantask_shared.core.errors import (
    Conflict,
    InvalidRequest,
    NotFound,
    QuotaExceeded,
    StorageQuotaExceeded,
)
from humantask_shared.core.messages.commands import ClaimWork, SubmitWork
from humantask_shared.core.messages.events import (
    BatchCompleted,
    BatchFinalized,
    BatchTaskSettled,
    TaskCompleted,
    TaskReopened,
)
from humantask_shared.core.messages.scale_commands import (
    AuditTask,
    CancelScaleTask,
    ChangeTaskTags,
    CreateBatch,
    CreateProject,
    CreateScaleTask,
    FinalizeBatch,
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
from humantask_shared.core.models import TaskListQuery
from humantask_shared.core.scale_models import (
    AuditRequest,
    BatchCounts,
    BatchListQuery,
    CreateBatchRequest,
    CreateProjectRequest,
    ScaleTask,
    ScaleTaskListQuery,
    SetProjectParamsRequest,
    TaskPlacement,
    split_scale_token,
)
from humantask_taskstore import batch_handlers, project_handlers, scale_handlers, work_handlers
from humantask_taskstore.cursors import CursorSigner
from humantask_taskstore.ports import Dependencies
from humantask_taskstore.repository.usage import QuotaLimits
from tests.support.fakes import (
    FakeAccounts,
    FakeBatches,
    FakePool,
    FakeProjects,
    FakeQuality,
    FakeTasks,
    FakeTaskSearch,
    RecordingAnnouncer,
    RecordingOutbox,
    RecordingPublisher,
)

SEED: dict[str, Any] = {
    "callback_url": "http://www.example.com/test_callback",
    "instruction": "Would you say this item is big or small?",
    "attachment_type": "text",
    "attachment": "car",
    "categories": ["big", "small"],
}
OWNER = "cust-a"


@dataclass
class World:
    tasks: FakeTasks = field(default_factory=FakeTasks)
    outbox: RecordingOutbox = field(default_factory=RecordingOutbox)
    projects: FakeProjects = field(default_factory=FakeProjects)
    batches: FakeBatches = field(default_factory=FakeBatches)
    batch_outbox: RecordingOutbox = field(default_factory=RecordingOutbox)
    pool: FakePool = field(default_factory=FakePool)
    quality: FakeQuality = field(default_factory=FakeQuality)

    @property
    def deps(self) -> Dependencies:
        self.tasks.pool = self.pool
        return Dependencies(
            pool=self.pool,
            quality=self.quality,
            publish=RecordingPublisher(),
            tasks=self.tasks,
            accounts=FakeAccounts(),
            outbox=self.outbox,
            announce=RecordingAnnouncer(),
            work_lease_seconds=600,
            search=FakeTaskSearch(self.tasks),
            projects=self.projects,
            batches=self.batches,
            batch_outbox=self.batch_outbox,
            list_tokens=CursorSigner(bytes(32)),
        )

    async def create(self, customer_id: str = OWNER, **fields: Any) -> ScaleTask:
        placement = TaskPlacement.model_validate(
            {name: fields.pop(name) for name in ("project", "batch", "tags") if name in fields}
        )
        command = CreateScaleTask(customer_id=customer_id, fields=fields, placement=placement)
        return await scale_handlers.create_scale_task(command, self.deps)

    async def get(self, task_id: str, customer_id: str = OWNER) -> ScaleTask:
        command = GetScaleTask(customer_id=customer_id, task_id=task_id)
        return await scale_handlers.get_scale_task(command, self.deps)

    async def project(self, name: str, params: dict[str, Any] | None = None) -> Any:
        request = CreateProjectRequest(type="categorization", name=name, params=params)
        return await project_handlers.create_project(
            CreateProject(customer_id=OWNER, request=request), self.deps
        )

    async def batch(self, project: str, name: str, callback: str = "") -> Any:
        request = CreateBatchRequest(project=project, name=name, callback=callback)
        return await batch_handlers.create_batch(
            CreateBatch(customer_id=OWNER, request=request), self.deps
        )

    async def finalize(self, name: str) -> Any:
        return await batch_handlers.finalize_batch(
            FinalizeBatch(customer_id=OWNER, name=name), self.deps
        )

    async def status(self, name: str) -> Any:
        return await batch_handlers.get_batch_status(
            GetBatchStatus(customer_id=OWNER, name=name), self.deps
        )

    async def complete(self, worker_id: str, category: str = "big") -> str | None:
        claimed = await work_handlers.claim_work(ClaimWork(worker_id=worker_id), self.deps)
        if claimed.item is None:
            return None
        command = SubmitWork(worker_id=worker_id, task_id=claimed.item.task_id, category=category)
        await work_handlers.submit_work(command, self.deps)
        return claimed.item.task_id

    async def settle(self) -> None:
        """Deliver what the task outbox published to the batch progress handlers, as
        `taskstore.batch-progress` would; then what the batches' outbox did."""
        for _, events in self.outbox.published:
            for stamped in events:
                if isinstance(stamped.event, BatchTaskSettled):
                    await batch_handlers.on_task_settled(stamped.event, self.deps)
        for _, events in list(self.batch_outbox.published):
            for stamped in events:
                if isinstance(stamped.event, BatchFinalized):
                    await batch_handlers.on_batch_finalized(stamped.event, self.deps)

    def batch_events(self) -> list[Any]:
        return [stamped.event for _, events in self.batch_outbox.published for stamped in events]

    async def audit(self, task_id: str, accepted: bool, comments: str | None = None) -> ScaleTask:
        command = AuditTask(
            customer_id=OWNER,
            task_id=task_id,
            audit=AuditRequest(accepted=accepted, comments=comments),
        )
        return await scale_handlers.audit_task(command, self.deps)

    async def listed(self, **query: Any) -> Any:
        command = ListScaleTasks(customer_id=OWNER, query=ScaleTaskListQuery.model_validate(query))
        return await scale_handlers.list_scale_tasks(command, self.deps)


@pytest.fixture
def world() -> World:
    return World()


# -- create --------------------------------------------------------------------------------


async def test_a_task_without_a_project_needs_every_parameter(world: World) -> None:
    task = await world.create(**SEED, tags=["a", "b", "a"])
    assert (task.project, task.batch, task.tags) == (None, None, ["a", "b"])
    assert task.updated_at == task.created_at
    with pytest.raises(InvalidRequest, match="instruction: is required"):
        await world.create(**{k: v for k, v in SEED.items() if k != "instruction"})


async def test_a_projects_params_fill_in_what_the_task_leaves_out(world: World) -> None:
    await world.project("p", {k: v for k, v in SEED.items() if k != "attachment"})
    task = await world.create(project="p", attachment="a cat", instruction="Mine")
    assert task.project == "p" and task.instruction == "Mine"
    assert task.params.categories == ["big", "small"] and task.params.attachment == "a cat"
    # A null leaves the parameter to the project too.
    nulled = await world.create(project="p", attachment="x", instruction=None)
    assert nulled.instruction == SEED["instruction"]
    with pytest.raises(InvalidRequest, match="attachment: is required"):
        await world.create(project="p")
    with pytest.raises(InvalidRequest, match="project: no project named 'q'"):
        await world.create(project="q", **SEED)


async def test_a_project_name_is_taken_once_per_customer_and_versions_its_params(
    world: World,
) -> None:
    created = await world.project("p", {"instruction": "one"})
    assert [v.version for v in created.param_history] == [0]
    with pytest.raises(Conflict, match="'p' already exists"):
        await world.project("p")
    other = CreateProject(
        customer_id="cust-b", request=CreateProjectRequest(type="categorization", name="p")
    )
    await project_handlers.create_project(other, world.deps)  # another customer's name space

    def set_params(**params: Any) -> SetProjectParams:
        request = SetProjectParamsRequest.model_validate(params)
        return SetProjectParams(customer_id=OWNER, name="p", request=request)

    replaced = await project_handlers.set_project_params(
        set_params(categories=["a", "b"]), world.deps
    )
    assert replaced.param_history[-1].model_dump(exclude={"created_at"}) == {
        "version": 1,
        "categories": ["a", "b"],
    }
    patched = await project_handlers.set_project_params(
        set_params(patch=True, instruction="two"), world.deps
    )
    last = patched.param_history[-1].model_dump(exclude={"created_at"})
    assert last == {"version": 2, "categories": ["a", "b"], "instruction": "two"}
    listed = await project_handlers.list_projects(ListProjects(customer_id=OWNER), world.deps)
    assert [p.name for p in listed.projects] == ["p"]
    with pytest.raises(NotFound):
        await project_handlers.get_project(GetProject(customer_id=OWNER, name="q"), world.deps)


async def test_the_same_unique_id_and_placement_is_the_same_task(world: World) -> None:
    await world.project("p", SEED)
    first = await world.create(project="p", unique_id="u", tags=["t"])
    assert (await world.create(project="p", unique_id="u", tags=["t"])).task_id == first.task_id
    with pytest.raises(Conflict, match=first.task_id):
        await world.create(project="p", unique_id="u", tags=["other"])


# -- batches -------------------------------------------------------------------------------


async def test_a_batch_takes_tasks_while_staging_and_completes_once_when_they_are_done(
    world: World,
) -> None:
    await world.project("p", SEED)
    with pytest.raises(NotFound, match="no project named 'q'"):
        await world.batch("q", "b")
    batch = await world.batch("p", "b", callback="https://example.com/batch")
    assert batch.status == "staging"
    with pytest.raises(Conflict, match="'b' already exists"):
        await world.batch("p", "b")
    tasks = [await world.create(batch="b") for _ in range(3)]
    assert {(t.project, t.batch) for t in tasks} == {("p", "b")}
    with pytest.raises(InvalidRequest, match="belongs to project 'p'"):
        await world.create(batch="b", project="other")

    finalized = await world.finalize("b")
    assert finalized.status == "in_progress" and finalized.finalized_at is not None
    with pytest.raises(Conflict, match="only while it is staging"):
        await world.create(batch="b")
    assert (await world.finalize("b")).status == "in_progress"  # a no-op
    await world.settle()
    assert world.batch_events() == [world.batch_events()[0]]  # finalized; nothing more yet

    await world.complete("w1")
    await scale_handlers.cancel_scale_task(
        CancelScaleTask(customer_id=OWNER, task_id=tasks[2].task_id), world.deps
    )
    await world.settle()
    assert (await world.status("b")).status == "in_progress"
    await world.complete("w1")
    await world.settle()
    await world.settle()  # the events again: redelivered
    status = await world.status("b")
    assert (status.status, status.pending, status.completed, status.canceled) == (
        "completed",
        0,
        2,
        1,
    )
    completions = [e for e in world.batch_events() if isinstance(e, BatchCompleted)]
    assert len(completions) == 1
    (completed,) = completions
    assert completed.counts == BatchCounts(completed=2, canceled=1)
    assert completed.batch.callback == "https://example.com/batch"


async def test_an_empty_batch_completes_when_it_is_finalized(world: World) -> None:
    await world.project("p")
    await world.batch("p", "empty")
    await world.finalize("empty")
    await world.settle()
    assert [type(e) for e in world.batch_events()] == [BatchFinalized, BatchCompleted]


async def test_batches_list_newest_first_with_their_total(world: World) -> None:
    await world.project("p")
    for n in range(3):
        await world.batch("p", f"b{n}")
    page = await batch_handlers.list_batches(
        ListBatches(customer_id=OWNER, query=BatchListQuery(limit=2)), world.deps
    )
    assert [b.name for b in page.docs] == ["b2", "b1"] or len(
        {b.created_at for b in page.docs}
    ) == 1
    assert (page.totalDocs, page.limit, page.offset, page.has_more) == (3, 2, 0, True)


# -- audits --------------------------------------------------------------------------------


async def test_an_accepted_audit_marks_the_task(world: World) -> None:
    task = await world.create(**SEED)
    with pytest.raises(Conflict, match="only a completed task can be audited"):
        await world.audit(task.task_id, True)
    await world.complete("w1")
    accepted = await world.audit(task.task_id, True, "fine")
    assert (accepted.status, accepted.customer_review_status) == ("completed", "accepted")
    assert [a.accepted for a in accepted.audits] == [True]


async def test_a_rejected_task_is_pending_for_other_workers_and_completes_again(
    world: World,
) -> None:
    task = await world.create(**SEED)
    assert await world.complete("w1", "big") == task.task_id
    rejected = await world.audit(task.task_id, False, "no")
    assert (rejected.status, rejected.customer_review_status) == ("pending", "rejected")
    assert rejected.response is None and rejected.completed_at is None
    assert isinstance(world.outbox.published[-1][1][0].event, TaskReopened)
    assert await world.complete("w1") is None  # the worker who answered it may not again
    assert await world.complete("w2", "small") == task.task_id
    completions = [
        stamped.event
        for _, events in world.outbox.published
        for stamped in events
        if isinstance(stamped.event, TaskCompleted)
    ]
    assert [(e.completion, e.task.response and e.task.response.category) for e in completions] == [
        (1, "big"),
        (2, "small"),
    ]
    again = await world.get(task.task_id)
    assert again.customer_review_status == "rejected"  # the last audit's, until the next
    assert (await world.audit(task.task_id, True)).customer_review_status == "accepted"


async def test_a_rejected_task_of_three_workers_takes_three_new_answers(world: World) -> None:
    """The several-worker model (docs/reference/contract.md §10, §11): every worker who answered
    is excluded, the old answers stop counting, the slots are free for `max_workers` new
    answers, and the next completion is completion 2 (a `task.completed` of its own)."""
    await world.project("three", {"min_workers": 3, "max_workers": 3})
    task = await world.create(**SEED, project="three")
    assert (task.min_workers, task.max_workers) == (3, 3)  # the project's defaults
    first = ["w1", "w2", "w3"]
    for worker in first:
        assert await world.complete(worker, "big") == task.task_id
    done = await world.get(task.task_id)
    assert done.status == "completed" and done.response is not None
    assert done.response.votes == {"big": 3}

    rejected = await world.audit(task.task_id, False, "it is small")
    assert (rejected.status, rejected.response) == ("pending", None)
    record = await world.tasks.get(task.task_id)
    assert record is not None and record.reopened == 1 and record.counted_answers == []
    assert [a.worker_id for a in record.answers] == first  # remembered, not counted
    assert record.answers_version == 4 and record.free_at is None  # three answers, reopened
    for worker in first:  # none of them is served it again
        assert await world.complete(worker) is None
    second = ["w4", "w5", "w6"]
    for worker in second:
        assert await world.complete(worker, "small") == task.task_id
    again = await world.get(task.task_id)
    assert again.status == "completed" and again.response is not None
    assert (again.response.category, again.response.votes) == ("small", {"small": 3})
    completions = [
        stamped.event
        for _, events in world.outbox.published
        for stamped in events
        if isinstance(stamped.event, TaskCompleted)
    ]
    assert [e.completion for e in completions] == [1, 2]
    assert await world.complete("w7") is None  # completed: no slot left for anyone


async def test_a_projects_quality_settings_are_checked_as_a_creates(world: World) -> None:
    for params, named in (
        ({"min_workers": 0}, "params.min_workers"),
        ({"max_workers": 11}, "params.max_workers"),
        ({"confidence": 0.3}, "params.confidence"),
        ({"confidence": "0.9"}, "params.confidence"),  # a JSON number, as on a create
        ({"min_workers": 3, "max_workers": 2}, "max_workers: must be at least min_workers (3)"),
    ):
        with pytest.raises(ValueError, match=re.escape(named)):
            await world.project("bad", params)
    project = await world.project("p", {"min_workers": 2, "confidence": 0.8})
    with pytest.raises(InvalidRequest, match=re.escape("max_workers: must be at least")):
        await project_handlers.set_project_params(
            SetProjectParams(
                customer_id=OWNER,
                name=project.name,
                request=SetProjectParamsRequest(max_workers=1, patch=True),
            ),
            world.deps,
        )
    task = await world.create(**SEED, project="p")
    assert (task.min_workers, task.max_workers, task.confidence) == (2, None, 0.8)
    own = await world.create(**SEED, project="p", min_workers=1)  # the task's own wins
    assert own.min_workers == 1


# -- edits ---------------------------------------------------------------------------------


async def test_tags_metadata_and_unique_id_change_and_move_updated_at(world: World) -> None:
    task = await world.create(**SEED, tags=["a"])

    async def tags(operation: str, *given: str) -> list[str]:
        command = ChangeTaskTags(
            customer_id=OWNER, task_id=task.task_id, operation=operation, tags=list(given)
        )
        return (await scale_handlers.change_task_tags(command, world.deps)).tags

    assert await tags("add", "b", "a") == ["a", "b"]
    assert await tags("delete", "a", "zz") == ["b"]
    assert await tags("set", "x", "y") == ["x", "y"]
    edited = await scale_handlers.set_task_metadata(
        SetTaskMetadata(customer_id=OWNER, task_id=task.task_id, metadata={"k": 1}), world.deps
    )
    assert edited.metadata == {"k": 1} and edited.updated_at >= task.updated_at

    other = await world.create(**SEED, unique_id="taken")
    named = await scale_handlers.set_task_unique_id(
        SetTaskUniqueId(customer_id=OWNER, task_id=task.task_id, unique_id="mine"), world.deps
    )
    assert named.unique_id == "mine"
    with pytest.raises(Conflict, match=f"'taken' already belongs to task {other.task_id}"):
        await scale_handlers.set_task_unique_id(
            SetTaskUniqueId(customer_id=OWNER, task_id=task.task_id, unique_id="taken"), world.deps
        )
    cleared = await scale_handlers.set_task_unique_id(
        SetTaskUniqueId(customer_id=OWNER, task_id=task.task_id), world.deps
    )
    assert cleared.unique_id is None
    with pytest.raises(NotFound):
        await scale_handlers.set_task_metadata(
            SetTaskMetadata(customer_id="cust-b", task_id=task.task_id, metadata={}), world.deps
        )


async def test_cancel_can_free_the_unique_id(world: World) -> None:
    task = await world.create(**SEED, unique_id="u")
    kept = await scale_handlers.cancel_scale_task(
        CancelScaleTask(customer_id=OWNER, task_id=task.task_id), world.deps
    )
    assert (kept.status, kept.unique_id) == ("canceled", "u")
    freed = await scale_handlers.cancel_scale_task(
        CancelScaleTask(customer_id=OWNER, task_id=task.task_id, clear_unique_id=True), world.deps
    )
    assert (freed.status, freed.unique_id) == ("canceled", None)
    assert (await world.create(**SEED, unique_id="u")).task_id != task.task_id


# -- the list ------------------------------------------------------------------------------


async def test_the_list_counts_on_its_first_page_and_carries_the_count(world: World) -> None:
    made = [await world.create(**SEED) for _ in range(5)]
    first = await world.listed(limit=2)
    assert (first.total, first.limit, first.offset, first.has_more) == (5, 2, 0, True)
    assert first.next_token is not None
    await world.create(**SEED)  # created meanwhile: newer than the cursor
    second = await world.listed(limit=2, next_token=first.next_token)
    assert (second.total, second.offset) == (5, 2)
    third = await world.listed(limit=2, next_token=second.next_token)
    assert (third.offset, third.has_more, third.next_token) == (4, False, None)
    walked = [t.task_id for page in (first, second, third) for t in page.docs]
    assert walked == [t.task_id for t in reversed(made)]


def _altered(token: str, total: int) -> str:
    """The token with another `total`, its signature kept."""
    page, signature = split_scale_token(token)
    return f"{page.model_copy(update={'total': total}).payload()}.{signature}"


async def test_a_next_token_is_signed_for_its_customer_and_filters(world: World) -> None:
    for _ in range(3):
        await world.create(**SEED)
    first = await world.listed(limit=1, status="pending")
    token = first.next_token
    assert token is not None and (await world.listed(limit=1, status="pending", next_token=token))
    page, _ = split_scale_token(token)
    v1_token = CursorSigner(bytes(32)).sign(page.cursor, OWNER, TaskListQuery(status="pending"))
    forged = f"{token.rpartition('.')[0]}.{'A' * 22}"
    for query in (
        {"status": "pending", "next_token": _altered(token, 1_000)},  # altered
        {"status": "pending", "next_token": forged},  # not signed here
        {"status": "completed", "next_token": token},  # another query's
    ):
        with pytest.raises(InvalidRequest) as refused:
            await world.listed(limit=1, **query)
        assert refused.value.message.startswith("next_token: ")
    with pytest.raises(ValueError, match="next_token"):  # `/v1`'s list's: not even shaped so
        await world.listed(limit=1, status="pending", next_token=v1_token)
    theirs = ListScaleTasks(
        customer_id="someone-else",
        query=ScaleTaskListQuery(limit=1, status="pending", next_token=token),
    )
    with pytest.raises(InvalidRequest, match=r"^next_token: "):  # another customer's
        await scale_handlers.list_scale_tasks(theirs, world.deps)


async def test_quotas_hold_for_scale_creates_in_projects_and_batches() -> None:
    """One create path (`store_new_task`): `/scale/v1`'s tasks, in a project or joining
    a batch, count against the customer's quotas exactly as `/v1`'s."""
    world = World(tasks=FakeTasks(quotas=QuotaLimits(pending_tasks=2, stored_bytes=0)))
    await world.project("p", {"categories": ["big", "small"]})
    await world.batch("p", "b")
    await world.create(**SEED)
    await world.create(**{**SEED, "batch": "b"})
    for placement in ({}, {"project": "p"}, {"batch": "b"}):
        with pytest.raises(QuotaExceeded, match=r"^quota: "):
            await world.create(**{**SEED, **placement})
    assert len(world.tasks.records) == 2

    small = World(tasks=FakeTasks(quotas=QuotaLimits(pending_tasks=0, stored_bytes=400)))
    await small.project("p")
    await small.batch("p", "b")
    await small.create(**SEED)
    with pytest.raises(StorageQuotaExceeded, match=r"^quota: "):
        await small.create(**{**SEED, "batch": "b"})


async def test_a_rejected_task_counts_as_pending_again() -> None:
    world = World()
    task = await world.create(**SEED)
    assert await world.complete("w1") == task.task_id
    assert (await world.tasks.quota(OWNER)).pending_tasks == 0
    await world.audit(task.task_id, accepted=False)
    assert (await world.tasks.quota(OWNER)).pending_tasks == 1
