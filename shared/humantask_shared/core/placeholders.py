"""The placeholder passwords of `.env.example`, refused wherever a password is read.

`.env.example` ships every password as `change-me`, so that compose refuses nothing
until they are set and an operator who forgot one would run with a password everybody
knows. Every reader of a password (the services' settings, the one-shot jobs that make
the broker's and the database's users) refuses the placeholder with a message saying
which variable to set.
"""

from __future__ import annotations

import os
import sys
from urllib.parse import unquote, urlsplit

PLACEHOLDER = "change-me"


def placeholder_message(name: str) -> str:
    return (
        f"{name} is still the placeholder {PLACEHOLDER!r} of .env.example: give it a random "
        "value of its own (openssl rand -hex 24) in .env"
    )


def refuse_placeholder(name: str, password: str) -> None:
    """ValueError when `password` (the value of variable `name`) is the placeholder."""
    if password.strip() == PLACEHOLDER:
        raise ValueError(placeholder_message(name))


def refuse_placeholder_in_url(name: str, url: str) -> None:
    """ValueError when the password in the URL held by variable `name` is the placeholder."""
    password = urlsplit(url).password
    if password is not None:
        refuse_placeholder(f"the password in {name}", unquote(password))


def main() -> None:
    """`python -m humantask_shared.core.placeholders`: exit 1, naming each, while any variable
    whose name ends in `_PASSWORD` holds the placeholder (the compose files run it before
    the broker and the database initialise their data with a password)."""
    offending = sorted(
        name
        for name, value in os.environ.items()
        if name.endswith("_PASSWORD") and value.strip() == PLACEHOLDER
    )
    for name in offending:
        sys.stderr.write(placeholder_message(name) + "\n")
    if offending:
        raise SystemExit(1)
    sys.stderr.write("no password is the placeholder of .env.example\n")


if __name__ == "__main__":
    main()
