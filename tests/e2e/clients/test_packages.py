"""Each client builds and installs from its folder with its language's own tool, under its
own name, into a scratch place, and is imported from there: a wheel with pip, a tarball
with `npm pack` and `npm install`, a gem with `gem build` and `gem install`.

No stack needed; these live beside the clients' other suites. Nothing here reaches a
package registry: the wheel is built with the locked hatchling (`--no-build-isolation`),
the JavaScript and Ruby clients have no runtime dependencies.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

import humantask_shared

from .conftest import CLIENTS

pytestmark = pytest.mark.e2e

VERSION = "0.2.0"
LICENSE = "Apache-2.0"
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check"]


def run(args: list[str | Path], cwd: Path, **env: str) -> str:
    result = subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=240,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_python_client_is_the_humantask_distribution(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    run(
        [*PIP, "wheel", "--no-deps", "--no-build-isolation", "-w", wheels, CLIENTS / "python"],
        tmp_path,
    )
    [wheel] = wheels.glob(f"humantask-{VERSION}-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = Parser().parsestr(
            archive.read(f"humantask-{VERSION}.dist-info/METADATA").decode()
        )
    assert "humantask/__init__.py" in names and "humantask/py.typed" in names
    assert not [name for name in names if name.startswith("scale/")]
    assert (metadata["Name"], metadata["Version"]) == ("humantask", VERSION)
    assert metadata["License-Expression"] == LICENSE
    assert "httpx" in " ".join(metadata.get_all("Requires-Dist") or [])

    site = tmp_path / "site"
    run(
        [*PIP, "install", "--no-deps", "--no-index", "--target", site, wheel],
        tmp_path,
    )
    probe = (
        "import importlib.metadata, humantask;"
        "print(humantask.__file__); print(humantask.__version__);"
        "print(importlib.metadata.version('humantask'));"
        "print(humantask.authorize('k', base_url='http://localhost:8080').base_url)"
    )
    where, version, installed, base_url = run(
        [sys.executable, "-c", probe], tmp_path, PYTHONPATH=str(site)
    ).split()
    assert Path(where).is_relative_to(site), where
    assert (version, installed, base_url) == (VERSION, VERSION, "http://localhost:8080/v1/")


def test_the_server_distribution_is_humantask_server() -> None:
    assert importlib.metadata.version("humantask-server") == humantask_shared.__version__
    assert importlib.metadata.version("humantask") == VERSION  # the client, beside it


@pytest.mark.skipif(
    shutil.which("npm") is None and os.environ.get("CI") != "true",
    reason="needs Node.js 20 or newer and npm",
)
def test_js_client_is_the_humantask_npm_package(tmp_path: Path) -> None:
    [packed] = json.loads(
        run(["npm", "pack", "--json", "--pack-destination", tmp_path], CLIENTS / "js")
    )
    assert (packed["name"], packed["version"]) == ("humantask", VERSION)
    files = {entry["path"] for entry in packed["files"]}
    assert {"package.json", "index.js", "index.d.ts", "README.md", "lib/http.js"} <= files
    assert not {path for path in files if path.startswith(("test/", "testing/", "node_modules"))}

    app = tmp_path / "app"
    app.mkdir()
    (app / "package.json").write_text('{"name": "app", "private": true}\n', encoding="utf-8")
    run(
        [
            "npm",
            "install",
            "--no-audit",
            "--no-fund",
            "--prefer-offline",
            tmp_path / packed["filename"],
        ],
        app,
    )
    manifest = json.loads((app / "node_modules/humantask/package.json").read_text(encoding="utf-8"))
    assert (manifest["license"], manifest["types"]) == (LICENSE, "index.d.ts")
    probe = (
        "const humantask = require('humantask');"
        "console.log(require.resolve('humantask'));"
        "console.log(humantask.VERSION);"
        "console.log(humantask.authorize('k', { baseUrl: 'http://localhost:8080' }).baseUrl);"
    )
    where, version, base_url = run(["node", "-e", probe], app).split()
    assert Path(where).is_relative_to(app / "node_modules" / "humantask"), where
    assert (version, base_url) == (VERSION, "http://localhost:8080/v1/")


@pytest.mark.skipif(
    shutil.which("gem") is None and os.environ.get("CI") != "true",
    reason="needs Ruby (Debian: apt-get install ruby; .ci/run does)",
)
def test_ruby_client_is_the_humantask_gem(tmp_path: Path) -> None:
    gem = tmp_path / f"humantask-{VERSION}.gem"
    run(["gem", "build", "humantask.gemspec", "--output", gem], CLIENTS / "ruby")
    spec = run(["gem", "specification", gem, "--ruby"], tmp_path)
    assert '"Apache-2.0"' in spec and "lib/humantask/client.rb" in spec

    home = tmp_path / "gems"
    run(["gem", "install", "--local", "--no-document", "--install-dir", home, gem], tmp_path)
    # The official `scale` gem defines `class Scale`: this one must load beside it.
    probe = (
        "class Scale; end; require 'humantask';"
        "puts $LOADED_FEATURES.grep(%r{/humantask\\.rb\\z}).first; puts Humantask::VERSION;"
        "puts Humantask::APIClient.authorize!('k', base_url: 'http://localhost:8080').base_url"
    )
    where, version, base_url = run(
        ["ruby", "-e", probe], tmp_path, GEM_HOME=str(home), GEM_PATH=str(home)
    ).split()
    assert Path(where).is_relative_to(home), where
    assert (version, base_url) == (VERSION, "http://localhost:8080/v1/")
