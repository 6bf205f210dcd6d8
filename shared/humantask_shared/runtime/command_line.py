"""The command line of a service process: `--help` and `--version`, nothing else.

A service is configured by environment variables only (docs/operations/configuration.md);
its command line answers what it is and which version it runs, so an operator can ask an
installed image or virtualenv without starting anything.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .. import __version__

CONFIGURATION = (
    "Configured by environment variables (AMQP_URL, MONGODB_URL, HEALTH_PORT, ...): "
    "see docs/operations/configuration.md."
)


def version_line(command: str) -> str:
    return f"{command} {__version__}"


def read_service_arguments(
    command: str, description: str, argv: Sequence[str] | None = None
) -> None:
    """Answer `--help` or `--version` and exit; refuse anything else (exit 2)."""
    parser = argparse.ArgumentParser(prog=command, description=description, epilog=CONFIGURATION)
    parser.add_argument("--version", action="version", version=version_line(command))
    parser.parse_args(argv)
