"""MongoDB adapters of the task-store: tasks (with their outbox), customers and
credentials. Nothing outside this package touches their collections.

Written for an engine that applies a conditional write atomically (MongoDB 7, FerretDB 2
on DocumentDB). No transactions (DocumentDB accepts and ignores them): what must change
together lives in one document, the task and the events it raised (its outbox).

- `tasks`: the tasks aggregate (`TaskRepository`); `spans`: how lists and claims read
  the collection a span of creation times at a time; `indexes`: the indexes and the
  filters spelled for them; `documents`: a task as stored; `outbox_store`: the events
  waiting in the tasks' outboxes (`OutboxStore`);
- `accounts`: customers, workers and their credentials (`AccountRepository`);
- `search`: `/scale/v1`'s task list by Scale's filters, its count, a batch's counts
  (`TaskSearch`); `projects` and `batches`: Scale's projects and batches
  (`ProjectRepository`, `BatchRepository`; a batch has an outbox as a task does).
"""

from .accounts import AccountRepository
from .batches import BatchRepository
from .documents import task_document
from .indexes import BATCHES, ensure_indexes
from .outbox_store import OutboxBacklog, OutboxStore, PendingOutbox
from .projects import ProjectRepository
from .search import TaskSearch
from .tasks import TaskRepository, WorkerPool

__all__ = [
    "BATCHES",
    "AccountRepository",
    "BatchRepository",
    "OutboxBacklog",
    "OutboxStore",
    "PendingOutbox",
    "ProjectRepository",
    "TaskRepository",
    "TaskSearch",
    "WorkerPool",
    "ensure_indexes",
    "task_document",
]
