"""Throwaway RabbitMQ users with the deployment's permissions (`broker_definitions`).

    with broker_users(amqp_url, "perm") as users:
        users.url("gateway")     # amqp://<vhost>-gateway:<password>@host:port/<vhost>
        users.name("notifier")

Imports the very definitions docker-compose.yml loads at boot (`rabbitmqctl
import_definitions`), into a vhost of their own with users named after it (user names
are global, and other test sessions may run on the same broker), and deletes both
afterwards. Needs rabbitmqctl next to the broker (root, as on CI); elsewhere the test
is skipped (failed on CI).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
from conftest import _host_port, rabbitmqctl_command  # tests/conftest.py

from humantask_shared.core.broker_definitions import SERVICE_PERMISSIONS, definitions


@dataclass(frozen=True)
class BrokerUsers:
    base_url: str
    vhost: str
    names: dict[str, str]
    passwords: dict[str, str]

    def name(self, service: str) -> str:
        return self.names[service]

    def url(self, service: str) -> str:
        parts = urlsplit(self.base_url)
        host, port = _host_port(self.base_url, 5672)
        netloc = f"{quote(self.names[service], safe='')}:{self.passwords[service]}@{host}:{port}"
        return urlunsplit((parts.scheme, netloc, "/" + quote(self.vhost, safe=""), "", ""))

    def service_env(self, service: str) -> dict[str, str]:
        """AMQP_URL for `service`, and who the receivers' allow-lists name."""
        return {
            "AMQP_URL": self.url(service),
            "GATEWAY_BROKER_USER": self.names["gateway"],
            "NOTIFIER_BROKER_USER": self.names["notifier"],
            "ADMIN_BROKER_USER": self.names["admin"],
        }


def _ctl(ctl: list[str], *args: str, stdin: str | None = None) -> None:
    subprocess.run(
        [*ctl, "-q", *args], check=True, capture_output=True, timeout=60, input=stdin, text=True
    )


@contextlib.contextmanager
def broker_users(amqp_url: str, label: str) -> Iterator[BrokerUsers]:
    ctl = rabbitmqctl_command(amqp_url)
    if ctl is None:
        reason = "needs rabbitmqctl next to the broker (run as root, as CI does)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    vhost = f"humantask_{label}_{secrets.token_hex(4)}"
    names = {service: f"{vhost}-{service}" for service in SERVICE_PERMISSIONS}
    passwords = {service: secrets.token_hex(16) for service in SERVICE_PERMISSIONS}
    document = definitions(passwords, vhost=vhost, users=names)
    try:
        # From standard input: the broker may be in a container, away from this machine's files.
        _ctl(ctl, "import_definitions", stdin=json.dumps(document))
        yield BrokerUsers(amqp_url, vhost, names, passwords)
    finally:
        for name in names.values():
            with contextlib.suppress(subprocess.SubprocessError):
                _ctl(ctl, "delete_user", name)
        with contextlib.suppress(subprocess.SubprocessError):
            _ctl(ctl, "delete_vhost", vhost)
