"""The quality model is pure: no I/O, no clock, no randomness. The task-store and the
simulation run the same functions, so it imports only the standard library's pure parts
and itself."""

from __future__ import annotations

import ast
from pathlib import Path

import humantask_taskstore.quality as quality

ALLOWED = {"__future__", "math", "dataclasses", "collections.abc", "typing"}


def test_the_quality_package_imports_nothing_impure() -> None:
    root = Path(quality.__file__).parent
    found: dict[str, set[str]] = {}
    for path in root.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                names = {node.module or ""}
            else:
                continue
            for name in names:
                if name not in ALLOWED and not name.startswith("humantask_taskstore.quality"):
                    found.setdefault(path.name, set()).add(name)
    assert found == {}
