"""The locks (requirements/*.txt, written by `make lock`) against the pyproject.toml files:
every direct dependency is locked, at a version its specifier allows, with the hashes
pip checks; and a package has the same version in every lock."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
LOCKS = ROOT / "requirements"
# `name==version` at the start of an entry, before its markers and its `\` continuation.
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\]+)")


def _pyproject(path: Path) -> dict[str, Any]:
    with path.open("rb") as f:
        return tomllib.load(f)


def _entries(lock: str) -> list[list[str]]:
    """Each locked requirement with the lines that follow it (hashes, annotations)."""
    entries: list[list[str]] = []
    for line in (LOCKS / f"{lock}.txt").read_text(encoding="utf-8").splitlines():
        if PIN.match(line):
            entries.append([line])
        elif entries:
            entries[-1].append(line)
    return entries


def _locked(lock: str) -> dict[NormalizedName, Version]:
    pins = {}
    for entry in _entries(lock):
        match = PIN.match(entry[0])
        assert match is not None
        pins[canonicalize_name(match["name"])] = Version(match["version"])
    return pins


def _declared(lock: str) -> list[Requirement]:
    project = _pyproject(ROOT / "pyproject.toml")
    runtime = project["project"]["dependencies"]
    extras = project["project"]["optional-dependencies"]
    client = _pyproject(ROOT / "clients/python/pyproject.toml")["project"]["dependencies"]
    declared = {
        "runtime": runtime,
        "test": [*runtime, *extras["test"], *project["dependency-groups"]["dev"], *client],
        "bench": [*runtime, *extras["bench"]],
        "docs": project["dependency-groups"]["docs"],
        "build": project["dependency-groups"]["image"],
    }[lock]
    return [Requirement(text) for text in declared]


@pytest.mark.parametrize("lock", ["runtime", "test", "bench", "docs", "build"])
def test_every_declared_dependency_is_locked_at_a_version_it_allows(lock: str) -> None:
    locked = _locked(lock)
    for requirement in _declared(lock):
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement} is not in requirements/{lock}.txt: make lock"
        assert requirement.specifier.contains(locked[name], prereleases=True), (
            f"requirements/{lock}.txt has {name}=={locked[name]}, outside {requirement}: make lock"
        )


@pytest.mark.parametrize("lock", ["runtime", "test", "bench", "docs", "build"])
def test_every_locked_package_has_its_hashes(lock: str) -> None:
    for entry in _entries(lock):
        assert any("--hash=sha256:" in line for line in entry), entry[0]


def test_a_package_has_one_version_in_every_lock() -> None:
    runtime, test = _locked("runtime"), _locked("test")
    assert runtime.items() <= test.items(), "test.txt must hold runtime.txt's versions"
    for lock in ("bench", "docs", "build"):
        other = _locked(lock)
        shared = other.keys() & test.keys()
        assert {name: other[name] for name in shared} == {name: test[name] for name in shared}


def test_nothing_installs_from_a_hand_kept_constraints_file() -> None:
    assert not (ROOT / "constraints.txt").exists()
    for path in ("Makefile", "Dockerfile", ".ci/run"):
        assert "constraints.txt" not in (ROOT / path).read_text(encoding="utf-8"), path
