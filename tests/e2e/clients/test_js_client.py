"""The JavaScript client's own tests (`node --test`, clients/js/test) against the stack.

They use the official Standard Webhooks library (`standardwebhooks`, the client's one
devDependency, pinned in package-lock.json), installed here with `npm ci` when missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

import pytest

from tests.e2e.conftest import Stack

from .conftest import CLIENTS, run_suite, suite_env

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        shutil.which("node") is None and os.environ.get("CI") != "true",
        reason="needs Node.js 20 or newer",
    ),
]

JS = CLIENTS / "js"
NODE_TEST = ["node", "--test", "--test-reporter=spec"]


@pytest.fixture(scope="module", autouse=True)
def js_dev_dependencies() -> None:
    if (JS / "node_modules" / "standardwebhooks").is_dir():
        return
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"],
        cwd=JS,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def test_js_callback_helpers() -> None:
    """verifyCallback, sign and parseCallback against the official library (no stack)."""
    output = run_suite(
        "node --test clients/js/test/callbacks.test.js",
        [*NODE_TEST, "test/callbacks.test.js"],
        JS,
        dict(os.environ),
    )
    assert "ℹ skipped 0" in output, output


def test_js_client_offline() -> None:
    """Retries, errors, pages and configuration against a scripted local server (no stack)."""
    output = run_suite(
        "node --test clients/js/test/offline.test.js",
        [*NODE_TEST, "test/offline.test.js"],
        JS,
        dict(os.environ),
    )
    assert "ℹ skipped 0" in output, output


def test_js_client(
    stack: Stack,
    client_customer: dict[str, Any],
    unavailable_env: dict[str, str],
    rate_limited_env: dict[str, str],
) -> None:
    env = suite_env(stack, client_customer, **unavailable_env, **rate_limited_env)
    output = run_suite(
        "node --test clients/js/test/client.test.js", [*NODE_TEST, "test/client.test.js"], JS, env
    )
    assert "ℹ skipped 0" in output, output


def test_js_client_round_trip(
    stack: Stack, client_customer: dict[str, Any], worker_tokens: list[str]
) -> None:
    env = suite_env(stack, client_customer, HUMANTASK_WORKER_TOKENS=",".join(worker_tokens))
    output = run_suite(
        "node --test clients/js/test/round_trip.test.js",
        [*NODE_TEST, "test/round_trip.test.js"],
        JS,
        env,
    )
    assert "ℹ skipped 0" in output, output
