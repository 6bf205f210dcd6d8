"""Metrics that move without I/O: the caller's side of a command, callback attempts by
outcome and reason. (The task-store's gauges: tests/integration/test_metrics.py; the
dead-letter queues: tests/integration/test_messaging.py.)"""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client import REGISTRY

from humantask_notifier import domain
from humantask_notifier.domain import Attempt
from humantask_notifier.ports import SendResult
from humantask_shared.core.errors import NotFound, Unavailable
from humantask_shared.core.messages.commands import GetTask
from humantask_shared.core.messages.envelope import Reply, ReplyError
from humantask_shared.core.timeutil import utcnow
from humantask_shared.runtime.command_client import CommandClient
from tests.support.fakes import FakeSender

from .test_callback_handlers import TASK_ID, World, completion


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class AnsweringClient(CommandClient):
    """A command client whose round trip over the broker gives `answer`."""

    def __init__(self, answer: bytes | Exception) -> None:
        super().__init__(channel=None, exchange=None, user_id="gw", timeout_seconds=1)  # type: ignore[arg-type]
        self.answer = answer

    async def _call(self, command: object) -> bytes:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.mark.parametrize(
    ("answer", "raised"),
    [
        (
            Reply(ok=False, error=ReplyError(code="not_found", message="no such task"))
            .model_dump_json()
            .encode(),
            NotFound,
        ),
        (Unavailable("the service did not answer in time"), Unavailable),  # a timeout counts too
    ],
)
async def test_the_caller_side_of_each_command_is_timed(
    answer: bytes | Exception, raised: type
) -> None:
    name = "humantask_command_duration_seconds_count"
    before = sample(name, command="task.get")
    client = AnsweringClient(answer)
    with pytest.raises(raised):
        await client.send(GetTask(task_id="6b0e3164c06f30212d038d36", customer_id="c1"))
    assert sample(name, command="task.get") == before + 1
    assert sample("humantask_command_duration_seconds_bucket", command="task.get", le="+Inf") >= 1


@pytest.mark.parametrize(
    ("result", "kind"),
    [
        (SendResult(status_code=200), "status_2xx"),
        (SendResult(status_code=204), "status_2xx"),
        (SendResult(status_code=307), "status_3xx"),
        (SendResult(status_code=404), "status_4xx"),
        (SendResult(status_code=503), "status_5xx"),
        (SendResult(error="timed out after 10 s", reason="timeout"), "timeout"),
        (SendResult(error="something"), "connection"),
    ],
)
def test_a_send_result_says_what_kind_it_is(result: SendResult, kind: str) -> None:
    assert result.kind == kind


def attempts(attempt: str, outcome: str, reason: str) -> float:
    return sample(
        "humantask_callback_attempts_total", attempt=attempt, outcome=outcome, reason=reason
    )


async def test_callback_attempts_are_counted_by_outcome_and_reason() -> None:
    failed = attempts("1", "failed", "timeout")
    delivered = attempts("2", "delivered", "status_2xx")
    world = World(
        sender=FakeSender(
            [SendResult(error="timed out after 1 s", reason="timeout"), SendResult(status_code=200)]
        )
    )
    await world.completed()
    assert attempts("1", "failed", "timeout") == failed + 1
    await world.retry_due()
    assert attempts("2", "delivered", "status_2xx") == delivered + 1


async def test_an_error_status_is_counted_by_its_class() -> None:
    before = attempts("1", "failed", "status_5xx")
    await World(sender=FakeSender([SendResult(status_code=502)])).completed()
    assert attempts("1", "failed", "status_5xx") == before + 1


async def test_an_attempt_whose_sender_died_is_counted_as_interrupted() -> None:
    before = attempts("1", "interrupted", "interrupted")
    world = World()
    await world.deliveries.create(domain.new_delivery(completion(), utcnow()))
    long_ago = utcnow() - timedelta(minutes=5)  # claimed, and its notifier never came back
    await world.deliveries.claim(world.deliveries.deliveries[TASK_ID], Attempt(1, long_ago))
    await world.completed()  # the event, redelivered after the crash
    assert attempts("1", "interrupted", "interrupted") == before + 1
