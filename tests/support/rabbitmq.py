"""What a RabbitMQ vhost holds, asked of `rabbitmqctl` (root next to the broker, as CI)."""

from __future__ import annotations

import json
import os
import subprocess
from urllib.parse import unquote, urlsplit

import pytest
from conftest import rabbitmqctl_command  # tests/conftest.py


def vhost_of(amqp_url: str) -> str:
    path = urlsplit(amqp_url).path
    return unquote(path[1:]) if len(path) > 1 else "/"


def queue_types(amqp_url: str) -> dict[str, str]:
    """Every queue of `amqp_url`'s vhost: name -> type (`classic`, `quorum`)."""
    ctl = rabbitmqctl_command(amqp_url)
    if ctl is None:
        reason = "needs rabbitmqctl next to the broker (run as root, as CI does)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    listed = subprocess.run(
        [
            *ctl,
            "-q",
            "list_queues",
            "-p",
            vhost_of(amqp_url),
            "name",
            "type",
            "--formatter",
            "json",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return {queue["name"]: queue["type"] for queue in json.loads(listed.stdout)}
