"""One version: pyproject.toml's. Every command's `--version`, every `/healthz` body and
the image's label say it."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from humantask_shared import __version__
from humantask_shared.runtime.health import add_health_routes

ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
BIN = Path(sys.executable).parent


def test_the_installed_version_is_pyprojects() -> None:
    assert __version__ == VERSION


@pytest.mark.parametrize(
    "command",
    ["humantask-gateway", "humantask-taskstore", "humantask-notifier", "humantask-admin"],
)
def test_every_command_says_its_version(command: str) -> None:
    result = subprocess.run(
        [str(BIN / command), "--version"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{command} {VERSION}"


@pytest.mark.parametrize("command", ["humantask-gateway", "humantask-taskstore"])
def test_a_service_refuses_arguments_it_does_not_know(command: str) -> None:
    result = subprocess.run(
        [str(BIN / command), "--port", "1"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and "unrecognized arguments" in result.stderr


async def test_healthz_says_the_version() -> None:
    app = web.Application()
    add_health_routes(app)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/healthz")
        assert response.status == 200
        assert await response.json() == {"status": "ok", "version": VERSION}


def test_the_image_label_is_the_version() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(rf"^ARG HUMANTASK_VERSION={re.escape(VERSION)}$", dockerfile, re.M)
    assert 'org.opencontainers.image.version="${HUMANTASK_VERSION}"' in dockerfile


def test_the_clients_share_the_version() -> None:
    python = (ROOT / "clients/python/humantask/_version.py").read_text()
    assert f'"{VERSION}"' in python
    js = (ROOT / "clients/js/package.json").read_text()
    assert f'"version": "{VERSION}"' in js
    ruby = (ROOT / "clients/ruby/lib/humantask/version.rb").read_text()
    assert f"'{VERSION}'" in ruby or f'"{VERSION}"' in ruby
