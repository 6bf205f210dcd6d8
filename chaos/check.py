"""The promises, checked against what the clients, the receiver and the API saw."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from chaos.load import TRANSPORT_ERROR, Journal
from chaos.receiver import Received

# What a client may be told, by operation, besides a 503 inside a window.
EXPECTED = {
    "create": {200},
    "claim": {200, 204},
    "submit": {200, 409},
    "get": {200},
    "list": {200},
    "callbacks": {200},
}


@dataclass(frozen=True)
class Window:
    """From a kill to the restarted process's readiness, plus the grace."""

    what: str
    start: float
    ready: float
    end: float

    def covers(self, at: float) -> bool:
        return self.start <= at <= self.end


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


@dataclass
class Final:
    """The system's state at the end, read through the customer API."""

    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)  # GET /v1/task/{id}
    missing: list[str] = field(default_factory=list)  # GET answered 404
    listed: list[str] = field(default_factory=list)  # GET /v1/tasks, every page
    callback_logs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # task id -> its answers as the task-store keeps them: (worker number, counted), read
    # from the database (the API shows no worker)
    answers: dict[str, list[tuple[int, bool]]] = field(default_factory=dict)


def settled(log: list[dict[str, Any]]) -> bool:
    """No further attempt can come: one was delivered, or the second is logged."""
    return any(entry["delivered"] or entry["attempt"] == 2 for entry in log)


def is_interrupted(entry: dict[str, Any]) -> bool:
    return str(entry.get("error") or "").startswith("interrupted")


