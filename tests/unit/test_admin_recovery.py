"""`humantask-admin`'s recovery commands without a broker: their arguments, and what they
print, with fake services behind (the real thing: tests/e2e/test_recovery.py)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from humantask_shared.core.errors import Conflict
from humantask_shared.core.messages.base import Command
from humantask_shared.core.messages.commands import (
    CallbackRedelivery,
    CallbackSecret,
    FailedCallback,
    FailedCallbacks,
    ListFailedCallbacks,
    RedeliverCallback,
    RotateCallbackSecret,
)
from humantask_taskstore.admin import (
    Admin,
    _parser,
    duration_seconds,
    exit_status,
    point_in_time,
)

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
TASK = "0123456789abcdef01234567"


class Recorder:
    """A command sender answering from `answers` by command type, recording each."""

    def __init__(self, **answers: Any) -> None:
        self.answers = answers
        self.sent: list[Command[Any]] = []

    async def send(self, command: Command[Any]) -> Any:
        self.sent.append(command)
        answer = self.answers[type(command).__name__]
        if callable(answer):
            return answer(command)
        return answer


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("30m", 1800), ("24h", 86400), ("7d", 604800)]
)
def test_durations(text: str, seconds: int) -> None:
    assert duration_seconds(text) == seconds


def test_a_point_in_time_is_a_time_or_a_span_back() -> None:
    assert point_in_time("24h", NOW) == NOW - timedelta(hours=24)
    assert point_in_time("2026-04-30T10:00:00Z") == datetime(2026, 4, 30, 10, tzinfo=UTC)
    assert point_in_time("2026-04-30T10:00:00") == datetime(2026, 4, 30, 10, tzinfo=UTC)
    with pytest.raises(argparse.ArgumentTypeError, match="neither a time"):
        point_in_time("yesterday")


def test_the_arguments_of_the_recovery_commands() -> None:
    parser = _parser()
    args = parser.parse_args(["customers", "rotate-secret", "c1"])
    assert args.overlap == 24 * 3600
    assert parser.parse_args(["customers", "rotate-secret", "c1", "--overlap", "0"]).overlap == 0
    with pytest.raises(SystemExit):
        parser.parse_args(["customers", "rotate-secret", "c1", "--overlap", "31d"])
    args = parser.parse_args(["callbacks", "failed", "--since", "1h", "--customer", "c1"])
    assert (args.customer, args.limit) == ("c1", 1000)
    with pytest.raises(SystemExit):
        parser.parse_args(["callbacks", "failed"])  # --since is required
    args = parser.parse_args(["dead-letters", "replay", "notifier.task-completed", "--all"])
    assert (args.queue, args.ids, args.all) == ("notifier.task-completed", [], True)


async def test_rotate_secret_sends_the_overlap_and_says_when_the_old_secret_stops() -> None:
    until = NOW + timedelta(hours=2)
    taskstore = Recorder(
        RotateCallbackSecret=CallbackSecret(callback_secret="whsec_new", previous_until=until)
    )
    lines = await Admin(taskstore).rotate_secret("c1", 7200)
    assert lines == [
        {
            "customer_id": "c1",
            "callback_secret": "whsec_new",
            "previous_secret_signs_until": "2026-05-01T14:00:00.000Z",
        }
    ]
    [sent] = taskstore.sent
    assert sent == RotateCallbackSecret(customer_id="c1", overlap_seconds=7200)


async def test_redeliver_says_on_each_line_what_came_of_each_task() -> None:
    def answer(command: RedeliverCallback) -> CallbackRedelivery:
        if command.task_id == TASK:
            return CallbackRedelivery(task_id=TASK, delivery=3)
        raise Conflict(f"the callback of task {command.task_id} is still being delivered")

    notifier = Recorder(RedeliverCallback=answer)
    other = "f" * 24
    lines = await Admin(Recorder(), notifier).redeliver([TASK, other, "not-an-id"])
    assert lines == [
        {"task_id": TASK, "delivery": 3},
        {"task_id": other, "error": f"the callback of task {other} is still being delivered"},
        {"task_id": "not-an-id", "error": "not a task id"},
    ]
    assert exit_status(lines) == 1 and exit_status(lines[:1]) == 0
    assert {c.customer_id for c in notifier.sent if isinstance(c, RedeliverCallback)} == {None}


async def test_failed_callbacks_are_listed_and_redelivered_all_at_once() -> None:
    failed = FailedCallback(
        task_id=TASK,
        customer_id="c1",
        delivery=1,
        callback_url="https://example.com/cb",
        failed_at=NOW,
        status_code=None,
        error="timed out after 10 s",
    )
    notifier = Recorder(
        ListFailedCallbacks=FailedCallbacks(callbacks=[failed]),
        RedeliverCallback=CallbackRedelivery(task_id=TASK, delivery=2),
    )
    admin = Admin(Recorder(), notifier)
    assert await admin.failed_callbacks(NOW, "c1", 10) == [
        {
            "task_id": TASK,
            "customer_id": "c1",
            "delivery": 1,
            "callback_url": "https://example.com/cb",
            "failed_at": "2026-05-01T12:00:00.000Z",
            "status_code": None,
            "error": "timed out after 10 s",
        }
    ]
    assert notifier.sent[0] == ListFailedCallbacks(since=NOW, customer_id="c1", limit=10)
    assert await admin.redeliver_failed(NOW, None, 10) == [{"task_id": TASK, "delivery": 2}]
