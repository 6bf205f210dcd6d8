"""Static checks of docker-compose.yml and the Dockerfile (no Docker engine needed).

They keep the container setup in step with the code: every console script a
service runs exists, and every environment variable it sets is a setting the
service actually reads (docs/reference/contract.md sections 2 and 9). And they keep it safe
by default: only the API port is published, each service has a broker and a database
user of its own, no password has a default nor may be the placeholder, and
`.env.example` and `demo.env` name every one. tests/compose runs the same files.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

from humantask_gateway.settings import GatewaySettings
from humantask_notifier import repository as notifier_repository
from humantask_notifier.settings import NotifierSettings
from humantask_shared.core.broker_definitions import (
    SERVICE_PERMISSIONS,
    VHOST,
    default_user,
    password_env,
)
from humantask_shared.runtime import database_users
from humantask_taskstore.settings import TaskStoreSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DEMO_ENV = ROOT / "demo.env"
RABBITMQ_CONF = ROOT / "deploy" / "rabbitmq" / "rabbitmq.conf"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PYPROJECT = ROOT / "pyproject.toml"

INFRA_SERVICES = ("rabbitmq", "mongodb")
# Run once before the others, each by `python -m <module>` from the app image.
ONE_SHOT_JOBS = {
    "check-passwords": "humantask_shared.core.placeholders",
    "broker-definitions": "humantask_shared.core.broker_definitions",
    "database-users": "humantask_shared.runtime.database_users",
}

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


_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def _env_default(value: str | None, environ: dict[str, str] | None = None) -> str | None:
    """`value` as compose interpolates it with `environ` (by default, empty):
    `${NAME:-default}` -> default, `${NAME:?message}` -> an error unless NAME is set."""
    if value is None:
        return None
    environ = environ or {}

    def substitute(match: re.Match[str]) -> str:
        name, operator, argument = match.groups()
        if environ.get(name):
            return environ[name]
        if operator and operator.endswith("?"):
            raise KeyError(f"{name} is required: {argument}")
        return argument if operator else ""

    return _INTERPOLATION.sub(substitute, value)


def _interpolations(text: str) -> dict[str, str | None]:
    """Every variable compose interpolates in `text`, and its operator (`:-`, `:?`, None)."""
    return {name: operator or None for name, operator, _ in _INTERPOLATION.findall(text)}


def _env_file(path: Path) -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in path.read_text(encoding="utf-8").splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    )
    return {name.strip(): value.strip() for name, value in pairs}


# A stand-in for .env: every required variable set.
FILLED_ENV = {password_env(service): f"{service}-secret" for service in SERVICE_PERMISSIONS} | {
    "MONGODB_ROOT_PASSWORD": "root-secret",
    "MONGODB_TASKSTORE_PASSWORD": "taskstore-secret",
    "MONGODB_NOTIFIER_PASSWORD": "notifier-secret",
}


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
    named = [v.split(":", 1)[0] for v in volumes if isinstance(v, str) and not v.startswith(".")]
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
    assert admin["healthcheck"] == {"disable": True}, "the image's probes a service's port"
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
        default = _env_default(value, FILLED_ENV)
        if default is not None:
            monkeypatch.setenv(key, default)
    settings = settings_cls()
    assert settings.amqp_url == (
        f"amqp://{default_user(name)}:{name}-secret@rabbitmq:5672/{VHOST}"
    ), "each service logs in to RabbitMQ as its own user, on the humantask vhost"
    if name != "gateway":
        assert settings.mongodb_url == (
            f"mongodb://humantask-{name}:{name}-secret@mongodb:27017/humantask"
        ), "each service logs in to MongoDB as its own user"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_healthcheck_probes_readyz_on_its_port(compose, name):
    _, settings_cls, port_var = APP_SERVICES[name]
    service = compose["services"][name]
    probe = " ".join(_healthcheck_argv(service))
    assert "curl" not in probe and "wget" not in probe, "python:slim has neither curl nor wget"
    match = re.search(r"http://(?:localhost|127\.0\.0\.1):(\d+)/readyz", probe)
    assert match, f"{name} healthcheck does not probe /readyz: {probe!r}"
    port = _env_default(_environment(service).get(port_var), FILLED_ENV)
    if port is None:
        port = str(settings_cls.model_fields[port_var.lower()].default)
    assert match.group(1) == port, f"{name} probes port {match.group(1)}, serves on {port}"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_restarts_and_drains(compose, name):
    service = compose["services"][name]
    assert service.get("restart") == "unless-stopped"
    assert service.get("stop_grace_period") == "30s"


def test_only_the_gateways_api_port_is_published(compose):
    for name, service in compose["services"].items():
        ports = [str(port) for port in service.get("ports") or []]
        if name == "gateway":
            # On the host, 8080 unless HUMANTASK_API_PORT says otherwise.
            assert ports == ["${HUMANTASK_API_PORT:-8080}:8080"], ports
            assert _env_default(ports[0]) == "8080:8080"
            assert _env_default(ports[0], {"HUMANTASK_API_PORT": "18080"}) == "18080:8080"
        else:
            # Anything else published at all would have to be for this machine only.
            assert all(port.startswith("127.0.0.1:") for port in ports), (name, ports)
    assert not compose["services"]["rabbitmq"].get("ports"), "RabbitMQ is not published"
    assert not compose["services"]["mongodb"].get("ports"), "MongoDB is not published"


def test_metrics_are_on_the_unpublished_health_port(compose):
    gateway = _environment(compose["services"]["gateway"])
    assert gateway["HEALTH_PORT"] != gateway["GATEWAY_PORT"]
    published = " ".join(str(p) for p in compose["services"]["gateway"].get("ports") or [])
    assert gateway["HEALTH_PORT"] not in published


def test_no_guest_and_one_broker_user_per_service(compose):
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    assert "guest" not in text
    users = {}
    for name, service in compose["services"].items():
        url = _environment(service).get("AMQP_URL")
        if url is not None:
            users[name] = re.fullmatch(r"amqp://([^:@/]+):.+@rabbitmq:5672/humantask", url).group(1)
    assert users == {service: default_user(service) for service in SERVICE_PERMISSIONS}


def test_no_password_has_a_default(compose):
    """Every password comes from .env, required (`${NAME:?...}`); only the optional
    operator login may be empty, which means no such user."""
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    passwords = {name: op for name, op in _interpolations(text).items() if "PASSWORD" in name}
    assert passwords, "compose interpolates no password"
    optional = {password_env("operator")}
    for name, operator in passwords.items():
        assert operator == (":-" if name in optional else ":?"), f"{name} has a default"
    assert re.search(r"\$\{RABBITMQ_OPERATOR_PASSWORD:-\}", text)
    with pytest.raises(KeyError):
        _env_default(_environment(compose["services"]["taskstore"])["AMQP_URL"])
    urls = [
        value
        for service in compose["services"].values()
        for value in _environment(service).values()
        if value and value.startswith(("amqp:", "mongodb:"))
    ]
    assert len(urls) == 7  # each service's broker and database URL, and the database admin's
    for url in urls:
        assert re.fullmatch(r"(amqp|mongodb)://[^:]+:\$\{[A-Z_]+PASSWORD:\?[^}]*\}@.+", url), url


def test_the_demo_customer_is_off_unless_a_key_is_set(compose):
    """`${HUMANTASK_DEMO_API_KEY:-...}` with a key would replace an empty value too."""
    value = _environment(compose["services"]["gateway"])["HUMANTASK_DEMO_API_KEY"]
    assert _env_default(value) == ""
    assert _env_default(value, {"HUMANTASK_DEMO_API_KEY": "live_x"}) == "live_x"


def test_mongodb_requires_authentication_and_has_a_user_per_service(compose):
    """The image makes the root user; the `database-users` job makes the services' users
    over the wire protocol, before they start (nothing needs mongosh or init scripts)."""
    mongodb = compose["services"]["mongodb"]
    env = _environment(mongodb)
    assert env["MONGO_INITDB_ROOT_USERNAME"] == "humantask-root"
    assert env["MONGO_INITDB_ROOT_PASSWORD"].startswith("${MONGODB_ROOT_PASSWORD:?")
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    assert "mongosh" not in text and "docker-entrypoint-initdb.d" not in text
    assert not (ROOT / "deploy" / "mongodb").exists(), "users are made by database_users.py"

    job = compose["services"]["database-users"]
    assert _depends_on(job)["mongodb"]["condition"] == "service_healthy"
    job_env = _environment(job)
    assert _env_default(job_env["MONGODB_ADMIN_URL"], FILLED_ENV) == (
        "mongodb://humantask-root:root-secret@mongodb:27017/humantask?authSource=admin"
    )
    assert {user.password_env for user in database_users.USERS} <= set(job_env)
    for name in ("taskstore", "notifier"):
        deps = _depends_on(compose["services"][name])
        assert deps["database-users"]["condition"] == "service_completed_successfully"
    for name in ("gateway", "admin"):
        assert "MONGODB_URL" not in _environment(compose["services"][name]), (
            f"{name} needs no database"
        )


def test_the_notifiers_database_role_reaches_its_collections_only():
    assert set(database_users.NOTIFIER_COLLECTIONS) == {
        notifier_repository.DELIVERIES,
        notifier_repository.ATTEMPTS,
    }
    roles = database_users.mongodb_roles("humantask")
    assert roles[database_users.TASKSTORE_USER] == [{"role": "readWrite", "db": "humantask"}]
    assert roles[database_users.NOTIFIER_USER] == [
        {"role": database_users.NOTIFIER_ROLE, "db": "humantask"}
    ]
    resources = [p["resource"] for p in database_users.notifier_privileges("humantask")]
    assert resources == [
        {"db": "humantask", "collection": collection}
        for collection in database_users.NOTIFIER_COLLECTIONS
    ]


def test_the_mongodb_healthcheck_needs_no_mongosh(compose):
    """Listening on the container's own address: the image's temporary server during
    initialisation listens on loopback only, and the stand-in has no mongosh."""
    probe = _healthcheck_argv(compose["services"]["mongodb"])
    assert probe == ["CMD", "bash", "-c", "exec 3<>/dev/tcp/$$HOSTNAME/27017"]


@pytest.mark.parametrize("name", ONE_SHOT_JOBS)
def test_one_shot_jobs_run_a_module_of_the_image_once(compose, name):
    job = compose["services"][name]
    assert _as_argv(job["command"])[:3] == ["python", "-m", ONE_SHOT_JOBS[name]]
    assert job.get("build") == "."
    assert job.get("restart") == "no"
    assert job["healthcheck"] == {"disable": True}


def test_nothing_keeps_a_password_before_the_placeholders_are_refused(compose):
    """The broker's definitions and the database's data are written with the passwords
    once they start: the check runs before either, and it is given every password."""
    services = compose["services"]
    for name in ("broker-definitions", "mongodb"):
        assert (
            _depends_on(services[name])["check-passwords"]["condition"]
            == "service_completed_successfully"
        ), name
    assert _depends_on(services["rabbitmq"])["broker-definitions"]["condition"] == (
        "service_completed_successfully"
    )
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    passwords = {name for name in _interpolations(text) if name.endswith("_PASSWORD")}
    assert set(_environment(services["check-passwords"])) == passwords


def test_rabbitmq_loads_the_rendered_definitions_at_boot(compose):
    rabbitmq = compose["services"]["rabbitmq"]
    assert (
        _depends_on(rabbitmq)["broker-definitions"]["condition"] == "service_completed_successfully"
    )
    mounts = [str(volume) for volume in rabbitmq.get("volumes") or []]
    assert "rabbitmq-definitions:/etc/rabbitmq/definitions:ro" in mounts
    conf = next(m for m in mounts if m.startswith("./deploy/rabbitmq/rabbitmq.conf:"))
    assert conf.split(":")[1].startswith("/etc/rabbitmq/conf.d/")
    assert re.search(
        r"^load_definitions = /etc/rabbitmq/definitions/definitions\.json$",
        RABBITMQ_CONF.read_text(encoding="utf-8"),
        re.M,
    )
    writer = compose["services"]["broker-definitions"]
    assert _as_argv(writer["command"]) == [
        "python",
        "-m",
        "humantask_shared.core.broker_definitions",
        "/definitions/definitions.json",
    ]
    assert "rabbitmq-definitions:/definitions" in [str(v) for v in writer["volumes"]]
    assert set(_environment(writer)) >= {password_env(s) for s in SERVICE_PERMISSIONS}


def test_env_example_and_demo_env_name_every_variable_compose_reads():
    names = set(_interpolations(COMPOSE_FILE.read_text(encoding="utf-8")))
    example = _env_file(ENV_EXAMPLE)
    assert names <= set(example) | {  # commented out in .env.example: defaults that are fine
        "HUMANTASK_API_PORT",
        "LOG_LEVEL",
        "RATE_LIMIT_PER_SECOND",
        "WORK_LEASE_SECONDS",
        "CALLBACK_RETRY_DELAY_SECONDS",
        "CALLBACK_TIMEOUT_SECONDS",
    }
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    for name in names:
        assert re.search(rf"^#? ?{name}=", text, re.M), f".env.example does not name {name}"
    required = {
        name
        for name, op in _interpolations(COMPOSE_FILE.read_text(encoding="utf-8")).items()
        if op == ":?"
    }
    assert required <= {name for name, value in example.items() if value == "change-me"}
    demo = _env_file(DEMO_ENV)
    assert all(demo.get(name) for name in required), "demo.env must make the demo one command"
    assert demo["HUMANTASK_DEMO_API_KEY"] and demo["CALLBACK_ALLOW_PRIVATE_NETWORKS"] == "true"


def test_dockerfile_installs_the_runtime_lock_then_the_project_alone():
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim|PYTHON_IMAGE=python:3\.11-slim", text, re.M)
    logical_lines = text.replace("\\\n", " ").splitlines()
    installs = [line for line in logical_lines if "pip " in line and "install" in line]
    # The build's pip and backend from their lock: the base image's pip only installs them.
    assert any(
        "--require-hashes" in line and line.rstrip().endswith("-r requirements/build.txt")
        for line in installs
    ), installs
    assert any(
        "--require-hashes" in line and line.rstrip().endswith("-r requirements/runtime.txt")
        for line in installs
    ), installs
    assert "--no-build-isolation" in text, "the wheel is built by the locked backend"
    assert any(re.search(r"install --no-deps /tmp/wheels/\*\.whl", line) for line in installs)
    assert not any(
        "[test]" in line or "[bench]" in line or re.search(r"requirements/(?!runtime|build)", line)
        for line in installs
    ), "image must install runtime dependencies only"
    assert re.search(r"^USER\s+(?!root\b|0\b)\S+", text, re.M), "image must not run as root"
    assert re.search(r"^CMD\s+\[\"humantask-gateway\"\]", text, re.M)
    assert "PYTHONUNBUFFERED=1" in text
    assert re.search(
        r"^HEALTHCHECK .*\n?.*CMD \[\"python\", \"-m\", "
        r"\"humantask_shared\.runtime\.healthcheck\"\]",
        text,
        re.M,
    ), "the image has a healthcheck of its own"


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
    assert {"pyproject.toml", "requirements/runtime.txt"} <= copied
    for package in packages:
        top = package.split("/", 1)[0]
        assert top in copied, f"Dockerfile does not copy {top}/ (needed for {package})"

    # .dockerignore leaves everything out but what it names with `!`.
    lines = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    kept = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert kept == {
        "pyproject.toml",
        "requirements/build.txt",
        "requirements/runtime.txt",
        *(p.split("/", 1)[0] for p in packages),
    }
    assert "**/node_modules" in lines and "**/__pycache__" in lines
