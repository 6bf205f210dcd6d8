"""MongoDB adapters of the task-store: tasks (with their outbox), customers and
credentials. Nothing outside this package touches their collections.

Written for an engine that applies a conditional write atomically (MongoDB 7, FerretDB 2
on DocumentDB). No transactions (DocumentDB accepts and ignores them): what must change
together lives in one document, the task and the events it raised (its outbox).

- `tasks`: the tasks aggregate (`TaskRepository`); `spans`: how lists and claims read
  the collection a span of creation times at a time; `listing`: a page of a list at the
  cost of a page (skipped in the database, bounded in bytes and in time); `indexes`:
  the indexes and the filters spelled for them; `documents`: a task as stored;
  `outbox_store`: the events waiting in the tasks' and batches' outboxes (`OutboxStore`);
- `accounts`: customers, workers and their credentials (`AccountRepository`);
- `pool`: the fair pool's customers and their weights (`PoolRepository`);
- `quality`: what each customer knows of its workers (`QualityRepository`);
- `keys`: secrets every task-store copy shares, made once (the list cursors' key);
- `search`: `/scale/v1`'s task list by Scale's filters, its count, a batch's counts
  (`TaskSearch`); `projects` and `batches`: Scale's projects and batches
  (`ProjectRepository`, `BatchRepository`; a batch has an outbox as a task does).
"""

from .accounts import AccountRepository
from .batches import BatchRepository
from .documents import task_document
from .indexes import BATCHES, ensure_indexes
from .keys import shared_key
from .listing import ListLimits
from .outbox_store import OutboxBacklog, OutboxStore, PendingOutbox
from .pool import PoolRepository
from .projects import ProjectRepository
from .quality import QualityRepository
from .search import TaskSearch
from .tasks import TaskRepository, WorkerPool

__all__ = [
    "BATCHES",
    "AccountRepository",
    "BatchRepository",
    "ListLimits",
    "OutboxBacklog",
    "OutboxStore",
    "PendingOutbox",
    "PoolRepository",
    "ProjectRepository",
    "QualityRepository",
    "TaskRepository",
    "TaskSearch",
    "WorkerPool",
    "ensure_indexes",
    "shared_key",
    "task_document",
]
