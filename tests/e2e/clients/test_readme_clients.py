"""The README's Ruby, Python and JavaScript examples ("Client libraries") run against
the stack as they are written, with only the key and the base URL swapped in.

Each language's blocks in that section run, in order, as one program: `ruby` with
clients/ruby/lib on the load path, this venv's Python (where `make install` put
clients/python), `node` with `require('scale')` resolving to clients/js. As in the
curl test, callback URLs on `www.example.com` point at a closed port of this machine.
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

README = ROOT / "README.md"
README_KEY = "YOUR_API_KEY"
README_URL = "http://localhost:8080"


def section_code(language: str) -> str:
    """The `language` blocks of the README's "Client libraries" section, joined."""
    text = README.read_text(encoding="utf-8")
    section = re.search(r"^## Client libraries\n(.*?)(?=^## )", text, re.MULTILINE | re.DOTALL)
    assert section, "README.md has no '## Client libraries' section"
    blocks = re.findall(rf"^```{language}\n(.*?)^```$", section[1], re.MULTILINE | re.DOTALL)
    assert blocks, f"no {language} example in the README's Client libraries section"
    return "\n".join(blocks)


def run_example(stack: Stack, language: str, command: list[str], tmp_path: Path) -> str:
    code = section_code(language)
    assert README_KEY in code and README_URL in code, code
    code = code.replace(README_KEY, DEMO_API_KEY).replace(README_URL, stack.gateway_url)
    code = local_callbacks(code)
    env = {key: value for key, value in os.environ.items() if key != "SCALE_API_URL"}
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
    assert result.returncode == 0, f"the README's {language} example failed:\n{code}\n---\n{output}"
    for expected in ("pending", "canceled", "404"):
        assert expected in result.stdout, f"{expected!r} not printed:\n{output}"
    return output


def test_python_example(stack: Stack, tmp_path: Path) -> None:
    run_example(stack, "python", [sys.executable, "-c"], tmp_path)


@pytest.mark.skipif(
    shutil.which("ruby") is None and os.environ.get("CI") != "true",
    reason="needs Ruby (Debian: apt-get install ruby; .ci/run does)",
)
def test_ruby_example(stack: Stack, tmp_path: Path) -> None:
    run_example(stack, "ruby", ["ruby", "-I", str(CLIENTS / "ruby" / "lib"), "-e"], tmp_path)


@pytest.mark.skipif(
    shutil.which("node") is None and os.environ.get("CI") != "true",
    reason="needs Node.js 20 or newer",
)
def test_javascript_example(stack: Stack, tmp_path: Path) -> None:
    # As after `npm install ./clients/js`: node_modules/scale is the package.
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / "scale").symlink_to(CLIENTS / "js", target_is_directory=True)
    run_example(stack, "javascript", ["node", "-e"], tmp_path)
