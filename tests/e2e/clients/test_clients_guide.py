"""The examples of docs/user-guide/clients.md run against the stack as they are written,
with only the key and the base URL swapped in: the guide cannot drift from the clients.

Each language's blocks on that page run, in order, as one program: this venv's Python
(where `make install` put clients/python), `ruby` with clients/ruby/lib on the load path,
`node` with `require('humantask')` resolving to clients/js. As in the curl test, callback
URLs on `www.example.com` point at a closed port of this machine. Shell blocks (installs,
`export`s) are for a reader's machine and are not run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import DEMO_API_KEY, Stack

from .conftest import CLIENTS, ROOT, cancel_pending_tasks, local_callbacks

pytestmark = pytest.mark.e2e

GUIDE = ROOT / "docs" / "user-guide" / "clients.md"
GUIDE_KEY = "YOUR_API_KEY"
GUIDE_URL = "http://localhost:8080"


def guide_code(language: str) -> str:
    """The guide's `language` blocks, joined in order."""
    text = GUIDE.read_text(encoding="utf-8")
    blocks = re.findall(rf"^```{language}\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)
    assert blocks, f"no {language} example in {GUIDE.relative_to(ROOT)}"
    return "\n".join(blocks)


def run_example(stack: Stack, language: str, command: list[str], tmp_path: Path) -> str:
    code = guide_code(language)
    assert GUIDE_KEY in code and GUIDE_URL in code, code
    code = code.replace(GUIDE_KEY, DEMO_API_KEY).replace(GUIDE_URL, stack.gateway_url)
    code = local_callbacks(code)
    # The guide's values, not a developer's environment, say where the server is.
    unset = {"HUMANTASK_URL", "HUMANTASK_API_KEY", "SCALE_API_URL"}
    env = {key: value for key, value in os.environ.items() if key not in unset}
    env.update(NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    try:
        result = subprocess.run(
            [*command, code],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
    finally:
        cancel_pending_tasks(stack.gateway_url, DEMO_API_KEY)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"the guide's {language} example failed:\n{code}\n---\n{output}"
    # The tasks' round trip, and projects, batches, tags and an audit (/scale/v1).
    for expected in (
        "pending",
        "canceled",
        "404",
        "400 categories",
        "cute",
        "409 task",
        "only a completed task can be audited",
    ):
        assert expected in result.stdout, f"{expected!r} not printed:\n{output}"
    return output


def test_python_examples(stack: Stack, tmp_path: Path) -> None:
    output = run_example(stack, "python", [sys.executable, "-c"], tmp_path)
    assert "order-1234 pending" in output


@pytest.mark.skipif(
    shutil.which("ruby") is None and os.environ.get("CI") != "true",
    reason="needs Ruby (Debian: apt-get install ruby; .ci/run does)",
)
def test_ruby_examples(stack: Stack, tmp_path: Path) -> None:
    run_example(stack, "ruby", ["ruby", "-I", str(CLIENTS / "ruby" / "lib"), "-e"], tmp_path)


@pytest.mark.skipif(
    shutil.which("node") is None and os.environ.get("CI") != "true",
    reason="needs Node.js 20 or newer",
)
def test_javascript_examples(stack: Stack, tmp_path: Path) -> None:
    # As after `npm install ./clients/js`: node_modules/humantask is the package.
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / "humantask").symlink_to(CLIENTS / "js", target_is_directory=True)
    run_example(stack, "javascript", ["node", "-e"], tmp_path)
