"""The event dispatcher hands each message of a queue to its handler, parsed into the
model its AMQP type names; what can never be handled is dead-lettered."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from humantask_shared.core.messages.events import CredentialChanged, TaskCompleted
from humantask_shared.core.messages.retries import RetryDue
from humantask_shared.core.timeutil import utcnow
from humantask_shared.core.topology import CALLBACK_RETRY_QUEUE, Queue
from humantask_shared.runtime.consumer import PoisonMessage
from humantask_shared.runtime.event_dispatcher import EventDispatcher
from humantask_shared.runtime.publishing import stamp

CHANGED = CredentialChanged(role="worker", principal_id="w1", change="revoked")
TWO_KINDS = Queue("test.events", "a test's", (CredentialChanged, RetryDue), (), ())


def message(message_type: str | None, body: bytes) -> Any:
    return SimpleNamespace(type=message_type, body=body)


class Recorder:
    def __init__(self) -> None:
        self.handled: list[Any] = []

    async def __call__(self, parsed: Any) -> None:
        self.handled.append(parsed)


async def test_each_message_reaches_the_handler_of_its_type_parsed() -> None:
    changes, retries = Recorder(), Recorder()
    dispatcher = EventDispatcher(TWO_KINDS, {CredentialChanged: changes, RetryDue: retries})
    await dispatcher(message("credential.changed", stamp(CHANGED, utcnow()).body.encode()))
    await dispatcher(message("callback.retry_due", b'{"task_id": "t1"}'))
    assert changes.handled == [CHANGED]
    assert retries.handled == [RetryDue(task_id="t1")]


@pytest.mark.parametrize(
    ("message_type", "body"),
    [
        ("task.completed", b"{}"),  # not a type the queue carries
        (None, b'{"task_id": "t1"}'),  # no type, and the queue carries two kinds
        ("callback.retry_due", b'{"task": "t1"}'),
        ("callback.retry_due", b"not json"),
    ],
)
async def test_what_can_never_be_handled_is_poison(message_type: str | None, body: bytes) -> None:
    handler = Recorder()
    dispatcher = EventDispatcher(TWO_KINDS, {CredentialChanged: handler, RetryDue: handler})
    with pytest.raises(PoisonMessage):
        await dispatcher(message(message_type, body))
    assert handler.handled == []


async def test_a_message_without_a_type_on_a_queue_of_one_kind_is_of_that_kind() -> None:
    handler = Recorder()
    one_kind = Queue("test.retries", "a test's", (RetryDue,), (), ())
    await EventDispatcher(one_kind, {RetryDue: handler})(message(None, b'{"task_id": "t1"}'))
    assert handler.handled == [RetryDue(task_id="t1")]


def test_the_handlers_must_serve_exactly_what_the_queue_carries() -> None:
    with pytest.raises(RuntimeError, match=r"test\.events carries"):
        EventDispatcher(TWO_KINDS, {CredentialChanged: Recorder()})
    with pytest.raises(RuntimeError, match="carries"):
        EventDispatcher(CALLBACK_RETRY_QUEUE, {RetryDue: Recorder(), TaskCompleted: Recorder()})
