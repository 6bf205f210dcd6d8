"""The declared topology holds together: every command has one queue, each handler table
answers exactly what its queue carries (each handler taking its command and returning
the command's result type), the broker users may do what the topology says they do (and
no more), and quorum queues are only the durable ones."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from typing import Any, get_type_hints

import pytest
from pydantic import BaseModel

from humantask_notifier.handler_table import COMMAND_HANDLERS as NOTIFIER_COMMAND_HANDLERS
from humantask_notifier.handler_table import MESSAGE_HANDLERS as NOTIFIER_MESSAGE_HANDLERS
from humantask_shared.core.broker_definitions import SERVICE_PERMISSIONS
from humantask_shared.core.messages.base import Command, Event, Message
from humantask_shared.core.messages.commands import CallbackLog, CreateTask, ListCallbacks
from humantask_shared.core.messages.events import EVENTS
from humantask_shared.core.models import Task
from humantask_shared.core.topology import (
    CALLBACK_RETRY_DELAY_QUEUE,
    COMMAND_QUEUES,
    COMMANDS,
    CREDENTIALS_QUEUE,
    DEAD_LETTER_EXCHANGE,
    DEAD_LETTER_SUFFIX,
    EVENTS_EXCHANGE,
    EXCHANGES,
    NOTIFIER_COMMANDS_EXCHANGE,
    NOTIFIER_COMMANDS_QUEUE,
    QUEUES,
    REPLY_QUEUE,
    TASKSTORE_BATCH_PROGRESS_QUEUE,
    TASKSTORE_COMMANDS_QUEUE,
    TASKSTORE_QUALITY_QUEUE,
    WORK_QUEUES,
    Queue,
    callback_retry_delay_queue,
    check_handlers,
    command_queue,
    dead_letter_queues,
    queue_arguments,
)
from humantask_taskstore.handler_table import BATCH_PROGRESS_HANDLERS, HANDLERS, QUALITY_HANDLERS

SERVICES = ("gateway", "taskstore", "notifier", "admin")


def matches(pattern: str, name: str) -> bool:
    return re.fullmatch(pattern, name) is not None


def instances(queue: Queue, owner: str) -> list[str]:
    """The names `owner` gives the queue (a template: with a made-up id and delay)."""
    if not queue.parameters:
        return [queue.name]
    values = {"owner": owner, "id": "0123abcd", "delay_ms": "2000"}
    return [queue.named(**{name: values[name] for name in queue.parameters}).name]


@pytest.mark.parametrize("command", COMMANDS, ids=[c.routing_key for c in COMMANDS])
def test_every_command_waits_in_exactly_one_queue(command: type[Command[Any]]) -> None:
    queues = [queue for queue in COMMAND_QUEUES if command in queue.carries]
    assert len(queues) == 1
    assert command_queue(command) is queues[0]


def test_commands_and_events_each_have_a_routing_key_of_their_own() -> None:
    keys = [message.routing_key for message in (*COMMANDS, *EVENTS)]
    assert len(keys) == len(set(keys))


def test_the_taskstore_handles_exactly_what_its_queue_is_bound_for() -> None:
    assert set(HANDLERS) == set(TASKSTORE_COMMANDS_QUEUE.commands)
    assert set(TASKSTORE_COMMANDS_QUEUE.routing_keys) == {c.routing_key for c in HANDLERS}
    check_handlers(TASKSTORE_COMMANDS_QUEUE, HANDLERS)
    with pytest.raises(RuntimeError, match=r"taskstore\.commands carries"):
        check_handlers(TASKSTORE_COMMANDS_QUEUE, list(HANDLERS)[1:])


# Every work queue's handler table: the task-store's commands and batch progress, the
# notifier's commands, completion events and retries.
TABLES: list[tuple[Queue, Mapping[Any, Any]]] = [
    (TASKSTORE_COMMANDS_QUEUE, HANDLERS),
    (TASKSTORE_BATCH_PROGRESS_QUEUE, BATCH_PROGRESS_HANDLERS),
    (TASKSTORE_QUALITY_QUEUE, QUALITY_HANDLERS),
    (NOTIFIER_COMMANDS_QUEUE, NOTIFIER_COMMAND_HANDLERS),
    *NOTIFIER_MESSAGE_HANDLERS.items(),
]
HANDLED = [(message, handler) for _, table in TABLES for message, handler in table.items()]


def test_every_work_queue_has_one_handler_table() -> None:
    assert sorted(queue.name for queue, _ in TABLES) == sorted(q.name for q in WORK_QUEUES)


@pytest.mark.parametrize(("queue", "table"), TABLES, ids=[queue.name for queue, _ in TABLES])
def test_a_handler_table_serves_exactly_what_its_queue_carries(
    queue: Queue, table: Mapping[Any, Any]
) -> None:
    check_handlers(queue, table)


@pytest.mark.parametrize(
    ("message", "handler"), HANDLED, ids=[message.routing_key for message, _ in HANDLED]
)
def test_a_handler_takes_its_message_and_a_command_handler_returns_its_result(
    message: type[Message], handler: Callable[..., Any]
) -> None:
    hints = get_type_hints(handler)
    first = next(iter(inspect.signature(handler).parameters))
    assert hints[first] is message
    if issubclass(message, Command):
        assert hints["return"] is message.result_type
    else:
        assert hints["return"] is type(None)


def test_a_command_names_its_result_once() -> None:
    assert CreateTask.result_type is Task
    assert ListCallbacks.result_type is CallbackLog
    assert all(issubclass(command.result_type, BaseModel) for command in COMMANDS)
    with pytest.raises(TypeError, match=r"Command\[ItsResult\]"):

        class Unanswered(Command):  # type: ignore[type-arg]
            routing_key = "test.unanswered"


def test_the_dead_letter_queues_of_a_service_are_those_of_its_work_queues() -> None:
    assert dead_letter_queues("taskstore") == (
        "taskstore.commands.dead-letter",
        "taskstore.batch-progress.dead-letter",
        "taskstore.quality.dead-letter",
    )
    assert set(dead_letter_queues("notifier")) == {
        "notifier.commands.dead-letter",
        "notifier.task-completed.dead-letter",
        "notifier.batch-completed.dead-letter",
        "notifier.callback-retry.dead-letter",
    }
    assert dead_letter_queues("gateway") == ()


def test_a_command_queue_is_published_to_by_the_senders_of_its_commands() -> None:
    for queue in COMMAND_QUEUES:
        senders = {sender for command in queue.commands for sender in command.senders}
        assert set(queue.publishers) == senders, queue.name


def test_queue_names_are_unique() -> None:
    names = [queue.name for queue in QUEUES]
    assert len(names) == len(set(names))


def test_the_delay_queue_is_its_template_named_with_its_ttl() -> None:
    queue = callback_retry_delay_queue(2000)
    assert queue.name == CALLBACK_RETRY_DELAY_QUEUE.named(delay_ms="2000").name
    assert queue.name == "notifier.callback-retry.delay-2000ms"
    assert queue_arguments(queue, "classic") == {
        "x-message-ttl": 2000,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "notifier.callback-retry",
    }


@pytest.mark.parametrize("queue", QUEUES, ids=[queue.name for queue in QUEUES])
def test_quorum_is_for_durable_queues_and_classic_declares_what_it_always_did(
    queue: Queue,
) -> None:
    classic = queue_arguments(queue, "classic")
    quorum = queue_arguments(queue, "quorum")
    assert "x-queue-type" not in classic
    if queue.per_process:
        assert quorum == classic == {}
    else:
        assert quorum == {**classic, "x-queue-type": "quorum"}


# -- the broker users' permissions (broker_definitions) against the topology -----------


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_may_declare_every_exchange(service: str) -> None:
    if service == "admin":  # it declares nothing; it publishes to an existing exchange
        return
    for exchange in EXCHANGES:
        assert matches(SERVICE_PERMISSIONS[service].configure, exchange.name)


@pytest.mark.parametrize("queue", QUEUES, ids=[queue.name for queue in QUEUES])
def test_whoever_declares_a_queue_may_and_only_its_consumers_may_read_it(queue: Queue) -> None:
    # Consumers declare their queues; nobody consumes a dead-letter or a delay queue,
    # and whoever puts messages there declares it.
    declarers = queue.consumers or queue.publishers
    for service in SERVICES:
        permissions = SERVICE_PERMISSIONS[service]
        for owner in SERVICES:
            for name in instances(queue, owner):
                own = owner == service or not queue.parameters
                if service in declarers and own:
                    assert matches(permissions.configure, name), (service, name)
                    if queue.exchange is not None:  # binding: write the queue, read the exchange
                        assert matches(permissions.write, name), (service, name)
                        assert matches(permissions.read, queue.exchange.name), (service, name)
                if service in queue.consumers and own:
                    assert matches(permissions.read, name), (service, name)
                elif service == "admin" and queue.name.endswith(DEAD_LETTER_SUFFIX):
                    assert matches(permissions.read, name), (service, name)  # the operator's
                elif not name.startswith(f"{service}."):  # not its own either
                    assert not matches(permissions.read, name), (service, name)


def test_the_admin_tool_reads_the_dead_letters_and_no_work_queue() -> None:
    """`humantask-admin dead-letters`: it reads (lists, inspects, acks away) the dead-letter
    queues, replays into their work queues through the default exchange, and can take no
    message from a queue a service consumes."""
    admin = SERVICE_PERMISSIONS["admin"]
    for work in WORK_QUEUES:
        dead_letter = work.dead_letter_queue
        assert dead_letter is not None
        assert matches(admin.read, dead_letter.name), dead_letter.name
        assert not matches(admin.read, work.name), work.name
        assert not matches(admin.configure, dead_letter.name)  # it declares nothing there
    for template in (REPLY_QUEUE, CREDENTIALS_QUEUE):
        for owner in ("gateway", "taskstore", "notifier"):
            assert not matches(admin.read, template.for_process(owner).name)  # type: ignore[arg-type]
    assert matches(admin.write, "amq.default")
    assert matches(admin.write, NOTIFIER_COMMANDS_EXCHANGE.name)
    assert not matches(admin.write, EVENTS_EXCHANGE.name)
    assert not matches(admin.write, DEAD_LETTER_EXCHANGE.name)


@pytest.mark.parametrize("queue", QUEUES, ids=[queue.name for queue in QUEUES])
def test_publishers_may_publish_where_their_messages_go(queue: Queue) -> None:
    for service in queue.publishers:
        permissions = SERVICE_PERMISSIONS[service]
        exchange = "amq.default" if queue.exchange is None else queue.exchange.name
        if queue.name.endswith(".dead-letter"):
            continue  # the broker dead-letters, not the service
        assert matches(permissions.write, exchange), (service, queue.name)
        if queue.exchange == EVENTS_EXCHANGE:
            for key in queue.routing_keys:
                assert matches(permissions.events_write, key), (service, key)


def test_only_the_senders_of_commands_may_publish_to_their_exchange() -> None:
    for queue in COMMAND_QUEUES:
        assert queue.exchange is not None
        for service in SERVICES:
            allowed = matches(SERVICE_PERMISSIONS[service].write, queue.exchange.name)
            assert allowed == (service in queue.publishers), (service, queue.exchange.name)


@pytest.mark.parametrize("event", EVENTS, ids=[e.routing_key for e in EVENTS])
def test_only_the_consumers_of_an_event_may_bind_to_it(event: type[Event]) -> None:
    routing_key = event.routing_key
    consumers = {
        service
        for queue in QUEUES
        if queue.exchange == EVENTS_EXCHANGE and event in queue.carries
        for service in queue.consumers
    }
    for service in SERVICES:
        may = matches(SERVICE_PERMISSIONS[service].events_read, routing_key)
        assert may == (service in consumers), (service, routing_key)
