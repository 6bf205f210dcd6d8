"""Static checks of docker-compose.yml and the Dockerfile (no Docker engine needed).

They keep the container setup in step with the code: every console script a
service runs exists, and every environment variable it sets is a setting the
service actually reads (API.md sections 2 and 9).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

from humantask_gateway.settings import GatewaySettings
from humantask_notifier.settings import NotifierSettings
from humantask_taskstore.settings import TaskStoreSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PYPROJECT = ROOT / "pyproject.toml"

INFRA_SERVICES = ("rabbitmq", "mongodb")

# service name -> (console script, settings class, port its /readyz is served on)
APP_SERVICES = {
    "gateway": ("humantask-gateway", GatewaySettings, "GATEWAY_PORT"),
    "taskstore": ("humantask-taskstore", TaskStoreSettings, "HEALTH_PORT"),
    "notifier": ("humantask-notifier", NotifierSettings, "HEALTH_PORT"),
}

# Which services each app service must wait for (condition: service_healthy).
REQUIRED_HEALTHY_DEPS = {
    "gateway": {"rabbitmq"},
    "taskstore": {"rabbitmq", "mongodb"},
    "notifier": {"rabbitmq", "mongodb"},
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def scripts() -> dict[str, str]:
    with PYPROJECT.open("rb") as f:
        return tomllib.load(f)["project"]["scripts"]


def _as_argv(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()
    return [str(part) for part in value]


def _environment(service: dict) -> dict[str, str | None]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # ["NAME=value", "NAME"]
        pairs = (item.split("=", 1) for item in env)
        return {p[0]: (p[1] if len(p) > 1 else None) for p in pairs}
    return {str(k): (None if v is None else str(v)) for k, v in env.items()}


def _env_default(value: str | None) -> str | None:
    """`${NAME:-default}` -> default; a plain value stays as it is."""
    if value is None:
        return None
    match = re.fullmatch(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}", value)
    return match.group(1) if match else value


def _depends_on(service: dict) -> dict[str, dict]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):  # short form carries no condition
        return {name: {} for name in deps}
    return deps


def _healthcheck_argv(service: dict) -> list[str]:
    test = service["healthcheck"]["test"]
    return [test] if isinstance(test, str) else list(test)


def test_compose_parses_and_has_all_services(compose):
    assert isinstance(compose, dict)
    services = compose.get("services")
    assert isinstance(services, dict)
    for name in (*INFRA_SERVICES, *APP_SERVICES):
        assert name in services, f"service {name!r} missing from docker-compose.yml"


@pytest.mark.parametrize("name", INFRA_SERVICES)
def test_infra_services_have_healthchecks_and_volumes(compose, name):
    service = compose["services"][name]
    assert "image" in service
    assert _healthcheck_argv(service), f"{name} has no healthcheck"
    volumes = service.get("volumes") or []
    named = [v.split(":", 1)[0] for v in volumes if isinstance(v, str)]
    assert named, f"{name} keeps no data in a volume"
    for volume in named:
        assert volume in (compose.get("volumes") or {}), f"volume {volume!r} not declared"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_builds_from_repo_root(compose, name):
    build = compose["services"][name].get("build")
    context = build.get("context") if isinstance(build, dict) else build
    assert context in (".", "./"), f"{name} does not build from the repository root"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_runs_its_console_script(compose, scripts, name):
    script, _, _ = APP_SERVICES[name]
    service = compose["services"][name]
    argv = _as_argv(service.get("entrypoint")) + _as_argv(service.get("command"))
    assert argv and argv[0] == script, f"{name} runs {argv!r}, expected {script}"
    assert script in scripts, f"{script} is not in [project.scripts] of pyproject.toml"


def test_admin_tool_runs_the_admin_script(compose, scripts):
    admin = compose["services"].get("admin")
    assert admin is not None, "no admin service"
    assert "tools" in (admin.get("profiles") or []), "admin must not start with `up`"
    # `docker compose run --rm admin customers create ...` replaces `command`,
    # so the script has to be the entrypoint.
    entrypoint = _as_argv(admin.get("entrypoint"))
    assert entrypoint == ["humantask-admin"]
    assert "humantask-admin" in scripts


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_waits_for_healthy_dependencies(compose, name):
    deps = _depends_on(compose["services"][name])
    for dep in REQUIRED_HEALTHY_DEPS[name]:
        assert dep in deps, f"{name} does not depend on {dep}"
        assert deps[dep].get("condition") == "service_healthy", (
            f"{name} does not wait for {dep} to be healthy"
        )
    for dep in deps:
        assert dep in compose["services"], f"{name} depends on unknown service {dep}"
        assert "healthcheck" in compose["services"][dep], (
            f"{name} waits for {dep} to be healthy, but {dep} has no healthcheck"
        )


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_env_names_are_settings_fields(compose, name):
    _, settings_cls, _ = APP_SERVICES[name]
    fields = {field.upper() for field in settings_cls.model_fields}
    env = _environment(compose["services"][name])
    assert env, f"{name} sets no environment"
    unknown = sorted(set(env) - fields)
    assert not unknown, f"{name} sets {unknown}, which {settings_cls.__name__} does not read"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_env_defaults_are_valid_settings(compose, name, monkeypatch):
    """The values compose passes (with `${VAR:-default}` resolved to the default) load."""
    _, settings_cls, _ = APP_SERVICES[name]
    for key in settings_cls.model_fields:
        monkeypatch.delenv(key.upper(), raising=False)
    for key, value in _environment(compose["services"][name]).items():
        default = _env_default(value)
        if default is not None:
            monkeypatch.setenv(key, default)
    settings = settings_cls()
    assert settings.amqp_url.startswith("amqp://") and "@rabbitmq:" in settings.amqp_url
    assert settings.mongodb_url.startswith("mongodb://mongodb:")


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_healthcheck_probes_readyz_on_its_port(compose, name):
    _, settings_cls, port_var = APP_SERVICES[name]
    service = compose["services"][name]
    probe = " ".join(_healthcheck_argv(service))
    assert "curl" not in probe and "wget" not in probe, "python:slim has neither curl nor wget"
    match = re.search(r"http://(?:localhost|127\.0\.0\.1):(\d+)/readyz", probe)
    assert match, f"{name} healthcheck does not probe /readyz: {probe!r}"
    port = _env_default(_environment(service).get(port_var))
    if port is None:
        port = str(settings_cls.model_fields[port_var.lower()].default)
    assert match.group(1) == port, f"{name} probes port {match.group(1)}, serves on {port}"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_restarts_and_drains(compose, name):
    service = compose["services"][name]
    assert service.get("restart") == "unless-stopped"
    assert service.get("stop_grace_period") == "30s"


def test_gateway_publishes_its_port_and_sets_demo_key(compose):
    gateway = compose["services"]["gateway"]
    env = _environment(gateway)
    assert "HUMANTASK_DEMO_API_KEY" in env
    assert _env_default(env["HUMANTASK_DEMO_API_KEY"]), "demo key has no default"
    ports = [str(p) for p in gateway.get("ports") or []]
    assert any(p.endswith(":8080") for p in ports), ports


def test_dockerfile_installs_project_with_constraints():
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim|PYTHON_IMAGE=python:3\.11-slim", text, re.M)
    installs = [line for line in text.splitlines() if "pip install" in line]
    assert any("-c constraints.txt" in line and line.rstrip().endswith(" .") for line in installs), (
        installs
    )
    assert not any("[test]" in line for line in installs), "image must not install test extras"
    assert re.search(r"^USER\s+(?!root\b|0\b)\S+", text, re.M), "image must not run as root"
    assert re.search(r"^CMD\s+\[\"humantask-gateway\"\]", text, re.M)
    assert "PYTHONUNBUFFERED=1" in text
    assert not re.search(r"^HEALTHCHECK", text, re.M), "healthchecks live in docker-compose.yml"


def test_dockerfile_copies_every_wheel_package():
    """What hatch packages must be in the build context and copied into the image."""
    with PYPROJECT.open("rb") as f:
        pyproject = tomllib.load(f)
    packages = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    text = DOCKERFILE.read_text(encoding="utf-8")
    copied = {
        src.rstrip("/")
        for line in text.splitlines()
        if line.startswith("COPY ") and "--from=" not in line
        for src in line.split()[1:-1]
    }
    assert {"pyproject.toml", "constraints.txt"} <= copied
    for package in packages:
        top = package.split("/", 1)[0]
        assert top in copied, f"Dockerfile does not copy {top}/ (needed for {package})"

    ignored = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for needed in {"pyproject.toml", "constraints.txt", *(p.split("/", 1)[0] for p in packages)}:
        assert needed not in ignored, f".dockerignore excludes {needed}"
