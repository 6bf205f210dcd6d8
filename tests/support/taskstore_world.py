"""The task-store's handlers over in-memory fakes of its ports (tests/support/fakes.py),
as the unit tests drive them: a `World` of fakes, and a call per command."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from humantask_shared.core.messages.commands import (
    CancelTask,
    ClaimWork,
    CreateTask,
    GetTask,
    ListTasks,
    ListWorkerQuality,
    ReleaseWork,
    SubmitWork,
)
from humantask_shared.core.models import CreateTaskRequest, Task, TaskListQuery
from humantask_taskstore import customer_handlers, quality_handlers, work_handlers
from humantask_taskstore.cursors import CursorSigner
from humantask_taskstore.handler_table import QUALITY_HANDLERS
from humantask_taskstore.ports import Dependencies, QualitySettings
from tests.support.fakes import (
    FakeAccounts,
    FakePool,
    FakeQuality,
    FakeTasks,
    RecordingAnnouncer,
    RecordingOutbox,
    RecordingPublisher,
    scale_ports,
)

SEED: dict[str, Any] = {
    "callback_url": "http://www.example.com/test_callback",
    "instruction": "Would you say this item is big or small?",
    "attachment_type": "text",
    "attachment": "car",
    "categories": ["big", "small"],
}
LEASE_SECONDS = 600.0


def request(**overrides: Any) -> CreateTaskRequest:
    return CreateTaskRequest.model_validate({**SEED, **overrides})


@dataclass
class World:
    pool: FakePool = field(default_factory=FakePool)
    tasks: FakeTasks = field(default_factory=FakeTasks)
    outbox: RecordingOutbox = field(default_factory=RecordingOutbox)
    quality: FakeQuality = field(default_factory=FakeQuality)
    publisher: RecordingPublisher = field(default_factory=RecordingPublisher)
    accounts: FakeAccounts = field(default_factory=FakeAccounts)
    settings: QualitySettings = field(default_factory=QualitySettings)
    # What `deps.draw` returns (GOLD_RATE's draw): never gold unless a test says so.
    draws: list[float] = field(default_factory=list)
    lease_seconds: float = LEASE_SECONDS
    # How far `hear` has got in the outbox and among the published events.
    _heard: list[int] = field(default_factory=lambda: [0, 0])

    def __post_init__(self) -> None:
        self.tasks.pool = self.pool

    @property
    def deps(self) -> Dependencies:
        return Dependencies(
            tasks=self.tasks,
            accounts=self.accounts,
            outbox=self.outbox,
            announce=RecordingAnnouncer(),
            work_lease_seconds=self.lease_seconds,
            list_tokens=CursorSigner(bytes(32)),
            **scale_ports(self.tasks),
            pool=self.pool,
            quality=self.quality,
            publish=self.publisher,
            quality_settings=self.settings,
            draw=self._draw,
        )

    def _draw(self) -> float:
        return self.draws.pop(0) if self.draws else 0.999

    async def create(self, customer_id: str = "cust-a", **overrides: Any) -> Task:
        command = CreateTask(customer_id=customer_id, request=request(**overrides))
        return await customer_handlers.create_task(command, self.deps)

    async def cancel(self, task_id: str, customer_id: str = "cust-a") -> Task:
        return await customer_handlers.cancel_task(
            CancelTask(customer_id=customer_id, task_id=task_id), self.deps
        )

    async def get(self, task_id: str, customer_id: str = "cust-a") -> Task:
        return await customer_handlers.get_task(
            GetTask(customer_id=customer_id, task_id=task_id), self.deps
        )

    async def listed(self, customer_id: str = "cust-a", **query: Any) -> list[str]:
        page = await customer_handlers.list_tasks(
            ListTasks(customer_id=customer_id, query=TaskListQuery.model_validate(query)),
            self.deps,
        )
        return [task.task_id for task in page.tasks]

    async def claim(self, worker_id: str) -> str | None:
        claimed = await work_handlers.claim_work(ClaimWork(worker_id=worker_id), self.deps)
        return None if claimed.item is None else claimed.item.task_id

    async def submit(self, worker_id: str, task_id: str, category: str = "small") -> Any:
        command = SubmitWork(worker_id=worker_id, task_id=task_id, category=category)
        return await work_handlers.submit_work(command, self.deps)

    async def release(self, worker_id: str, task_id: str) -> Any:
        command = ReleaseWork(worker_id=worker_id, task_id=task_id)
        return await work_handlers.release_work(command, self.deps)

    async def hear(self) -> None:
        """Deliver what the quality queue carries, as it would (each event once, in the
        order written or published), until nothing new is left."""
        while True:
            written = [stamped.event for _, events in self.outbox.published for stamped in events]
            new = written[self._heard[0] :] + self.publisher.published[self._heard[1] :]
            self._heard = [len(written), len(self.publisher.published)]
            heard = [event for event in new if type(event) in QUALITY_HANDLERS]
            if not heard:
                return
            for event in heard:
                await QUALITY_HANDLERS[type(event)](event, self.deps)

    async def answer(self, worker_id: str, category: str = "small") -> str | None:
        """Claim, and answer what it got; the task's id (None: nothing to do)."""
        task_id = await self.claim(worker_id)
        if task_id is not None:
            await self.submit(worker_id, task_id, category)
        return task_id

    async def workers_view(self, customer_id: str = "cust-a") -> list[Any]:
        listed = await quality_handlers.list_worker_quality(
            ListWorkerQuality(customer_id=customer_id), self.deps
        )
        return listed.workers
