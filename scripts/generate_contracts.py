#!/usr/bin/env python3
"""Write contracts/openapi.yaml and contracts/asyncapi.yaml from the pydantic models,
and the gateway's served copy of the OpenAPI document (YAML and JSON).

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
# The gateway serves the OpenAPI document from its own package (GET /openapi.yaml and
# /openapi.json), so an installed gateway has it: the same document, written there too.
GATEWAY_REFERENCE_DIR = REPO_ROOT / "services/gateway/humantask_gateway/reference"

# Runs from a source tree without installing the package too.
for folder in ("tools", "shared", "services/gateway"):
    sys.path.insert(0, str(REPO_ROOT / folder))

from humantask_contracts import rendered_contracts, served_reference  # noqa: E402


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def expected_files() -> dict[Path, str]:
    """Every generated file, by its path, with its expected content."""
    files = {CONTRACTS_DIR / name: text for name, text in rendered_contracts().items()}
    files.update({GATEWAY_REFERENCE_DIR / name: text for name, text in served_reference().items()})
    return files


def stale_files(expected: dict[Path, str]) -> dict[str, str]:
    """File (relative to the repository) -> unified diff, for each file whose content is
    not the expected one."""
    diffs = {}
    for path, text in expected.items():
        name = _shown(path)
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            diffs[name] = "".join(
                difflib.unified_diff(
                    current.splitlines(keepends=True),
                    text.splitlines(keepends=True),
                    fromfile=f"{name} (on disk)",
                    tofile=f"{name} (generated)",
                )
            )
    return diffs


def write_files(expected: dict[Path, str]) -> None:
    for path, text in expected.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {_shown(path)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="do not write; exit 1 if the files on disk are stale"
    )
    args = parser.parse_args(argv)

    expected = expected_files()
    if not args.check:
        write_files(expected)
        return 0

    diffs = stale_files(expected)
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
