"""No package of ours has an import cycle: each service reads top-down.

The graph is read from the source (`ast`), one edge per import of a module of the same
package, wherever the import statement is: a function-local import is a cycle put off,
and one under `if TYPE_CHECKING:` a cycle hidden from the interpreter, not removed (the
task-store's handlers and work handlers imported each other that way). `graphlib` finds
a cycle in the graph.
"""

from __future__ import annotations

import ast
import graphlib
import importlib.util
from pathlib import Path

import pytest

PACKAGES = ["humantask_shared", "humantask_gateway", "humantask_taskstore", "humantask_notifier"]


def package_modules(package: str) -> dict[str, Path]:
    """Every module of the package by its dotted name (a subpackage by its own name)."""
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.submodule_search_locations, package
    root = Path(next(iter(spec.submodule_search_locations)))
    modules = {}
    for path in root.rglob("*.py"):
        parts = (package, *path.relative_to(root).with_suffix("").parts)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _imported(module: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The dotted names one import statement of `module` loads (relative ones resolved)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        parent = module.split(".") if is_package else module.split(".")[:-1]
        anchor = ".".join(parent[: len(parent) - node.level + 1])
        base = f"{anchor}.{base}" if base else anchor
    # `from x import y` loads x, and x.y when y is a submodule.
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def import_graph(package: str) -> dict[str, set[str]]:
    """Each module of the package and the modules of the package it imports."""
    modules = package_modules(package)
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        is_package = path.name == "__init__.py"
        graph[module] = {
            name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for name in _imported(module, is_package, node)
            if name in modules and name != module
        }
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as error:
        return list(error.args[1])
    return None


@pytest.mark.parametrize("package", PACKAGES)
def test_the_package_has_no_import_cycle(package: str) -> None:
    cycle = find_cycle(import_graph(package))
    assert cycle is None, " -> ".join(cycle or [])


def test_relative_imports_resolve_and_a_cycle_is_found() -> None:
    (plain, relative, parent) = ast.parse(
        "import pkg.b\nfrom .c import C, d\nfrom .. import e\n"
    ).body
    assert isinstance(plain, ast.Import) and _imported("pkg.sub.a", False, plain) == ["pkg.b"]
    assert isinstance(relative, ast.ImportFrom) and isinstance(parent, ast.ImportFrom)
    assert _imported("pkg.sub.a", False, relative) == ["pkg.sub.c", "pkg.sub.c.C", "pkg.sub.c.d"]
    assert _imported("pkg.sub", True, relative) == ["pkg.sub.c", "pkg.sub.c.C", "pkg.sub.c.d"]
    assert _imported("pkg.sub.a", False, parent) == ["pkg", "pkg.e"]
    assert find_cycle({"pkg.a": {"pkg.b"}, "pkg.b": {"pkg.d"}, "pkg.d": {"pkg.a"}}) is not None
    assert find_cycle({"pkg.a": {"pkg.b"}, "pkg.b": set()}) is None


# A service's domain: `domain.py`, and the task-store's rule modules of projects and
# batches beside it, which import nothing of the service but one another.
# The pure modules of each service: its rules, with no I/O (the task-store's quality
# model, a package, with every module in it).
DOMAIN_MODULES = {
    "humantask_taskstore": {"domain", "projects", "batches", "workers", "quality"},
    "humantask_notifier": {"domain"},
}


@pytest.mark.parametrize("package", ["humantask_taskstore", "humantask_notifier"])
def test_a_services_ports_import_no_adapter(package: str) -> None:
    """Ports say what the handlers need; adapters fulfil them, never the other way:
    `ports.py` imports nothing of its service but the pure modules, and those import
    nothing else of it (`from . import quality` names the package on the way)."""
    graph = import_graph(package)
    named = {f"{package}.{module}" for module in DOMAIN_MODULES[package]}
    domain = {
        module
        for module in graph
        if module in named or any(module.startswith(f"{name}.") for name in named)
    }
    assert graph[f"{package}.ports"] <= domain, sorted(graph[f"{package}.ports"])
    for module in domain:
        assert graph[module] <= domain | {package}, (module, sorted(graph[module]))
