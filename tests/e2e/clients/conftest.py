"""The client libraries and their guide, tested against the running services.

Every client (Python, JavaScript, Ruby), the examples of docs/user-guide/clients.md and
every curl command of the README talk to the e2e `stack`: the real gateway, task-store
and notifier over real RabbitMQ and MongoDB. The retries meet the gateway's real 429
(a stack of its own with a low RATE_LIMIT_PER_SECOND) and real 503s (a gateway that
gives the task-store 1 ms; a task-store stopped). The JavaScript and Ruby suites run in
their own runners (`node --test`, minitest) as subprocesses; they read where the stack
is from these variables, the same ones to set when running them by hand:

    HUMANTASK_URL                        the gateway, e.g. http://localhost:8080
    HUMANTASK_API_KEY                    a customer's API key
    HUMANTASK_METRICS_URL                the gateway's HEALTH_PORT (/metrics)
    HUMANTASK_CALLBACK_SECRET            that customer's callback_secret (round trip)
    HUMANTASK_WORKER_TOKENS              comma-separated worker tokens   (round trip)
    HUMANTASK_UNAVAILABLE_URL            a gateway that answers 503, and
    HUMANTASK_UNAVAILABLE_METRICS_URL    its /metrics
    HUMANTASK_RATE_LIMITED_URL           a gateway with a low rate limit,
    HUMANTASK_RATE_LIMITED_API_KEY       a customer's key there, and
    HUMANTASK_RATE_LIMITED_METRICS_URL   its /metrics

These tests live under tests/e2e so that they share its one `stack` per session.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Stack, start_service
from tests.e2e.isolated import isolated_stack
from tests.support.services import free_port

ROOT = Path(__file__).resolve().parents[3]
CLIENTS = ROOT / "clients"
# Spare workers let a round trip reach its task past older pending tasks of other tests
# (the pool is FIFO): each holds one of them until the round trip is done.
WORKER_TOKEN_COUNT = 3
# Where tasks go that no test completes: a closed port on this machine, never the network.
CLOSED_PORT = "http://127.0.0.1:9"
NOWHERE = f"{CLOSED_PORT}/never-called"
SEED_CALLBACK_HOST = "http://www.example.com"


def local_callbacks(code: str) -> str:
    """README code with the v1 examples' www.example.com callbacks on a closed local port instead:
    no callback of a test ever leaves this machine."""
    return code.replace(SEED_CALLBACK_HOST, CLOSED_PORT)


# The runners' own closing lines, echoed at the end of the pytest run.
_SUITE_SUMMARIES: list[tuple[str, list[str]]] = []
_SUMMARY_LINE = re.compile(
    r"^(ℹ (tests|suites|pass|fail|cancelled|skipped|todo) \d+"
    r"|\d+ runs, \d+ assertions, \d+ failures, \d+ errors, \d+ skips)$"
)


# Low enough that a client meets the gateway's 429 at will: one request every two
# seconds per key (the gateway's Retry-After is then 1 or 2).
RATE_LIMIT_PER_SECOND = 0.5


def basic(key: str) -> tuple[str, str]:
    return (key, "")


def metrics_url(stack: Stack, process: str = "gateway") -> str:
    """Where a process of `stack` serves /metrics: its HEALTH_PORT."""
    return f"http://127.0.0.1:{stack.processes[process].env['HEALTH_PORT']}"


def answered(metrics: str, **labels: str) -> float:
    """How many requests the gateway answered with these labels (method, route, status),
    from its own /metrics."""
    text = httpx.get(f"{metrics}/metrics", timeout=30).text
    total = 0.0
    for line in text.splitlines():
        # Label values may hold braces themselves (route="/v1/task/{task_id}").
        match = re.match(
            r'humantask_gateway_http_requests_total\{((?:\w+="[^"]*",?)*)\} (\S+)$', line
        )
        if match is None:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match[1]))
        if all(found.get(name) == value for name, value in labels.items()):
            total += float(match[2])
    return total


def spend_rate_limit(gateway_url: str, key: str) -> None:
    """Requests with `key` until the gateway answers one 429: its rate limit is spent."""
    with httpx.Client(base_url=gateway_url, auth=basic(key), timeout=30) as http:
        for _ in range(1000):
            if http.get("/v1/tasks", params={"limit": "1"}).status_code == 429:
                return
    raise AssertionError("no 429 after 1000 requests: is RATE_LIMIT_PER_SECOND low there?")


def cancel_pending_tasks(gateway_url: str, api_key: str) -> None:
    """Leave no pending task behind: the worker pool is shared by every test."""
    with httpx.Client(base_url=gateway_url, auth=basic(api_key), timeout=30) as http:
        url: str | None = "/v1/tasks?status=pending"
        while url:
            page = http.get(url)
            page.raise_for_status()
            for task in page.json():
                http.post(f"/v1/task/{task['task_id']}/cancel").raise_for_status()
            url = page.links.get("next", {}).get("url")


@pytest.fixture
def client_customer(stack: Stack) -> Iterator[dict[str, Any]]:
    """A new customer (`api_key`, `callback_secret`) whose pending tasks are canceled after."""
    customer = stack.admin("customers", "create", "--name", "client library tests")
    yield customer
    cancel_pending_tasks(stack.gateway_url, customer["api_key"])


@pytest.fixture(scope="session")
def unavailable_gateway_process(stack: Stack) -> Iterator[tuple[str, str]]:
    """A real gateway that gives the task-store 1 ms to answer: every API call is a 503.
    Its API URL, and the URL of its HEALTH_PORT (where its /metrics are)."""
    health_port = free_port()
    process, url = start_service(
        "humantask-gateway",
        {**stack.env, "RPC_TIMEOUT_SECONDS": "0.001", "HEALTH_PORT": str(health_port)},
        "GATEWAY_PORT",
    )
    try:
        yield url, f"http://127.0.0.1:{health_port}"
    finally:
        process.terminate(timeout=30)
    assert process.returncode == 0, process.log_tail()


@pytest.fixture(scope="session")
def unavailable_gateway(unavailable_gateway_process: tuple[str, str]) -> str:
    return unavailable_gateway_process[0]


@pytest.fixture(scope="session")
def rate_limited_stack(mongodb_url: str, test_session_id: str, _containers: Any) -> Iterator[Stack]:
    """A gateway and task-store of their own whose gateway allows RATE_LIMIT_PER_SECOND
    requests a second per key. Nothing cleans its pool: no worker claims there."""
    with isolated_stack(
        "client_rate_limit",
        mongodb_url=mongodb_url,
        session_id=test_session_id,
        containers=_containers,
        RATE_LIMIT_PER_SECOND=RATE_LIMIT_PER_SECOND,
    ) as stack:
        yield stack


@pytest.fixture(scope="session")
def rate_limited_env(rate_limited_stack: Stack) -> dict[str, str]:
    """The variables of the rate-limited gateway for the JavaScript and Ruby suites."""
    customer = rate_limited_stack.admin("customers", "create", "--name", "rate limited")
    return {
        "HUMANTASK_RATE_LIMITED_URL": rate_limited_stack.gateway_url,
        "HUMANTASK_RATE_LIMITED_API_KEY": customer["api_key"],
        "HUMANTASK_RATE_LIMITED_METRICS_URL": metrics_url(rate_limited_stack),
    }


@pytest.fixture(scope="session")
def unavailable_env(unavailable_gateway_process: tuple[str, str]) -> dict[str, str]:
    url, health = unavailable_gateway_process
    return {"HUMANTASK_UNAVAILABLE_URL": url, "HUMANTASK_UNAVAILABLE_METRICS_URL": health}


@pytest.fixture(scope="session")
def unavailable_gateway_health(unavailable_gateway_process: tuple[str, str]) -> str:
    return unavailable_gateway_process[1]


def round_trip_missing(stack: Stack) -> str | None:
    """Why a worker cannot complete a task and have its callback logged here, if so."""
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as http:
        if http.post("/v1/work/claim").status_code == 404:
            return "the worker API is not there yet: POST /v1/work/claim answers 404"
        customer = stack.admin("customers", "create", "--name", "probe")
        log = http.get(f"/v1/task/{'0' * 24}/callbacks", auth=basic(customer["api_key"]))
        if log.status_code in (404, 405) and "endpoint" in log.text:
            return "the callback log is not there yet: GET /v1/task/{id}/callbacks is no endpoint"
    if stack.env.get("CALLBACK_ALLOW_PRIVATE_NETWORKS", "").lower() != "true":
        return "the e2e stack does not set CALLBACK_ALLOW_PRIVATE_NETWORKS=true"
    return None


@pytest.fixture(scope="session")
def worker_tokens(stack: Stack) -> list[str]:
    """Tokens of new workers; skips the round trip while the product cannot do one."""
    reason = round_trip_missing(stack)
    if reason:
        pytest.skip(reason)
    return [
        stack.admin("workers", "create", "--name", f"client tests {n}")["token"]
        for n in range(WORKER_TOKEN_COUNT)
    ]


async def complete_as_worker(
    gateway_url: str, tokens: list[str], task_id: str, category: str
) -> Any:
    """Claim `task_id` and submit `category`, as the workbench would; the submit's body.

    The pool is FIFO: when an older pending task comes first, that worker keeps holding
    it and the next worker claims; the held tasks are released at the end.
    """
    held: list[tuple[str, str]] = []
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as http:
        try:
            for token in tokens:
                claim = await http.post("/v1/work/claim", auth=basic(token))
                assert claim.status_code == 200, (
                    f"{task_id} not claimed: {claim.status_code} {claim.text}"
                )
                if claim.json()["task_id"] == task_id:
                    submit = await http.post(
                        f"/v1/work/{task_id}/submit", auth=basic(token), json={"category": category}
                    )
                    assert submit.status_code == 200, submit.text
                    return submit.json()
                held.append((token, claim.json()["task_id"]))
            raise AssertionError(f"older pending tasks fill every spare worker: {held}")
        finally:
            for token, other in held:
                await http.post(f"/v1/work/{other}/release", auth=basic(token))


def suite_env(stack: Stack, customer: dict[str, Any], **extra: str) -> dict[str, str]:
    """The environment a JavaScript or Ruby suite reads (see this module's docstring)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("HUMANTASK_")}
    env.pop("SCALE_API_URL", None)
    env.update(
        HUMANTASK_URL=stack.gateway_url,
        HUMANTASK_API_KEY=customer["api_key"],
        HUMANTASK_METRICS_URL=metrics_url(stack),
        HUMANTASK_CALLBACK_SECRET=customer["callback_secret"],
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    env.update(extra)
    return env


def run_suite(name: str, args: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Run a client's own test runner; its output, and a failure that quotes it."""
    result = subprocess.run(
        args,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        stdin=subprocess.DEVNULL,
    )
    output = result.stdout + result.stderr
    summary = [line.strip() for line in output.splitlines() if _SUMMARY_LINE.match(line.strip())]
    _SUITE_SUMMARIES.append((name, summary))
    print(output)  # shown by pytest when the test fails
    assert result.returncode == 0, f"{name} failed (exit {result.returncode}):\n{output}"
    assert summary, f"{name}: no summary line from its runner:\n{output}"
    return output


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _SUITE_SUMMARIES:
        terminalreporter.section("client library suites (their own runners)")
        for name, summary in _SUITE_SUMMARIES:
            terminalreporter.write_line(f"{name}: {'; '.join(summary) or 'no summary'}")
