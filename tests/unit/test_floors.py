"""The shared code stands on two floors: `humantask_shared.core` imports no broker,
database, HTTP or tracing library, not even through another module, and nothing of the
runtime floor; `humantask_shared.runtime` builds on it.

Each core module is imported in a fresh interpreter, which then lists every module that
import loaded: a library reached through any chain of imports shows there.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.unit.test_import_cycles import import_graph

# The I/O libraries: RabbitMQ, MongoDB, HTTP, OpenTelemetry.
FORBIDDEN = {"aio_pika", "aiormq", "pamqp", "pymongo", "bson", "opentelemetry", "aiohttp"}

GRAPH = import_graph("humantask_shared")
CORE = sorted(name for name in GRAPH if name.startswith("humantask_shared.core"))
PROBE = "humantask_shared.runtime.broker"  # one that does load them: the check sees it

# One interpreter; each module is imported in a child forked from it, which lists the
# top-level packages it then holds. The parent has imported only these (allowed, used
# by every core module), so each child costs little.
LOADED = """
import importlib, os, sys
for allowed in ("pydantic", "orjson", "idna", "yarl"):
    importlib.import_module(allowed)
for module in sys.argv[1:]:
    read, write = os.pipe()
    if os.fork() == 0:
        os.close(read)
        importlib.import_module(module)
        os.write(write, " ".join(sorted({n.split(".")[0] for n in sys.modules})).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        print(module, pipe.read())
    os.wait()
"""


@pytest.fixture(scope="module")
def loaded() -> dict[str, set[str]]:
    """The top-level packages held after importing each module on its own."""
    result = subprocess.run(
        [sys.executable, "-c", LOADED, *CORE, PROBE],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = (line.split() for line in result.stdout.splitlines())
    return {module: set(packages) for module, *packages in lines}


def test_the_core_floor_holds_the_models_and_messages() -> None:
    assert {"humantask_shared.core.models", "humantask_shared.core.messages.commands"} <= set(CORE)


@pytest.mark.parametrize("module", CORE)
def test_a_core_module_loads_no_io_library(loaded: dict[str, set[str]], module: str) -> None:
    assert sorted(loaded[module] & FORBIDDEN) == []


def test_the_check_sees_a_library_loaded_on_the_way(loaded: dict[str, set[str]]) -> None:
    assert "aio_pika" in loaded[PROBE]


@pytest.mark.parametrize("module", CORE)
def test_a_core_module_imports_nothing_of_the_runtime_floor(module: str) -> None:
    runtime = sorted(name for name in GRAPH[module] if name.startswith("humantask_shared.runtime"))
    assert runtime == []
