"""The gateway's boundary in memory: a task-store and a notifier that answer the gateway's
commands without RabbitMQ or MongoDB, for in-process HTTP tests
(`humantask_gateway.app.create_app(settings, FakeBoundary())`).

The task-store knows a few credentials and keeps tasks in a dict, with the rules the
gateway's answers depend on (a task is its owner's; a worker acts only on the task it
holds). It records every command, so a test can say that bad input never reached it,
and `fail_with` makes every command but `Authenticate` raise that error. `/scale/v1`'s
commands it answers with the task-store's own handlers over the in-memory ports of
tests/support/fakes.py (`scale_store`), each command and result through JSON as over
RabbitMQ.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar, cast

from pydantic import BaseModel

from humantask_shared.core.credentials import credential_hash
from humantask_shared.core.errors import (
    Conflict,
    HumantaskError,
    InvalidRequest,
    NotFound,
    Unauthorized,
)
from humantask_shared.core.messages.base import Command
from humantask_shared.core.messages.commands import (
    Authenticate,
    CallbackLog,
    CallbackRedelivery,
    CancelTask,
    ClaimWork,
    CreateTask,
    GetTask,
    ListCallbacks,
    ListTasks,
    ListWorkerQuality,
    Principal,
    RedeliverCallback,
    ReleaseWork,
    Role,
    SubmitWork,
    WorkerQuality,
    WorkerQualityList,
)
from humantask_shared.core.messages.scale_commands import SCALE_COMMANDS
from humantask_shared.core.models import (
    NEXT_TOKEN_SIGNATURE_LENGTH,
    ListCursor,
    Task,
    TaskPage,
    TaskParams,
    TaskResponse,
)
from humantask_shared.core.timeutil import utcnow
from humantask_shared.core.worker_models import (
    ClaimResult,
    CompletedWork,
    WorkItem,
    WorkReleased,
    no_live_lease,
)
from humantask_taskstore.cursors import CursorSigner
from humantask_taskstore.handler_table import HANDLERS
from humantask_taskstore.ports import Dependencies

from .fakes import (
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

ResultT = TypeVar("ResultT", bound=BaseModel)

CUSTOMER_KEY = "live_good_key"
OTHER_CUSTOMER_KEY = "live_other_key"
WORKER_TOKEN = "worker_good_token"
CREDENTIALS: dict[tuple[str, Role], str] = {
    (CUSTOMER_KEY, "customer"): "c1",
    (OTHER_CUSTOMER_KEY, "customer"): "c2",
    (WORKER_TOKEN, "worker"): "w1",
}


class FakeService:
    """Records the commands it is sent; `fail_with` is raised for every one but
    `Authenticate`."""

    def __init__(self) -> None:
        self.asked: list[Command[Any]] = []
        self.fail_with: HumantaskError | None = None

    def count(self, kind: type[Command[Any]]) -> int:
        return sum(isinstance(command, kind) for command in self.asked)

    async def send(self, command: Command[ResultT]) -> ResultT:
        self.asked.append(command)
        if self.fail_with is not None and not isinstance(command, Authenticate):
            raise self.fail_with
        result = self.answer(command)
        assert isinstance(result, command.result_type), (command, result)
        return cast(ResultT, result)

    def answer(self, command: Command[Any]) -> Any:
        raise AssertionError(f"unexpected {command!r}")


def scale_store() -> Dependencies:
    """The task-store's ports in memory, for its `/scale/v1` handlers."""
    pool = FakePool()
    tasks = FakeTasks(pool=pool)
    return Dependencies(
        pool=pool,
        quality=FakeQuality(),
        publish=RecordingPublisher(),
        tasks=tasks,
        accounts=FakeAccounts(),
        outbox=RecordingOutbox(),
        announce=RecordingAnnouncer(),
        work_lease_seconds=600,
        search=FakeTaskSearch(tasks),
        projects=FakeProjects(),
        batches=FakeBatches(),
        batch_outbox=RecordingOutbox(),
        list_tokens=CursorSigner(bytes(32)),
    )


