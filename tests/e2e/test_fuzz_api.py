"""The gateway fuzzed against its published contract, `contracts/openapi.yaml`.

schemathesis generates requests from the document (valid ones, and invalid ones where the
schema says what is invalid), sends them with a valid customer key or worker token as each
operation's security scheme asks (`fuzz/schemathesis.toml`), and runs all its checks on
every answer: no 5xx, only documented statuses and content types, bodies and headers that
match their schemas, invalid input refused, valid input accepted, credentials enforced.

It runs the `schemathesis` command (its pytest plugin does not run under pytest 9) on a
stack of its own: claims lease from the global pool, and the callback log needs a
notifier. Each operation gets `FUZZ_MAX_EXAMPLES` examples (default 20) from the fixed
seed `FUZZ_SEED`, derandomized, so that a CI run is repeatable. A longer fuzz, against
a stack of your own (`make run-local`):

    FUZZ_CUSTOMER_KEY=<api key> FUZZ_WORKER_TOKEN=<token> .venv/bin/schemathesis \\
        --config-file tests/e2e/fuzz/schemathesis.toml run contracts/openapi.yaml \\
        --url http://localhost:8080 --max-examples 1000 --seed $RANDOM

(the stack with `RATE_LIMIT_PER_SECOND=0`; a failure prints the `curl` that reproduces it).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import BIN, Stack, start_service
from .isolated import isolated_stack

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
CONTRACT = REPO / "contracts" / "openapi.yaml"
CONFIG = Path(__file__).parent / "fuzz" / "schemathesis.toml"
REPORTS = REPO / "test-artifacts" / "fuzz"
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "20"))
SEED = int(os.environ.get("FUZZ_SEED", "14"))
# The rate-limited gateway's limit: low enough that the fuzz meets its 429.
RATE_LIMITED_PER_SECOND = 5


@pytest.fixture(scope="module")
def fuzz_stack(mongodb_url: str, test_session_id: str, _containers: Any) -> Iterator[Stack]:
    with isolated_stack(
        "fuzz",
        mongodb_url=mongodb_url,
        session_id=test_session_id,
        containers=_containers,
        RATE_LIMIT_PER_SECOND=0,  # one key sends far more than 100 requests a second
        WORKER_RATE_LIMIT_PER_SECOND=0,
    ) as stack:
        notifier, url = start_service("humantask-notifier", stack.env, "HEALTH_PORT")
        stack.processes["notifier"], stack.health_urls["notifier"] = notifier, url
        yield stack


def fuzz(stack: Stack, gateway_url: str, name: str, max_examples: int) -> None:
    """Run schemathesis against `gateway_url` as a new customer and a new worker."""
    credentials = {
        "FUZZ_CUSTOMER_KEY": stack.admin("customers", "create", "--name", name)["api_key"],
        "FUZZ_WORKER_TOKEN": stack.admin("workers", "create", "--name", name)["token"],
    }
    command = [
        str(BIN / "schemathesis"),
        "--config-file",
        str(CONFIG),
        "--no-color",
        "run",
        str(CONTRACT),
        "--url",
        gateway_url,
        "--max-examples",
        str(max_examples),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--report",
        "junit",
        "--report-junit-path",
        str(REPORTS / f"{name}.xml"),
    ]
    result = subprocess.run(
        command,
        env={**os.environ, **credentials},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-20_000:] + result.stderr[-5_000:]


def test_the_gateway_keeps_its_contract(fuzz_stack: Stack) -> None:
    fuzz(fuzz_stack, fuzz_stack.gateway_url, "fuzz", MAX_EXAMPLES)


def test_the_gateway_keeps_its_contract_over_the_rate_limit(fuzz_stack: Stack) -> None:
    """A second gateway on the same stack whose rate limit the fuzz runs into: its 429s
    must be documented too."""
    gateway, url = start_service(
        "humantask-gateway",
        {**fuzz_stack.env, "RATE_LIMIT_PER_SECOND": str(RATE_LIMITED_PER_SECOND)},
        "GATEWAY_PORT",
    )
    try:
        fuzz(fuzz_stack, url, "fuzz-rate-limited", max(MAX_EXAMPLES // 4, 5))
    finally:
        gateway.terminate(timeout=30)
    assert gateway.returncode == 0, gateway.log_tail()
