"""docker-compose.ferretdb.yml, read statically (no Docker engine runs here): the stack on
FerretDB 2 + DocumentDB from FerretDB's published images, as safe as the MongoDB one."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
OVERRIDE = ROOT / "docker-compose.ferretdb.yml"
FERRETDB_VERSION = "2.7.0"


class _ComposeLoader(yaml.SafeLoader):
    """Reads compose's merge tags (`!override`, `!reset`) as the plain value they carry."""


def _tagged(loader: yaml.SafeLoader, _suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_ComposeLoader.add_multi_constructor("!", _tagged)


def _override() -> dict[str, Any]:
    return yaml.load(OVERRIDE.read_text(encoding="utf-8"), Loader=_ComposeLoader)


def test_the_images_are_ferretdbs_published_ones_at_the_tested_version() -> None:
    services = _override()["services"]
    assert services["ferretdb"]["image"] == f"ghcr.io/ferretdb/ferretdb:{FERRETDB_VERSION}"
    assert re.fullmatch(
        rf"ghcr\.io/ferretdb/postgres-documentdb:\d+-[\d.]+-ferretdb-{re.escape(FERRETDB_VERSION)}",
        services["documentdb"]["image"],
    )


def test_ferretdb_makes_composite_indexes() -> None:
    url = _override()["services"]["ferretdb"]["environment"]["FERRETDB_POSTGRESQL_URL"]
    assert url.endswith("?documentdb.defaultUseCompositeOpClass=on"), url


def test_the_services_use_ferretdb_and_mongodb_stays_off() -> None:
    services = _override()["services"]
    assert services["mongodb"]["profiles"], "MongoDB must not start with this file"
    for name in ("taskstore", "notifier"):
        url = services[name]["environment"]["MONGODB_URL"]
        assert re.fullmatch(
            r"mongodb://humantask:\$\{FERRETDB_POSTGRES_PASSWORD:\?[^}]*\}@ferretdb:27017/humantask",
            url,
        ), url
        assert set(services[name]["depends_on"]) == {"rabbitmq", "ferretdb"}
    assert "!override" in OVERRIDE.read_text(encoding="utf-8"), (
        "depends_on must replace the MongoDB dependency, not add to it"
    )


def test_nothing_is_published_and_no_password_has_a_default() -> None:
    text = OVERRIDE.read_text(encoding="utf-8")
    for name, service in _override()["services"].items():
        assert not service.get("ports"), name
    passwords = re.findall(r"\$\{([A-Z_]*PASSWORD)(:[?-])", text)
    assert passwords and all(op == ":?" for _, op in passwords)
    for env_file in (ROOT / ".env.example", ROOT / "demo.env"):
        assert re.search(
            r"^FERRETDB_POSTGRES_PASSWORD=.+$", env_file.read_text(encoding="utf-8"), re.M
        )
