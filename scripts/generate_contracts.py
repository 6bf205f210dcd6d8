#!/usr/bin/env python3
"""Write contracts/openapi.yaml and contracts/asyncapi.yaml from the pydantic models.

    python scripts/generate_contracts.py          # (re)write the files
    python scripts/generate_contracts.py --check  # exit 1 and show a diff if they are stale

The documents are built by `tools/humantask_contracts`; this script only writes or
compares files, so that CI and the unit tests can catch a model change that was not
followed by `make contracts`.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
CONTRACTS_DIR = REPO_ROOT / "contracts"

# Runs from a source tree without installing the package too.
for folder in ("tools", "shared", "services/gateway"):
    sys.path.insert(0, str(REPO_ROOT / folder))

from humantask_contracts import rendered_contracts  # noqa: E402


def stale_files(expected: dict[str, str], directory: Path) -> dict[str, str]:
    """File name -> unified diff, for each file whose content is not the expected one."""
    diffs = {}
    for name, text in expected.items():
        path = directory / name
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            diffs[name] = "".join(
                difflib.unified_diff(
                    current.splitlines(keepends=True),
                    text.splitlines(keepends=True),
                    fromfile=f"contracts/{name} (on disk)",
                    tofile=f"contracts/{name} (generated)",
                )
            )
    return diffs


def write_files(expected: dict[str, str], directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in expected.items():
        (directory / name).write_text(text, encoding="utf-8")
        print(f"wrote contracts/{name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="do not write; exit 1 if the files on disk are stale"
    )
    args = parser.parse_args(argv)

    expected = rendered_contracts()
    if not args.check:
        write_files(expected, CONTRACTS_DIR)
        return 0

    diffs = stale_files(expected, CONTRACTS_DIR)
    for diff in diffs.values():
        sys.stdout.write(diff)
    if diffs:
        print(
            f"\ncontracts out of date: {', '.join(sorted(diffs))}. Run `make contracts`.",
            file=sys.stderr,
        )
        return 1
    print("contracts up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
