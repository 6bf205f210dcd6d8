"""The load: customers creating tasks (retrying a 503 or a lost connection with the same
`unique_id`, as the contract lets them) and workers claiming and submitting (re-claiming
after a 503). Every HTTP answer is journaled with its time, for the 503 accounting."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import aiohttp

RETRY_PAUSE_SECONDS = 0.5  # a client's pause before it retries a 503 or a lost connection
TRANSPORT_ERROR = 0  # journaled status of a request that got no HTTP answer
REQUEST_SECONDS = 30  # a request without an answer by then is a transport error (a hang)


@dataclass(frozen=True)
class Answer:
    at: float  # time.monotonic() when it came
    operation: str  # create, claim, submit, get, ...
    status: int  # TRANSPORT_ERROR: no HTTP answer


@dataclass
class Journal:
    answers: list[Answer] = field(default_factory=list)
    created: dict[int, str] = field(default_factory=dict)  # task number -> task id
    create_conflicts: list[str] = field(default_factory=list)  # a unique_id gave two ids
    submitted: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    submit_unknown: set[str] = field(default_factory=set)  # 409 after a lost submit answer
    # task id -> the workers told 409 on it (a lost answer, or a task completed meanwhile)
    refused: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))

    def completed(self) -> int:
        return len(self.submitted)


class Api:
    """The gateways, as a load balancer shows them: a request that gets no answer or a
    503 is tried again on the next gateway."""

    def __init__(self, session: aiohttp.ClientSession, gateways: list[str], journal: Journal):
        self.session = session
        self.gateways = itertools.cycle(gateways)
        self.journal = journal

    async def call(
        self, operation: str, method: str, path: str, key: str, body: dict[str, Any] | None = None
    ) -> tuple[int, Any, str | None]:
        """The first answer that is not a 503 (or a lost connection): its status, its
        JSON body and the path of its `Link: rel="next"`."""
        auth = aiohttp.BasicAuth(key, "")
        timeout = aiohttp.ClientTimeout(REQUEST_SECONDS)
        while True:
            url = next(self.gateways) + path
            try:
                async with self.session.request(
                    method, url, json=body, auth=auth, timeout=timeout
                ) as response:
                    text = await response.text()
                    self.journal.answers.append(
                        Answer(time.monotonic(), operation, response.status)
                    )
                    if response.status != 503:
                        payload = json.loads(text) if text else None
                        link = response.links.get("next", {}).get("url")
                        return response.status, payload, link.path_qs if link else None
            except (aiohttp.ClientError, TimeoutError, OSError, ValueError):
                self.journal.answers.append(Answer(time.monotonic(), operation, TRANSPORT_ERROR))
            await asyncio.sleep(RETRY_PAUSE_SECONDS)


# Every SEVERAL_EVERY-th task is answered by SEVERAL_WORKERS workers (docs/reference/contract.md
# §10); the others by one, as before there were several.
SEVERAL_EVERY = 2
SEVERAL_WORKERS = 3


def task_body(run_id: str, number: int, callback_url: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "callback_url": callback_url,
        "instruction": f"Is chaos task {number} a cat or a dog?",
        "attachment_type": "text",
        "attachment": f"chaos task {number}",
        "categories": ["cat", "dog"],
        "unique_id": f"{run_id}-{number}",
    }
    if number % SEVERAL_EVERY == 0:
        body["max_workers"] = SEVERAL_WORKERS
    return body


def answer_of(worker: int, task: dict[str, Any]) -> str:
    """A worker's answer to a task: the same every time it is asked (a retried submit
    says the same), and not the same for every worker (votes split)."""
    digest = hashlib.sha256(f"{worker}:{task['task_id']}".encode()).digest()
    categories = task["params"]["categories"]
    return str(categories[digest[0] % len(categories)])


async def create_tasks(
    api: Api, key: str, run_id: str, callback_url: str, count: int, rate: float, clients: int
) -> None:
    """`count` tasks at about `rate` a second, from `clients` concurrent customers; each
    is retried until it is answered (a 500 is journaled and retried too)."""
    numbers = iter(range(count))
    started = time.monotonic()

    async def customer() -> None:
        for number in numbers:
            # Pacing: task n is not sent before started + n / rate.
            await asyncio.sleep(max(0.0, started + number / rate - time.monotonic()))
            body = task_body(run_id, number, callback_url)
            while True:
                status, payload, _ = await api.call(
                    "create", "POST", "/v1/task/categorize", key, body
                )
                if status == 200:
                    break
                await asyncio.sleep(RETRY_PAUSE_SECONDS)
            known = api.journal.created.setdefault(number, payload["task_id"])
            if known != payload["task_id"]:
                api.journal.create_conflicts.append(body["unique_id"])

    await asyncio.gather(*(customer() for _ in range(clients)))


async def work(api: Api, token: str, worker: int, stop: asyncio.Event) -> None:
    """Claim, submit its answer, again, until `stop` is set."""
    while not stop.is_set():
        status, task, _ = await api.call("claim", "POST", "/v1/work/claim", token)
        if status != 200:  # 204: nothing to do yet
            await asyncio.sleep(0.2)
            continue
        task_id = task["task_id"]
        category = {"category": answer_of(worker, task)}
        status, _, _ = await api.call(
            "submit", "POST", f"/v1/work/{task_id}/submit", token, category
        )
        if status == 200:
            api.journal.submitted[task_id].append(worker)
        elif status == 409:
            # Our earlier submit may have landed before its answer was lost, or others'
            # answers completed the task meanwhile; the final check reads the task.
            api.journal.submit_unknown.add(task_id)
            api.journal.refused[task_id].add(worker)
