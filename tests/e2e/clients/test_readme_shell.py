"""Every curl command of the README, taken from the README itself, runs against the stack.

So the README cannot drift from the product. The rule for which ```sh blocks run, in
README order, all in ONE bash process (`set -euo pipefail`, from the repository's root),
and again in one zsh process where zsh is installed:

- a block that calls `curl` runs as written;
- a block that only sets variables (`NAME=...` or `export NAME=...` lines) runs too,
  except that `HUMANTASK_URL` and `HUMANTASK_API_KEY` come from this test: the test
  stack's gateway and its demo customer's key (the README's values are for the compose
  stack); `WORKER_TOKEN` is set to a new worker's token for the worker walk-through (the
  README makes it with `docker compose`), and `CALLBACK_URL` to a closed port of this
  machine (the README's names the compose network's way to the host);
- callback URLs on `www.example.com` are pointed at a closed port of this machine, so
  that no callback of a test ever leaves it;
- every other block (docker compose, make, a server to start) is for a newcomer's
  machine, not for this stack, and is left out; so is any block that mentions `docker`.

The stack is the e2e `stack` (the services as processes), unless HUMANTASK_README_URL
names another: then the walk-through runs against that one (the compose stack of
scripts/compose-check.sh, started by the README's first command), with
HUMANTASK_README_API_KEY as `HUMANTASK_API_KEY` and HUMANTASK_README_WORKER_TOKEN as
`WORKER_TOKEN` (the README makes its worker with `.venv/bin/humantask-admin`, which
reaches only a broker of this machine; with Docker the README says to use
`docker compose run --rm -T admin workers create`, which is where that token comes from).

What is checked, block by block:

- bash, and so every command in the block, exits 0;
- every curl answers 2xx; unless the ```json example right after the block is an error
  object (`{"status_code": ..., "error": ...}`): then every curl in the block answers
  that status and prints exactly that object;
- when the block printed one JSON document and the example after it is JSON, both
  have the same keys at every level (ids and times differ, the shape may not).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.e2e.conftest import DEMO_API_KEY

from .conftest import CLOSED_PORT, ROOT, cancel_pending_tasks, local_callbacks, round_trip_missing

pytestmark = pytest.mark.e2e

README = ROOT / "README.md"
PROVIDED = {"HUMANTASK_URL", "HUMANTASK_API_KEY", "CALLBACK_URL"}
FENCE = re.compile(r"^```(?P<lang>[\w-]*)\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)
ASSIGNMENT = re.compile(r"^(export\s+)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)=")
# curl reports each status on stderr, on a line of its own, after the transfer.
CURL_WRAPPER = (
    r"""curl() { command curl --no-progress-meter """
    r"""-w '%{stderr}\n@@http_status %{http_code}\n' "$@"; }"""
)


@dataclass
class Block:
    line: int
    script: str
    example: str | None  # the ```json block right after it, if any

    @property
    def example_json(self) -> Any:
        return None if self.example is None else json.loads(self.example)

    @property
    def expected_error(self) -> dict[str, Any] | None:
        example = self.example_json
        if isinstance(example, dict) and set(example) == {"status_code", "error"}:
            return example
        return None


def _logical_lines(script: str) -> list[str]:
    lines = [
        line
        for line in script.replace("\\\n", " ").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    return lines


@dataclass
class Target:
    """The stack the README's commands run against."""

    url: str
    api_key: str
    env: dict[str, str]
    # Variables this test sets, so the README's own assignments of them are left out.
    provided: set[str] = field(default_factory=lambda: set(PROVIDED))


@pytest.fixture
def target(request: pytest.FixtureRequest) -> Target:
    url = os.environ.get("HUMANTASK_README_URL")
    if not url:
        stack = request.getfixturevalue("stack")
        env = dict(stack.env)
        if round_trip_missing(stack) is None:
            env["WORKER_TOKEN"] = stack.admin("workers", "create", "--name", "readme")["token"]
        return Target(stack.gateway_url, DEMO_API_KEY, env)
    missing = [
        name
        for name in ("HUMANTASK_README_API_KEY", "HUMANTASK_README_WORKER_TOKEN")
        if not os.environ.get(name)
    ]
    if missing:
        pytest.fail(f"HUMANTASK_README_URL is set: set {' and '.join(missing)} too")
    env = {key: value for key, value in os.environ.items() if not key.startswith("HUMANTASK_")}
    env["WORKER_TOKEN"] = os.environ["HUMANTASK_README_WORKER_TOKEN"]
    return Target(
        url.rstrip("/"), os.environ["HUMANTASK_README_API_KEY"], env, {*PROVIDED, "WORKER_TOKEN"}
    )