def check(
    journal: Journal,
    final: Final,
    received: list[Received],
    windows: list[Window],
    crashed: list[str],
) -> tuple[list[Check], dict[str, Any]]:
    checks: list[Check] = []
    created = set(journal.created.values())

    # 1. every create answered 200 exists, once
    checks.append(
        Check(
            "every create answered 200 exists",
            not final.missing and len(final.tasks) == len(created),
            f"{len(created)} created, {len(final.tasks)} found, {len(final.missing)} missing"
            + (f" (e.g. {final.missing[:5]})" if final.missing else ""),
        )
    )
    extra = set(final.listed) - created
    duplicates = len(final.listed) - len(set(final.listed))
    checks.append(
        Check(
            "no task created twice (retried creates kept their unique_id's task)",
            not extra and not duplicates and not journal.create_conflicts,
            f"{len(final.listed)} listed, {len(extra)} not from a 200, {duplicates} listed twice, "
            f"{len(journal.create_conflicts)} unique_ids answered with two ids",
        )
    )

    # 2. every task completed exactly once, each answered by at most its max_workers
    # workers, none of them twice
    not_completed = [t for t, task in final.tasks.items() if task.get("status") != "completed"]
    twice = [
        t
        for t, workers in journal.submitted.items()
        if len(workers) != len(set(workers))
        or len(workers) > final.tasks.get(t, {}).get("max_workers", 1)
    ]
    bodies: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for r in received:
        bodies[r.task_id].add((r.completed_at, r.category))
    for task_id, task in final.tasks.items():
        if task.get("status") == "completed":
            bodies[task_id].add((task["completed_at"], task["response"]["category"]))
    changed = [t for t, seen in bodies.items() if len(seen) > 1]
    checks.append(
        Check(
            "every task completed exactly once",
            not not_completed and not twice and not changed,
            f"{len(created) - len(not_completed)} completed, {len(not_completed)} not; "
            f"{len(twice)} with a worker answered 200 twice or more 200s than max_workers; "
            f"{len(changed)} with two completions "
            f"(completed_at or category differ); {len(journal.submit_unknown)} submits "
            "answered 409 after a lost answer (completed by the earlier one)",
        )
    )

    # 2b. several workers (docs/reference/contract.md §10): each completed task's votes are its
    # counted answers; no worker answered a task twice; every answer told 200 is there
    several = {t: task for t, task in final.tasks.items() if task.get("max_workers", 1) > 1}
    bad_votes, answered_twice, lost_answers, unread, shaped = [], [], [], [], []
    sizes = Counter(len(a) for t, a in final.answers.items() if t in several)
    for task_id, task in final.tasks.items():
        response = task.get("response") or {}
        expected = {"category", "status_code"}
        if task_id in several:
            expected |= {"confidence", "votes"}
        if response and set(response) != expected:
            shaped.append(task_id)
    for task_id, task in several.items():
        stored = final.answers.get(task_id)
        if stored is None:
            unread.append(task_id)
            continue
        workers = [worker for worker, _ in stored]
        counted = sum(1 for _, is_counted in stored if is_counted)
        votes = (task.get("response") or {}).get("votes") or {}
        if sum(votes.values()) != counted:
            bad_votes.append(task_id)
        if len(workers) != len(set(workers)):
            answered_twice.append(task_id)
        if not set(journal.submitted.get(task_id, [])) <= set(workers):
            lost_answers.append(task_id)
    checks.append(
        Check(
            "several-worker tasks: votes are the counted answers, no worker answered twice",
            not (bad_votes or answered_twice or lost_answers or unread or shaped),
            f"{len(several)} with max_workers > 1; {len(bad_votes)} whose votes are not their "
            f"counted answers, {len(answered_twice)} answered twice by one worker, "
            f"{len(lost_answers)} missing an answer told 200, {len(unread)} not read back; "
            f"{len(shaped)} responses not of their shape (confidence and votes only with "
            f"several workers); answers per several-worker task: {dict(sorted(sizes.items()))}",
        )
    )

    # 3. callbacks: 1 or 2 attempts, never 3; a retry exactly after a failed first
    by_task: dict[str, list[Received]] = defaultdict(list)
    for r in received:
        by_task[r.task_id].append(r)
    zero, three, repeated, unjustified, not_retried, unknown = [], [], [], [], [], []
    exceptions: dict[str, str] = {}  # task id -> what the receiver said to attempt 1
    retried_after: Counter[str] = Counter()
    for task_id in created:
        attempts = by_task.get(task_id, [])
        log = {entry["attempt"]: entry for entry in final.callback_logs.get(task_id, [])}
        seen = Counter(r.attempt for r in attempts)
        if not attempts:
            zero.append(task_id)
        if len(attempts) > 2 or any(n not in (1, 2) for n in seen):
            three.append(task_id)
        if any(count > 1 for count in seen.values()):
            repeated.append(task_id)
        first = log.get(1)
        if first is not None and not first["delivered"] and 2 not in log:
            not_retried.append(task_id)
        if 2 not in seen:
            continue
        if first is None or first["delivered"]:
            unjustified.append(task_id)
        elif is_interrupted(first):
            told = next((r.answer for r in attempts if r.attempt == 1), "nothing")
            exceptions[task_id] = f"receiver got attempt 1: {told}"
            retried_after["interrupted (documented case)"] += 1
        else:
            told = next((r.answer for r in attempts if r.attempt == 1), "nothing")
            retried_after[
                f"receiver said {told}, log: {first['error'] or first['status_code']}"[:90]
            ] += 1
    for r in received:
        if r.task_id not in created:
            unknown.append(r.task_id)
    checks.append(
        Check(
            "every completed task's receiver got 1 or 2 attempts, never 3",
            not zero and not three and not repeated and not unknown,
            f"{len(zero)} with none, {len(three)} with 3 or more, {len(repeated)} with an "
            f"attempt number twice, {len(unknown)} callbacks for tasks nobody created",
        )
    )
    checks.append(
        Check(
            "a retry exactly when the first attempt failed (or was interrupted)",
            not unjustified and not not_retried,
            f"{sum(retried_after.values())} retried, {len(unjustified)} without a failed first "
            f"attempt in the log, {len(not_retried)} failed first attempts never retried; "
            f"interrupted first attempts (documented): {len(exceptions)}",
        )
    )

    # 4. no 500, nothing unexpected, 503 only while something was down
    statuses = Counter((a.operation, a.status) for a in journal.answers)
    server_errors = sum(n for (_, status), n in statuses.items() if status >= 500 and status != 503)
    checks.append(
        Check("no 500", server_errors == 0, f"{server_errors} answers 5xx other than 503")
    )
    unexpected = {
        f"{op} {status}": n
        for (op, status), n in statuses.items()
        if status not in EXPECTED.get(op, set()) | {503, TRANSPORT_ERROR} and status < 500
    }
    checks.append(
        Check("no unexpected status", not unexpected, str(unexpected) if unexpected else "none")
    )
    outside = [
        a
        for a in journal.answers
        if a.status in (503, TRANSPORT_ERROR) and not any(w.covers(a.at) for w in windows)
    ]
    n503 = sum(1 for a in journal.answers if a.status == 503)
    nlost = sum(1 for a in journal.answers if a.status == TRANSPORT_ERROR)
    checks.append(
        Check(
            "503 (or no answer) only while something was down",
            not outside,
            f"{n503} 503s and {nlost} requests without an answer, {len(outside)} outside the "
            "windows"
            + (f": {Counter(f'{a.operation} {a.status}' for a in outside)}" if outside else ""),
        )
    )
    checks.append(
        Check(
            "no service exited unless killed",
            not crashed,
            ", ".join(crashed) if crashed else "all six copies running at the end",
        )
    )

    numbers = {
        "tasks_created": len(created),
        "tasks_completed": len(created) - len(not_completed),
        "several_worker_tasks": len(several),
        "callback_attempts": len(received),
        "tasks_with_2_attempts": sum(1 for a in by_task.values() if len(a) == 2),
        "retried_after": dict(retried_after),
        "interrupted_first_attempts": exceptions,
        "answers": {
            f"{op} {status or 'no answer'}": n for (op, status), n in sorted(statuses.items())
        },
        "receiver_answers": dict(Counter(r.answer for r in received)),
    }
    return checks, numbers
