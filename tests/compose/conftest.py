"""The compose stacks, running: what docs/operations/compose.md promises of each.

scripts/compose-check.sh (`make test-compose`) brings each stack up and runs these tests
against it; it says which through the environment:

    COMPOSE_CHECK_STAGE    demo | production | ferretdb (test_stack.py), or placeholders
                           (test_placeholders.py: `up` with .env.example as it is)
    COMPOSE_CHECK_FILES    the compose files, colon-separated (as COMPOSE_FILE)
    COMPOSE_CHECK_ENV_FILE demo.env or .env (the stack's passwords)
    COMPOSE_PROJECT_NAME   the project
    HUMANTASK_API_PORT     the host port the API is published on

Without COMPOSE_CHECK_STAGE nothing here is collected (`make test` has no stack to check).
The tests reach RabbitMQ and the database at their containers' addresses on the compose
network, from this machine (root on the Docker host can): nothing but the API is published.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

STAGE = os.environ.get("COMPOSE_CHECK_STAGE")
if not STAGE:
    collect_ignore_glob = ["test_*.py"]
elif STAGE == "placeholders":  # a stack that must not have started
    collect_ignore = ["test_stack.py"]
else:
    collect_ignore = ["test_placeholders.py"]


def _env_file(path: Path) -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in path.read_text(encoding="utf-8").splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    )
    return {name.strip(): value.strip() for name, value in pairs}


@dataclass
class ComposeStack:
    stage: str
    files: list[str]
    env_file: Path
    project: str
    api_port: int
    settings: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.settings = _env_file(self.env_file)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @cached_property
    def compose_text(self) -> str:
        """The stack's compose files, as written."""
        return "".join((ROOT / file).read_text(encoding="utf-8") for file in self.files)

    def compose(
        self, *args: str, check: bool = True, timeout: float = 300, stderr: bool = False
    ) -> str:
        """`docker compose ...` on this stack; its standard output (and error, with
        `stderr`)."""
        command = ["docker", "compose", "--env-file", str(self.env_file)]
        for file in self.files:
            command += ["-f", file]
        result = subprocess.run(
            [*command, "--progress", "quiet", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed:\n{result.stdout}{result.stderr}")
        return result.stdout + (result.stderr if stderr else "")

    def admin(self, *args: str) -> list[dict[str, Any]]:
        """`humantask-admin ...` in the stack's network, as the README runs it."""
        output = self.compose("run", "--rm", "-T", "admin", *args)
        return [json.loads(line) for line in output.splitlines() if line.startswith("{")]

    @cached_property
    def containers(self) -> list[dict[str, Any]]:
        """`docker inspect` of every container of the project, one-shot jobs included."""
        ids = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={self.project}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        inspected = subprocess.run(
            ["docker", "inspect", *ids], capture_output=True, text=True, check=True
        ).stdout
        return list(json.loads(inspected))

    def container(self, service: str) -> dict[str, Any]:
        [container] = self.containers_of(service) or [None]
        assert container is not None, f"no container of {service}"
        return container

    def containers_of(self, service: str) -> list[dict[str, Any]]:
        matches = [
            c
            for c in self.containers
            if c["Config"]["Labels"].get("com.docker.compose.service") == service
            and c["Config"]["Labels"].get("com.docker.compose.oneoff") != "True"
        ]
        assert len(matches) <= 1, f"{service}: {len(matches)} containers"
        return matches

    def address(self, service: str) -> str:
        """The service's address on the compose network (reachable from the Docker host)."""
        networks = self.container(service)["NetworkSettings"]["Networks"]
        default = networks.get(f"{self.project}_default") or next(iter(networks.values()))
        return str(default["IPAddress"])


@pytest.fixture(scope="session")
def stack() -> ComposeStack:
    files = os.environ.get("COMPOSE_CHECK_FILES", "docker-compose.yml").split(":")
    return ComposeStack(
        stage=os.environ["COMPOSE_CHECK_STAGE"],
        files=files,
        env_file=ROOT / os.environ.get("COMPOSE_CHECK_ENV_FILE", ".env"),
        project=os.environ["COMPOSE_PROJECT_NAME"],
        api_port=int(os.environ.get("HUMANTASK_API_PORT", "8080")),
    )
