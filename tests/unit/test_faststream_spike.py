"""Issue 13's spike (`bench/faststream_spike/`) still runs against our messaging layer:
its modules import the names they use from it, so a rename there fails here.

FastStream is not in the project's locks: `fs_side` is imported only where it is
installed (the spike's scratch venv), and skipped elsewhere.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import pytest

from humantask_shared.messages.commands import COMMANDS


@pytest.fixture(autouse=True)
def commands_restored() -> Iterator[None]:
    """The spike's commands join `COMMANDS` on import; the contract tests read it."""
    registered = dict(COMMANDS)
    yield
    COMMANDS.clear()
    COMMANDS.update(registered)


@pytest.mark.parametrize("module", ["commands", "ours", "check", "run"])
def test_the_spike_imports_without_faststream(module: str) -> None:
    importlib.import_module(f"bench.faststream_spike.{module}")


def test_the_faststream_side_imports_where_faststream_is_installed() -> None:
    pytest.importorskip("faststream")
    importlib.import_module("bench.faststream_spike.fs_side")
