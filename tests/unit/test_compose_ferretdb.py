"""docker-compose.ferretdb.yml, read statically: the stack on FerretDB 2 + DocumentDB from
FerretDB's published images, as safe as the MongoDB one as far as FerretDB lets it be
(tests/compose runs it; docs/operations/compose.md says what FerretDB cannot enforce)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
OVERRIDE = ROOT / "docker-compose.ferretdb.yml"
COMPOSE_FILE = ROOT / "docker-compose.yml"
STANDINS = ROOT / "scripts" / "build-standin-images.sh"
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


def test_the_services_use_ferretdb_as_users_of_their_own_and_mongodb_stays_off() -> None:
    services = _override()["services"]
    assert services["mongodb"]["profiles"], "MongoDB must not start with this file"
    for name, password in (
        ("taskstore", "MONGODB_TASKSTORE_PASSWORD"),
        ("notifier", "MONGODB_NOTIFIER_PASSWORD"),
    ):
        url = services[name]["environment"]["MONGODB_URL"]
        assert re.fullmatch(
            rf"mongodb://humantask-{name}:\$\{{{password}:\?[^}}]*\}}@ferretdb:27017/humantask",
            url,
        ), url
        assert set(services[name]["depends_on"]) == {"rabbitmq", "ferretdb", "database-users"}
        assert services[name]["depends_on"]["database-users"]["condition"] == (
            "service_completed_successfully"
        )
    assert "FERRETDB_POSTGRES_PASSWORD" not in str(services["taskstore"])
    assert "FERRETDB_POSTGRES_PASSWORD" not in str(services["notifier"])
    assert "!override" in OVERRIDE.read_text(encoding="utf-8"), (
        "depends_on must replace the MongoDB dependency, not add to it"
    )


def test_the_database_users_job_logs_in_as_ferretdbs_postgresql_user() -> None:
    job = _override()["services"]["database-users"]
    assert re.fullmatch(
        r"mongodb://humantask:\$\{FERRETDB_POSTGRES_PASSWORD:\?[^}]*\}@ferretdb:27017/humantask",
        job["environment"]["MONGODB_ADMIN_URL"],
    )
    assert job["depends_on"] == {"ferretdb": {"condition": "service_healthy"}}


def test_postgresql_is_reached_by_ferretdb_alone() -> None:
    override = _override()
    services = override["services"]
    assert services["documentdb"]["networks"] == ["postgresql"]
    assert set(services["ferretdb"]["networks"]) == {"default", "postgresql"}
    assert override["networks"]["postgresql"] == {"internal": True}
    assert services["documentdb"]["depends_on"]["check-passwords"]["condition"] == (
        "service_completed_successfully"
    )
    assert "FERRETDB_POSTGRES_PASSWORD" in services["check-passwords"]["environment"]
    for name in ("documentdb", "ferretdb"):
        assert services[name]["healthcheck"]["test"][0] == "CMD"


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


def test_the_standins_carry_the_names_the_compose_files_use() -> None:
    """scripts/build-standin-images.sh tags each stand-in with an image name of the files."""
    tagged = set(re.findall(r'^\s+"[a-z-]+=([^"]+)"$', STANDINS.read_text(encoding="utf-8"), re.M))
    images = {
        service["image"] for service in _override()["services"].values() if "image" in service
    }
    main = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))["services"]
    assert tagged == images | {main["mongodb"]["image"]}