def runnable_blocks(markdown: str, provided: set[str] = PROVIDED) -> list[Block]:
    """The README's ```sh blocks that run against the stack (see the module docstring)."""
    fences = list(FENCE.finditer(markdown))
    blocks = []
    for fence, following in zip(fences, [*fences[1:], None], strict=True):
        if fence["lang"] not in ("sh", "shell", "bash"):
            continue
        script = fence["body"]
        lines = _logical_lines(script)
        only_assignments = bool(lines) and all(ASSIGNMENT.match(line) for line in lines)
        if "docker" in script or not ("curl" in script or only_assignments):
            continue
        if only_assignments:
            script = "\n".join(
                line
                for line in lines
                if (match := ASSIGNMENT.match(line)) and match["name"] not in provided
            )
        example = following["body"] if following and following["lang"] == "json" else None
        blocks.append(Block(markdown.count("\n", 0, fence.start()) + 1, script, example))
    return blocks


def bash_script(blocks: list[Block]) -> str:
    parts = ["set -euo pipefail", CURL_WRAPPER]
    for index, block in enumerate(blocks):
        # After a newline: a response body need not end with one.
        marker = f"printf '\\n@@block {index}\\n'"
        parts += [f"{marker}; {marker} >&2", local_callbacks(block.script)]
    return "\n".join(parts) + "\n"


def split_by_block(text: str, count: int) -> list[str]:
    pieces = re.split(r"^@@block (\d+)\n", text, flags=re.MULTILINE)
    outputs = [""] * count
    for number, piece in zip(pieces[1::2], pieces[2::2], strict=True):
        outputs[int(number)] = piece
    return outputs


def shape(value: Any) -> Any:
    """Keys at every level, values left out."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value[:1]]
    return None


def test_the_readme_has_curl_blocks_to_run() -> None:
    blocks = runnable_blocks(README.read_text(encoding="utf-8"))
    assert sum("curl" in block.script for block in blocks) >= 6, blocks
    assert any(block.expected_error for block in blocks), "the Errors example is not found"


# The README promises bash and zsh: zsh refuses an unquoted `categories[]=...` (no match).
SHELLS = [
    "bash",
    pytest.param(
        "zsh", marks=pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh not installed")
    ),
]


@pytest.mark.parametrize("shell", SHELLS)
def test_every_curl_command_in_the_readme(target: Target, shell: str) -> None:
    blocks = runnable_blocks(README.read_text(encoding="utf-8"), target.provided)
    env = {
        **target.env,
        "HUMANTASK_URL": target.url,
        "HUMANTASK_API_KEY": target.api_key,
        "CALLBACK_URL": f"{CLOSED_PORT}/callback",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    try:
        result = subprocess.run(
            [shell, "-c", bash_script(blocks)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
    finally:
        cancel_pending_tasks(target.url, target.api_key)
    transcript = f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    assert result.returncode == 0, f"a README block failed (exit {result.returncode})\n{transcript}"

    outputs = split_by_block(result.stdout, len(blocks))
    statuses = [
        re.findall(r"^@@http_status (\d+)$", text, re.MULTILINE)
        for text in split_by_block(result.stderr, len(blocks))
    ]
    for block, output, codes in zip(blocks, outputs, statuses, strict=True):
        where = f"README.md line {block.line}:\n{block.script}\n--- printed ---\n{output}"
        assert len(codes) == block.script.count("curl "), where
        error = block.expected_error
        if error is not None:
            assert codes == [str(error["status_code"])] * len(codes), (codes, where)
            assert json.loads(output) == error, where
            continue
        assert all(code.startswith("2") for code in codes), (codes, where)
        if block.example is not None and len(codes) == 1:
            assert shape(json.loads(output)) == shape(block.example_json), where
