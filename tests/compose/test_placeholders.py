"""`.env` copied from `.env.example` and left as it is: `docker compose up` refuses to
start, names every password still `change-me`, and nothing that keeps a password (the
broker's definitions, the database's data) has started; a service given such a password
refuses it too."""

from __future__ import annotations

import pytest

from humantask_shared.core.placeholders import PLACEHOLDER

from .conftest import ComposeStack

# What keeps a password once started: the broker's users, the database's data.
KEEPERS = ("broker-definitions", "rabbitmq", "mongodb", "documentdb", "database-users")


def _never_started(container: dict) -> bool:
    return str(container["State"]["StartedAt"]).startswith("0001-01-01")


def test_up_names_every_password_left_as_the_placeholder(stack: ComposeStack) -> None:
    check = stack.container("check-passwords")
    assert (check["State"]["Status"], check["State"]["ExitCode"]) == ("exited", 1)
    logs = stack.compose("logs", "--no-log-prefix", "check-passwords")
    left = sorted(name for name, value in stack.settings.items() if value == PLACEHOLDER)
    expected = [name for name in left if f"${{{name}:" in stack.compose_text]
    assert expected, "the stack's files read no password of .env"
    for name in expected:
        assert f"{name} is still the placeholder 'change-me' of .env.example" in logs, logs


@pytest.mark.parametrize("service", KEEPERS)
def test_nothing_that_keeps_a_password_started(stack: ComposeStack, service: str) -> None:
    for container in stack.containers_of(service):
        assert _never_started(container), (service, container["State"])


@pytest.mark.parametrize("service", ["taskstore", "notifier", "gateway"])
def test_a_service_refuses_the_placeholder_itself(stack: ComposeStack, service: str) -> None:
    """Started on its own (no dependencies), with the URLs .env.example gives it."""
    output = stack.compose(
        "run", "--rm", "--no-deps", "-T", service, check=False, timeout=120, stderr=True
    )
    assert "is still the placeholder 'change-me' of .env.example" in output, output
    assert "the password in AMQP_URL" in output, output
