"""The chaos run's checker (chaos/check.py) applies the contract's callback rule: one or
two attempts, the second only after a failed first one, or after a first attempt the
notifier logged as interrupted (README, "What a crash can do")."""

from __future__ import annotations

from typing import Any

from chaos.check import Check, Final, Window, check
from chaos.load import TRANSPORT_ERROR, Answer, Journal
from chaos.receiver import Received

TASK = "a" * 24


def attempt(number: int, answer: str = "200", at: float = 0.0) -> Received:
    return Received(TASK, number, TASK, at, answer, "2026-12-01T00:00:00.000Z", "cat")


def log_entry(number: int, delivered: bool, error: str | None = None) -> dict[str, Any]:
    status = 200 if delivered else None
    return {"attempt": number, "delivered": delivered, "error": error, "status_code": status}


def run(
    received: list[Received], log: list[dict[str, Any]], answers: list[Answer] | None = None
) -> tuple[dict[str, Check], dict[str, Any]]:
    journal = Journal(answers=answers or [], created={0: TASK})
    journal.submitted[TASK].append(0)
    task = {
        "status": "completed",
        "completed_at": "2026-12-01T00:00:00.000Z",
        "response": {"category": "cat", "status_code": 200},
    }
    final = Final(tasks={TASK: task}, listed=[TASK], callback_logs={TASK: log})
    windows = [Window("kill -9 gateway-1", 10.0, 12.0, 22.0)]
    checks, numbers = check(journal, final, received, windows, crashed=[])
    return {c.name: c for c in checks}, numbers


def passed(checks: dict[str, Check], name_part: str) -> bool:
    (found,) = [c for name, c in checks.items() if name_part in name]
    return found.passed


def test_one_delivered_attempt_passes() -> None:
    checks, _ = run([attempt(1)], [log_entry(1, True)])
    assert all(c.passed for c in checks.values()), checks


def test_a_retry_after_a_500_passes() -> None:
    checks, _ = run(
        [attempt(1, "500"), attempt(2)],
        [log_entry(1, False, "the receiver answered 500, not 200"), log_entry(2, True)],
    )
    assert all(c.passed for c in checks.values()), checks


def test_a_retry_after_a_delivered_first_attempt_fails() -> None:
    checks, _ = run([attempt(1), attempt(2)], [log_entry(1, True), log_entry(2, True)])
    assert not passed(checks, "a retry exactly when")


def test_a_retry_after_an_interrupted_first_attempt_is_the_documented_exception() -> None:
    checks, numbers = run(
        [attempt(1), attempt(2)],
        [log_entry(1, False, "interrupted: the notifier stopped"), log_entry(2, True)],
    )
    assert passed(checks, "a retry exactly when")
    assert numbers["interrupted_first_attempts"] == {TASK: "receiver got attempt 1: 200"}


def test_a_third_attempt_or_none_fails() -> None:
    three, _ = run([attempt(1, "500"), attempt(2, "500"), attempt(2)], [log_entry(1, False)])
    none, _ = run([], [])
    assert not passed(three, "1 or 2 attempts")
    assert not passed(none, "1 or 2 attempts")


def test_503_outside_a_window_fails_inside_passes() -> None:
    inside, _ = run([attempt(1)], [log_entry(1, True)], [Answer(15.0, "create", 503)])
    outside, _ = run([attempt(1)], [log_entry(1, True)], [Answer(30.0, "claim", TRANSPORT_ERROR)])
    assert passed(inside, "503")
    assert not passed(outside, "503")


def test_a_500_fails() -> None:
    checks, _ = run([attempt(1)], [log_entry(1, True)], [Answer(15.0, "create", 500)])
    assert not passed(checks, "no 500")


def test_a_failed_first_attempt_without_its_retry_fails() -> None:
    checks, _ = run([attempt(1, "500")], [log_entry(1, False, "the receiver answered 500")])
    assert not passed(checks, "a retry exactly when")


def several(
    votes: dict[str, int], stored: list[tuple[int, bool]], submitted: list[int]
) -> dict[str, Check]:
    """A max_workers 3 task completed with `votes`, its answers as stored, and the
    workers told 200."""
    journal = Journal(created={0: TASK})
    journal.submitted[TASK].extend(submitted)
    task = {
        "status": "completed",
        "completed_at": "2026-12-01T00:00:00.000Z",
        "max_workers": 3,
        "response": {"category": "cat", "status_code": 200, "confidence": 0.9, "votes": votes},
    }
    final = Final(
        tasks={TASK: task},
        listed=[TASK],
        callback_logs={TASK: [log_entry(1, True)]},
        answers={TASK: stored},
    )
    checks, _ = check(journal, final, [attempt(1)], [], crashed=[])
    return {c.name: c for c in checks}


def test_a_several_worker_task_whose_votes_are_its_counted_answers_passes() -> None:
    checks = several({"cat": 2, "dog": 1}, [(0, True), (1, True), (2, True)], [0, 1, 2])
    assert all(c.passed for c in checks.values()), checks


def test_votes_other_than_the_counted_answers_fail() -> None:
    checks = several({"cat": 3}, [(0, True), (1, True), (2, False)], [0, 1, 2])
    assert not passed(checks, "votes are the counted answers")


def test_a_worker_answering_a_task_twice_fails() -> None:
    checks = several({"cat": 2}, [(0, True), (0, True)], [0, 0])
    assert not passed(checks, "votes are the counted answers")
    assert not passed(checks, "completed exactly once")


def test_an_answer_told_200_but_not_stored_fails() -> None:
    checks = several({"cat": 2}, [(0, True), (1, True)], [0, 1, 2])
    assert not passed(checks, "votes are the counted answers")
