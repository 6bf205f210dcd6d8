"""The contracts of humantask, derived from the code: tooling, not part of any service.

- `openapi.py`: the gateway's HTTP API;
- `asyncapi.py`: the commands, replies and events on RabbitMQ.

`make contracts` (scripts/generate_contracts.py) writes `contracts/`; a unit test fails
when the files there differ from what the code declares. Everything here is pure and
deterministic: the same code gives byte-identical YAML.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from .asyncapi import build_asyncapi
from .openapi import build_openapi
from .schemas import API_VERSION, Json, render_yaml

CONTRACT_FILES: dict[str, Callable[[], Json]] = {
    "openapi.yaml": build_openapi,
    "asyncapi.yaml": build_asyncapi,
}


def rendered_contracts() -> dict[str, str]:
    """File name (in `contracts/`) -> its expected content."""
    return {name: render_yaml(build()) for name, build in CONTRACT_FILES.items()}


def served_reference() -> dict[str, str]:
    """File name (in the gateway's `reference/` package data) -> its expected content:
    the OpenAPI document the gateway serves, as YAML (byte-identical to
    `contracts/openapi.yaml`) and as JSON."""
    document = build_openapi()
    return {
        "openapi.yaml": render_yaml(document),
        "openapi.json": json.dumps(document, indent=1, ensure_ascii=False) + "\n",
    }


__all__ = [
    "API_VERSION",
    "CONTRACT_FILES",
    "build_asyncapi",
    "build_openapi",
    "rendered_contracts",
    "served_reference",
]
