"""The RabbitMQ topology: every exchange, queue and binding of humantask, as data.

Each queue's declaration says what it carries (commands, events, other messages: its
bindings are their routing keys), who consumes it, who publishes to it, and its
arguments. The services declare their queues from these declarations only
(`runtime/declaring.py`); the AsyncAPI contract (`tools/humantask_contracts/asyncapi.py`)
is derived from them, and the broker users' permissions (`broker_definitions`) are
tested against them.

- `humantask.commands` (direct): commands to the task-store, routed by command name to
  `taskstore.commands`.
- `humantask.notifier-commands` (direct): the commands the notifier answers, routed to
  `notifier.commands`.
- `humantask.events` (topic): domain events, routed by event name (`task.created`...).
- `humantask.dead-letter` (direct): each durable work queue dead-letters into
  `<queue>.dead-letter`, a queue kept for inspection and never consumed, so bounded
  (`DEAD_LETTER_ARGUMENTS`); its depth is a gauge (`runtime/dead_letters.py`).

Durable queues are classic or quorum queues (`AMQP_QUEUE_TYPE`); the per-process queues
(a caller's replies, a process's credential events) stay classic whatever the setting:
they are exclusive, and quorum queues cannot be. Every argument used here works on both
types from RabbitMQ 3.10 on (message TTL on quorum queues, per-message expiration too).
A queue's type or arguments cannot change in place: RabbitMQ refuses the redeclaration
(`PRECONDITION_FAILED`), and declaring says which queue to delete (README, "Upgrading").
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pydantic import BaseModel

from .messages.base import Command, Message, Sender
from .messages.commands import (
    Authenticate,
    CancelTask,
    ClaimWork,
    CreateCustomer,
    CreateTask,
    CreateWorker,
    EnsureCustomer,
    GetCallbackSecret,
    GetTask,
    ListAccounts,
    ListCallbacks,
    ListFailedCallbacks,
    ListTasks,
    ListWorkerQuality,
    RedeliverCallback,
    ReleaseWork,
    RevokeAccount,
    RotateCallbackSecret,
    RotateCredential,
    SetCustomerWeight,
    SubmitWork,
)
from .messages.envelope import Reply
from .messages.events import (
    BatchCompleted,
    BatchFinalized,
    BatchTaskSettled,
    CredentialChanged,
    TaskAnswered,
    TaskCanceled,
    TaskCompleted,
    WorkerBlocked,
)
from .messages.quotas import SetCustomerQuota
from .messages.retries import RedeliveryDue, RetryDue
from .messages.scale_commands import SCALE_COMMANDS

Service = Literal["gateway", "taskstore", "notifier", "admin"]
QueueType = Literal["classic", "quorum"]
ExchangeType = Literal["direct", "topic"]


@dataclass(frozen=True)
class Exchange:
    name: str
    type: ExchangeType
    description: str


COMMANDS_EXCHANGE = Exchange(
    "humantask.commands",
    "direct",
    "Commands to the task-store, routed by command name.",
)
NOTIFIER_COMMANDS_EXCHANGE = Exchange(
    "humantask.notifier-commands",
    "direct",
    "The commands the notifier answers, routed by command name. An exchange of their own, "
    "so that the notifier's broker user needs no read access to `humantask.commands` (it "
    "could bind a queue there and see, and answer, the gateway's commands to the "
    "task-store).",
)
EVENTS_EXCHANGE = Exchange(
    "humantask.events",
    "topic",
    "Domain events, published by the task-store (persistent), routed by event name.",
)
DEAD_LETTER_EXCHANGE = Exchange(
    "humantask.dead-letter",
    "direct",
    "What a work queue's consumers reject, routed by the work queue's name into its "
    "dead-letter queue.",
)
EXCHANGES = (COMMANDS_EXCHANGE, NOTIFIER_COMMANDS_EXCHANGE, EVENTS_EXCHANGE, DEAD_LETTER_EXCHANGE)

DEAD_LETTER_SUFFIX = ".dead-letter"
# Dead-letter queues are bounded, so that a flood of messages no service can handle
# cannot fill the broker: at most 10,000 messages or 100 MiB, the oldest dropped first,
# each kept 7 days.
DEAD_LETTER_ARGUMENTS: dict[str, Any] = {
    "x-max-length": 10_000,
    "x-max-length-bytes": 100 * 1024 * 1024,
    "x-overflow": "drop-head",
    "x-message-ttl": 7 * 24 * 60 * 60 * 1000,
}


def routing_key(message: type[BaseModel]) -> str:
    """The routing key (and AMQP `type`) of a command, an event or a retry; a reply has
    none (it goes to its caller's queue by name)."""
    if issubclass(message, Message):
        return message.routing_key
    raise TypeError(f"{message.__name__} has no routing key")


@dataclass(frozen=True)
class Queue:
    """A queue: what it carries, who reads it, who writes to it, how it is declared.

    A `name` with `{parameters}` is a template, one queue per process or per setting;
    `named` makes the queue itself."""

    name: str
    description: str
    carries: tuple[type[BaseModel], ...]
    consumers: tuple[Service, ...]  # nobody: kept for an operator (dead letters)
    publishers: tuple[Service, ...]
    # Bound there by the routing key of each message it carries (a dead-letter queue:
    # by its work queue's name). Without one, messages come through the default exchange.
    exchange: Exchange | None = None
    # Rejected messages go to `<name>.dead-letter` (through `DEAD_LETTER_EXCHANGE`).
    dead_letters: bool = False
    # Exclusive and auto-delete, hence classic: a queue of one process's own.
    per_process: bool = False
    arguments: Mapping[str, Any] = field(default_factory=dict, hash=False)
    parameters: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def routing_keys(self) -> tuple[str, ...]:
        if self.exchange is None:
            return ()
        if self.exchange == DEAD_LETTER_EXCHANGE:
            return (self.name.removesuffix(DEAD_LETTER_SUFFIX),)
        return tuple(routing_key(message) for message in self.carries)

    @property
    def commands(self) -> tuple[type[Command[Any]], ...]:
        return tuple(m for m in self.carries if issubclass(m, Command))

    @property
    def dead_letter_queue(self) -> Queue | None:
        if not self.dead_letters:
            return None
        return Queue(
            f"{self.name}{DEAD_LETTER_SUFFIX}",
            f"What the consumers of `{self.name}` rejected: kept for inspection, never "
            "consumed, bounded (the oldest dropped first, each kept a week at most).",
            carries=self.carries,
            consumers=(),
            publishers=self.consumers,
            exchange=DEAD_LETTER_EXCHANGE,
            arguments=DEAD_LETTER_ARGUMENTS,
        )

    def named(self, **values: str) -> Queue:
        """The queue a template stands for, its parameters filled in."""
        if set(values) != set(self.parameters):
            raise ValueError(f"{self.name} takes {sorted(self.parameters)}")
        return replace(self, name=self.name.format(**values), parameters={})

    def for_process(self, owner: Service) -> Queue:
        """A per-process queue of `owner`'s, under a random id."""
        return self.named(owner=owner, id=uuid.uuid4().hex)


def _senders(commands: tuple[type[Command[Any]], ...]) -> tuple[Sender, ...]:
    return tuple(sorted({sender for command in commands for sender in command.senders}))


# The task-store's commands: the one list of them (its handler table must match it).
_TASKSTORE_COMMANDS: tuple[type[Command[Any]], ...] = (
    Authenticate,
    EnsureCustomer,
    CreateTask,
    GetTask,
    ListTasks,
    CancelTask,
    ClaimWork,
    SubmitWork,
    ReleaseWork,
    ListWorkerQuality,
    GetCallbackSecret,
    CreateCustomer,
    CreateWorker,
    ListAccounts,
    RevokeAccount,
    RotateCredential,
    RotateCallbackSecret,
    SetCustomerWeight,
    SetCustomerQuota,
    # `/scale/v1`'s (docs/reference/contract.md §11).
    *SCALE_COMMANDS,
)
TASKSTORE_COMMANDS_QUEUE = Queue(
    "taskstore.commands",
    "The task-store's commands; its processes are competing consumers.",
    carries=_TASKSTORE_COMMANDS,
    consumers=("taskstore",),
    publishers=_senders(_TASKSTORE_COMMANDS),
    exchange=COMMANDS_EXCHANGE,
    dead_letters=True,
)
TASKSTORE_BATCH_PROGRESS_QUEUE = Queue(
    "taskstore.batch-progress",
    "What may complete a batch: a task of it settled (completed or canceled), or the batch "
    "finalized. The task-store looks at the batch and completes it by a conditional "
    "write; its processes are competing consumers.",
    carries=(BatchTaskSettled, BatchFinalized),
    consumers=("taskstore",),
    publishers=("taskstore",),
    exchange=EVENTS_EXCHANGE,
    dead_letters=True,
)
TASKSTORE_QUALITY_QUEUE = Queue(
    "taskstore.quality",
    "The task-store's own events that teach it about workers (docs/reference/contract.md §10): "
    "each answer (counted for its worker, scored when the task is gold, which may block "
    "the worker), each completion (what its answers teach about their workers), each "
    "block (the worker's answers on the customer's open tasks stop counting); and each "
    "completion or cancelation that may have taken a customer's last task out of the "
    "fair pool. Its processes are competing consumers; each handler is idempotent.",
    carries=(TaskAnswered, TaskCompleted, TaskCanceled, WorkerBlocked),
    consumers=("taskstore",),
    publishers=("taskstore",),
    exchange=EVENTS_EXCHANGE,
    dead_letters=True,
)
# The notifier's commands: the one list of them (its handler table must match it).
_NOTIFIER_COMMANDS: tuple[type[Command[Any]], ...] = (
    ListCallbacks,
    RedeliverCallback,
    ListFailedCallbacks,
)
NOTIFIER_COMMANDS_QUEUE = Queue(
    "notifier.commands",
    "The notifier's commands; its processes are competing consumers.",
    carries=_NOTIFIER_COMMANDS,
    consumers=("notifier",),
    publishers=_senders(_NOTIFIER_COMMANDS),
    exchange=NOTIFIER_COMMANDS_EXCHANGE,
    dead_letters=True,
)
NOTIFIER_COMPLETIONS_QUEUE = Queue(
    "notifier.task-completed",
    "Completion events, each the first attempt at a callback; notifiers compete for them.",
    carries=(TaskCompleted,),
    consumers=("notifier",),
    publishers=("taskstore",),
    exchange=EVENTS_EXCHANGE,
    dead_letters=True,
)
NOTIFIER_BATCH_COMPLETIONS_QUEUE = Queue(
    "notifier.batch-completed",
    "Completed batches, each the first attempt at the batch's callback; notifiers compete "
    "for them.",
    carries=(BatchCompleted,),
    consumers=("notifier",),
    publishers=("taskstore",),
    exchange=EVENTS_EXCHANGE,
    dead_letters=True,
)
CALLBACK_RETRY_QUEUE = Queue(
    "notifier.callback-retry",
    "Callback attempts that came due: retries, dead-lettered in by their delay queue, and "
    "the first attempts of redeliveries, published by the notifier that was asked for one; "
    "notifiers compete for them.",
    carries=(RetryDue, RedeliveryDue),
    consumers=("notifier",),
    publishers=("notifier",),
    dead_letters=True,
)
CALLBACK_RETRY_DELAY_QUEUE = Queue(
    f"{CALLBACK_RETRY_QUEUE.name}.delay-{{delay_ms}}ms",
    "Where a retry waits for its delay (a per-queue TTL, so retries come due in order), "
    "published through the default exchange; nobody consumes it: an expired retry is "
    f"dead-lettered into `{CALLBACK_RETRY_QUEUE.name}`. Named after its delay, so a "
    "notifier started with another delay declares a queue of its own. A redelivery's "
    "first attempt put back because its host was busy waits in the one of that delay.",
    carries=(RetryDue, RedeliveryDue),
    consumers=(),
    publishers=("notifier",),
    arguments={
        "x-dead-letter-exchange": "",  # the default exchange: straight to the queue
        "x-dead-letter-routing-key": CALLBACK_RETRY_QUEUE.name,
    },
    parameters={"delay_ms": "CALLBACK_RETRY_DELAY_SECONDS in milliseconds: its x-message-ttl."},
)
NOTIFIER_COMPLETIONS_DELAY_QUEUE = Queue(
    f"{NOTIFIER_COMPLETIONS_QUEUE.name}.delay-{{delay_ms}}ms",
    "Completion events put back for a while because their callback's host already had "
    "CALLBACK_MAX_PER_HOST callbacks in progress (no attempt was spent), published through "
    "the default exchange; nobody consumes it: an expired event is dead-lettered back into "
    f"`{NOTIFIER_COMPLETIONS_QUEUE.name}`. A retry put back for the same reason waits in "
    "the retries' delay queue of that delay.",
    carries=(TaskCompleted,),
    consumers=(),
    publishers=("notifier",),
    arguments={
        "x-dead-letter-exchange": "",  # the default exchange: straight to the queue
        "x-dead-letter-routing-key": NOTIFIER_COMPLETIONS_QUEUE.name,
    },
    parameters={"delay_ms": "CALLBACK_HOST_BUSY_DELAY_SECONDS in milliseconds: its x-message-ttl."},
)
REPLY_QUEUE = Queue(
    "{owner}.replies.{id}",
    "A caller's replies, matched to its commands by `correlation_id`; answered through the "
    "default exchange (the command's `reply_to`).",
    carries=(Reply,),
    consumers=("gateway", "notifier", "admin"),
    publishers=("taskstore", "notifier"),
    per_process=True,
    parameters={
        "owner": "The service waiting for replies.",
        "id": "A random hex id, one per reply queue.",
    },
)
CREDENTIALS_QUEUE = Queue(
    "{owner}.credentials.{id}",
    "Every gateway and notifier hears `credential.changed` on a queue of its own (a fanout "
    "per process, not competing consumers), and forgets what it cached.",
    carries=(CredentialChanged,),
    consumers=("gateway", "notifier"),
    publishers=("taskstore",),
    exchange=EVENTS_EXCHANGE,
    per_process=True,
    parameters={
        "owner": "The service that caches credentials.",
        "id": "A random hex id, one per process.",
    },
)

WORK_QUEUES = (
    TASKSTORE_COMMANDS_QUEUE,
    TASKSTORE_BATCH_PROGRESS_QUEUE,
    TASKSTORE_QUALITY_QUEUE,
    NOTIFIER_COMMANDS_QUEUE,
    NOTIFIER_COMPLETIONS_QUEUE,
    NOTIFIER_BATCH_COMPLETIONS_QUEUE,
    CALLBACK_RETRY_QUEUE,
)
COMMAND_QUEUES = (TASKSTORE_COMMANDS_QUEUE, NOTIFIER_COMMANDS_QUEUE)
# Every queue the system declares: work queues, their dead-letter queues, and the
# templates of the per-process and per-setting queues.
QUEUES: tuple[Queue, ...] = (
    *(q for work in WORK_QUEUES for q in (work, work.dead_letter_queue) if q is not None),
    CALLBACK_RETRY_DELAY_QUEUE,
    NOTIFIER_COMPLETIONS_DELAY_QUEUE,
    REPLY_QUEUE,
    CREDENTIALS_QUEUE,
)


# Every command, each carried by exactly one command queue.
COMMANDS: tuple[type[Command[Any]], ...] = tuple(
    command for queue in COMMAND_QUEUES for command in queue.commands
)


def command_queue(command: type[Command[Any]]) -> Queue:
    """The queue a command waits in (and so the exchange it is published on)."""
    (queue,) = [queue for queue in COMMAND_QUEUES if command in queue.carries]
    return queue


def callback_retry_delay_queue(
    delay_ms: int,
    retries: Queue = CALLBACK_RETRY_QUEUE,
    template: Queue = CALLBACK_RETRY_DELAY_QUEUE,
) -> Queue:
    """The delay queue of `delay_ms` in front of `retries` (the notifier's, or a test's);
    with `template` NOTIFIER_COMPLETIONS_DELAY_QUEUE and `retries` the completions', the
    one in front of the completions."""
    return replace(
        template,
        name=f"{retries.name}.delay-{delay_ms}ms",
        arguments={
            "x-message-ttl": delay_ms,
            **template.arguments,
            "x-dead-letter-routing-key": retries.name,
        },
        parameters={},
    )


def check_handlers(queue: Queue, handled: Iterable[type[BaseModel]]) -> None:
    """The handlers of a queue's consumer are for exactly what the queue carries."""
    declared = sorted(routing_key(message) for message in queue.carries)
    handles = sorted(routing_key(message) for message in handled)
    if handles != declared:
        raise RuntimeError(f"{queue.name} carries {declared}, but the handlers are for {handles}")


def queue_arguments(queue: Queue, queue_type: QueueType) -> dict[str, Any]:
    """The `x-` arguments `queue` is declared with."""
    arguments = dict(queue.arguments)
    if queue.dead_letters:
        arguments["x-dead-letter-exchange"] = DEAD_LETTER_EXCHANGE.name
        arguments["x-dead-letter-routing-key"] = queue.name
    if queue_type == "quorum" and not queue.per_process:
        arguments["x-queue-type"] = "quorum"
    return arguments


def dead_letter_queues(service: Service) -> tuple[str, ...]:
    """The dead-letter queues of the work queues `service` consumes (and so declares)."""
    return tuple(
        dead_letter.name
        for queue in WORK_QUEUES
        if service in queue.consumers and (dead_letter := queue.dead_letter_queue) is not None
    )
