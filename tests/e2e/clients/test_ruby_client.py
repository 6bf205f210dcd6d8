"""The Ruby client's own tests (minitest, clients/ruby/test) against the stack."""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest

from tests.e2e.conftest import Stack

from .conftest import CLIENTS, run_suite, suite_env

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        shutil.which("ruby") is None and os.environ.get("CI") != "true",
        reason="needs Ruby (Debian: apt-get install ruby; .ci/run does)",
    ),
]

RUBY = CLIENTS / "ruby"
MINITEST = ["ruby", "-Ilib", "-Itest"]


def test_ruby_client_offline() -> None:
    """Retries, errors, pages and configuration against a scripted local server (no stack)."""
    output = run_suite(
        "ruby clients/ruby/test/test_offline.rb",
        [*MINITEST, "test/test_offline.rb", "--verbose"],
        RUBY,
        dict(os.environ),
    )
    assert ", 0 skips" in output, output


def test_ruby_client(
    stack: Stack,
    client_customer: dict[str, Any],
    unavailable_env: dict[str, str],
    rate_limited_env: dict[str, str],
) -> None:
    env = suite_env(stack, client_customer, **unavailable_env, **rate_limited_env)
    output = run_suite(
        "ruby clients/ruby/test/test_client.rb",
        [*MINITEST, "test/test_client.rb", "--verbose"],
        RUBY,
        env,
    )
    assert ", 0 skips" in output, output


def test_ruby_client_round_trip(
    stack: Stack, client_customer: dict[str, Any], worker_tokens: list[str]
) -> None:
    env = suite_env(stack, client_customer, HUMANTASK_WORKER_TOKENS=",".join(worker_tokens))
    output = run_suite(
        "ruby clients/ruby/test/test_round_trip.rb",
        [*MINITEST, "test/test_round_trip.rb", "--verbose"],
        RUBY,
        env,
    )
    assert ", 0 skips" in output, output
