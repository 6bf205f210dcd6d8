"""The customers' callback receiver: a real aiohttp server on loopback that records
every attempt it gets and answers 200, sometimes 500, sometimes too slowly (after the
notifier's timeout). Which answer a (task, attempt) gets follows from a hash of the two,
so a run is reproducible and the checker knows what each attempt was told."""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from urllib.parse import parse_qs

from aiohttp import web

from bench.stack import free_port

FAIL_PERCENT = 5  # answered 500
SLOW_PERCENT = 3  # answered 200, but only after the notifier's timeout


@dataclass(frozen=True)
class Received:
    task_id: str
    attempt: int
    webhook_id: str
    at: float  # time.monotonic()
    answer: str  # "200", "500" or "slow"
    completed_at: str
    category: str


def answer_for(task_id: str, attempt: int) -> str:
    draw = int(hashlib.sha256(f"{task_id}:{attempt}".encode()).hexdigest()[:8], 16) % 100
    if draw < FAIL_PERCENT:
        return "500"
    if draw < FAIL_PERCENT + SLOW_PERCENT:
        return "slow"
    return "200"


class Receiver:
    def __init__(self, callback_timeout_seconds: float) -> None:
        self.slow_seconds = callback_timeout_seconds + 1.5
        self.received: list[Received] = []
        self.runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        form = parse_qs((await request.read()).decode())
        task_id = request.headers.get("X-Callback-Task-Id", "")
        attempt = int(request.headers.get("X-Callback-Attempt", "0"))
        answer = answer_for(task_id, attempt)
        self.received.append(
            Received(
                task_id=task_id,
                attempt=attempt,
                webhook_id=request.headers.get("webhook-id", ""),
                at=time.monotonic(),
                answer=answer,
                completed_at=form.get("task[completed_at]", [""])[0],
                category=form.get("response[category]", [""])[0],
            )
        )
        if answer == "500":
            return web.Response(status=500, text="chaos says no")
        if answer == "slow":
            await asyncio.sleep(self.slow_seconds)
        return web.Response(text="ok")

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/callback", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", port, backlog=1024).start()
        return f"http://127.0.0.1:{port}/callback"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