class FakeTaskStore(FakeService):
    def __init__(self) -> None:
        super().__init__()
        self.scale = scale_store()
        self.principals = {
            (credential_hash(key), role): principal_id
            for (key, role), principal_id in CREDENTIALS.items()
        }
        self.tasks: dict[str, tuple[str, Task]] = {}  # task_id -> (owner, task)
        self.leases: dict[str, str] = {}  # task_id -> worker_id
        # What `GET /v1/quality/workers` shows, by customer.
        self.workers: dict[str, list[WorkerQuality]] = {}

    async def send(self, command: Command[ResultT]) -> ResultT:
        if type(command) not in SCALE_COMMANDS:
            return await super().send(command)
        self.asked.append(command)
        if self.fail_with is not None:
            raise self.fail_with
        received = type(command).model_validate_json(command.model_dump_json())
        result = await HANDLERS[type(command)](received, self.scale)
        return command.read_result(result.model_dump(mode="json", exclude_none=True))

    def answer(self, command: Command[Any]) -> Any:
        match command:
            case Authenticate(credential_hash=digest, role=role):
                principal_id = self.principals.get((digest, role))
                if principal_id is None:
                    raise Unauthorized("invalid credentials")
                return Principal(principal_id=principal_id, role=role)
            case CreateTask(task_id=task_id, customer_id=owner, request=request):
                task = Task(
                    task_id=task_id,
                    created_at=utcnow(),
                    status="pending",
                    callback_url=request.callback_url,
                    instruction=request.instruction,
                    params=TaskParams(
                        attachment_type=request.attachment_type,
                        attachment=request.attachment,
                        categories=request.categories,
                    ),
                )
                task = task.model_copy(update=request.quality_settings())
                self.tasks[task_id] = (owner, task)
                return task
            case ListWorkerQuality(customer_id=owner):
                return WorkerQualityList(workers=self.workers.get(owner, []))
            case GetTask(customer_id=owner, task_id=task_id):
                return self._owned(owner, task_id)
            case CancelTask(customer_id=owner, task_id=task_id):
                task = self._owned(owner, task_id)
                if task.status == "completed":
                    raise Conflict(f"task {task_id} is completed and cannot be canceled")
                self.leases.pop(task_id, None)
                return self._save(owner, task.model_copy(update={"status": "canceled"}))
            case ListTasks(customer_id=owner, query=query):
                mine = [task for who, task in self.tasks.values() if who == owner]
                mine.sort(key=lambda task: task.created_at, reverse=True)
                page = mine[query.offset : query.offset + query.limit]
                more = len(mine) > query.offset + query.limit
                last = page[-1] if more and page else None
                # Shaped like the task-store's (which alone checks the signature).
                next_token = (
                    None
                    if last is None
                    else ListCursor(
                        created_at=last.created_at, task_id=last.task_id, span_seconds=1
                    ).payload()
                    + "."
                    + "s" * NEXT_TOKEN_SIGNATURE_LENGTH
                )
                return TaskPage(tasks=page, next_token=next_token)
            case ClaimWork(worker_id=worker_id):
                return self._claim(worker_id)
            case SubmitWork(worker_id=worker_id, task_id=task_id, category=category):
                owner, task = self._held(worker_id, task_id)
                if category not in task.params.categories:
                    raise InvalidRequest(f"category: {category!r} is not one of the task's")
                del self.leases[task_id]
                completed = self._save(
                    owner,
                    task.model_copy(
                        update={
                            "status": "completed",
                            "completed_at": utcnow(),
                            "response": TaskResponse(category=category),
                        }
                    ),
                )
                return CompletedWork(
                    **_work_view(completed),
                    status=completed.status,
                    response=TaskResponse(category=category),
                    completed_at=utcnow(),
                )
            case ReleaseWork(worker_id=worker_id, task_id=task_id):
                self._held(worker_id, task_id)
                del self.leases[task_id]
                return WorkReleased(task_id=task_id)
        return super().answer(command)

    def _save(self, owner: str, task: Task) -> Task:
        self.tasks[task.task_id] = (owner, task)
        return task

    def _owned(self, owner: str, task_id: str) -> Task:
        who, task = self.tasks.get(task_id, (None, None))
        if who != owner or task is None:
            raise NotFound(f"no task with task_id {task_id}")
        return task

    def _held(self, worker_id: str, task_id: str) -> tuple[str, Task]:
        if self.leases.get(task_id) != worker_id:
            raise no_live_lease(task_id)
        return self.tasks[task_id]

    def _claim(self, worker_id: str) -> ClaimResult:
        pending = sorted(
            (task for _, task in self.tasks.values() if task.status == "pending"),
            key=lambda task: task.created_at,
        )
        for task in pending:
            if self.leases.get(task.task_id) in (None, worker_id):
                self.leases[task.task_id] = worker_id
                expires = utcnow() + timedelta(minutes=10)
                return ClaimResult(item=WorkItem(**_work_view(task), lease_expires_at=expires))
        return ClaimResult()


def _work_view(task: Task) -> dict[str, Any]:
    return {"task_id": task.task_id, "instruction": task.instruction, "params": task.params}


class FakeNotifier(FakeService):
    """Answers the log (empty) and redeliveries (numbered 2, 3... per task)."""

    def __init__(self) -> None:
        super().__init__()
        self.deliveries: dict[str, int] = {}

    def answer(self, command: Command[Any]) -> Any:
        if isinstance(command, ListCallbacks):
            return CallbackLog(attempts=[])
        if isinstance(command, RedeliverCallback):
            number = self.deliveries.get(command.task_id, 1) + 1
            self.deliveries[command.task_id] = number
            return CallbackRedelivery(task_id=command.task_id, delivery=number)
        return super().answer(command)


class FakeBoundary:
    def __init__(self) -> None:
        self.taskstore = FakeTaskStore()
        self.notifier = FakeNotifier()


class OnlyTaskStore:
    """A boundary of one fake task-store (for the `Authenticator` alone)."""

    def __init__(self, taskstore: Any) -> None:
        self.taskstore = taskstore
