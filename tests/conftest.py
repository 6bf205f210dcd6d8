"""Root test configuration: where the RabbitMQ and MongoDB for the tests come from.

Session fixtures `amqp_url` and `mongodb_url` (plain strings), in this order:

1. `AMQP_URL` / `MONGODB_URL` from the environment (what `.ci/run` does, after
   `scripts/start-test-services.sh`);
2. otherwise, if a Docker engine answers, throwaway testcontainers for the session:
   `rabbitmq:3.13-management` and `mongo:7` (or the images RABBITMQ_TEST_IMAGE and
   MONGODB_TEST_IMAGE name; where no registry is reachable, the stand-ins of
   ../shared/docker/setup.sh and scripts/build-standin-images.sh carry those names);
3. otherwise the tests that asked for them fail with instructions.

The containers are labelled with this process's id and removed at the end of the
session; a session that was killed leaves them behind, and the next one removes those of
processes that are gone (so no Ryuk container is needed: TESTCONTAINERS_RYUK_DISABLED
defaults to true, and TESTCONTAINERS_CONNECTION_MODE to docker_host, the tests running on
the Docker host). `rabbitmqctl_command(amqp_url)` runs rabbitmqctl next to whichever
broker a URL names: the local one, or inside the container.

Nothing is checked until a test requests one of them, so unit tests run without any
service. `mongodb_url` always names a database unique to this test session
(`humantask_test_<8 hex>`), dropped at the end of the session. On a local RabbitMQ
that this process may administer with rabbitmqctl (root, as on CI), `amqp_url` names
a vhost of the session's own (`humantask_test_<8 hex>`), deleted at the end: test
sessions running at once on one machine never consume each other's messages.
`test_session_id` gives the 8 hex characters.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
# `from tests.support.services import ...` works whichever way pytest was started.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

HOW_TO_PROVIDE = (
    "These tests need RabbitMQ and a MongoDB-compatible server. Either:\n"
    "  scripts/start-test-services.sh   "
    "(installs/starts RabbitMQ and FerretDB 2 + DocumentDB; root on Debian 12)\n"
    "  export AMQP_URL=amqp://guest:guest@127.0.0.1:5672/humantask_test\n"
    "  export MONGODB_URL=mongodb://127.0.0.1:27017/humantask_test\n"
    "or start a Docker engine, and the tests start throwaway containers themselves."
)


# -- helpers ---------------------------------------------------------------------------


def _host_port(url: str, default_port: int) -> tuple[str, int]:
    """First host:port of a URL (a MongoDB URL may list several hosts)."""
    netloc = urlsplit(url).netloc.rsplit("@", 1)[-1].split(",")[0]
    if netloc.startswith("["):  # [ipv6]:port
        host, _, rest = netloc[1:].partition("]")
        port = rest.lstrip(":")
    else:
        host, _, port = netloc.partition(":")
    return host or "localhost", int(port) if port else default_port


def _tcp_answers(host: str, port: int, timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def with_database(url: str, database: str) -> str:
    """`url` with its path replaced by `/database`; the query string is kept."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def _docker_answers() -> bool:
    """Does a Docker engine answer `GET /_ping`? Quick and quiet when none runs."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if host.startswith("unix://"):
        path = host[len("unix://") :]
        if not os.path.exists(path):
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(5)
                sock.connect(path)
                sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
                status_line = sock.recv(256).split(b"\r\n", 1)[0]
        except OSError:
            return False
        return b" 200" in status_line
    # tcp:// or ssh:// engines: let docker-py work out TLS and the rest.
    try:
        import docker

        client = docker.from_env(timeout=5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - any failure means "no usable engine"
        return False


def _rabbitmqctl() -> str | None:
    """rabbitmqctl, if this process may use it (root or the rabbitmq user)."""
    for candidate in ("rabbitmqctl", "/usr/sbin/rabbitmqctl"):
        path = shutil.which(candidate)
        if path:
            break
    else:
        return None
    if os.geteuid() != 0 and pwd.getpwuid(os.geteuid()).pw_name != "rabbitmq":
        return None
    return path


def _ctl(ctl: list[str], *args: str) -> None:
    subprocess.run([*ctl, "-q", *args], check=True, capture_output=True, timeout=60)


# host:port of each broker this session runs in a container -> that container's id.
_BROKER_CONTAINERS: dict[tuple[str, int], str] = {}


def rabbitmqctl_command(amqp_url: str) -> list[str] | None:
    """The command running rabbitmqctl next to the broker of `amqp_url`: in its container
    (`docker exec`) when this session started it, else on this machine when the broker
    is local and this process may use rabbitmqctl; None otherwise."""
    host_port = _host_port(amqp_url, 5672)
    container = _BROKER_CONTAINERS.get(host_port)
    if container is not None:
        return ["docker", "exec", "-i", container, "rabbitmqctl"]
    ctl = _rabbitmqctl()
    if ctl is None or host_port[0] not in ("127.0.0.1", "localhost", "::1"):
        return None
    return [ctl]


@contextlib.contextmanager
def _session_vhost(url: str, session_id: str) -> Iterator[str]:
    """A vhost of this test session's own on a local broker, deleted at the end.

    Test sessions run concurrently on one machine (several developers, one broker);
    on a shared vhost their services would consume each other's commands. Where the
    broker is local (or in this session's container) and rabbitmqctl usable, each
    session gets `<vhost>_<session id>`; otherwise (or with HUMANTASK_TEST_SHARED_VHOST=1)
    the URL is used as it is.
    """
    parts = urlsplit(url)
    ctl = rabbitmqctl_command(url)
    if os.environ.get("HUMANTASK_TEST_SHARED_VHOST") == "1" or ctl is None:
        yield url
        return
    base = unquote(parts.path[1:]) if len(parts.path) > 1 else ""
    vhost = f"{base.strip('/') or 'humantask_test'}_{session_id}"
    user = unquote(parts.username or "guest")
    try:
        _ctl(ctl, "add_vhost", vhost)
        _ctl(ctl, "set_permissions", "-p", vhost, user, ".*", ".*", ".*")
    except (OSError, subprocess.SubprocessError) as exc:
        sys.stderr.write(f"warning: no session vhost ({exc!r}); using {url} as it is\n")
        created = False
    else:
        created = True
    if not created:
        yield url
        return
    try:
        yield urlunsplit(parts._replace(path="/" + quote(vhost, safe="")))
    finally:
        try:
            _ctl(ctl, "delete_vhost", vhost)
        except (OSError, subprocess.SubprocessError) as exc:
            sys.stderr.write(f"warning: could not delete test vhost {vhost}: {exc!r}\n")


# Labels of the containers a session starts: which process started them, so that the
# next session removes those of a process that is gone (a killed run), and no others.
OWNER_LABEL = "org.humantask.test-owner"
RABBITMQ_TEST_IMAGE = os.environ.get("RABBITMQ_TEST_IMAGE", "rabbitmq:3.13-management")
MONGODB_TEST_IMAGE = os.environ.get("MONGODB_TEST_IMAGE", "mongo:7")


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_is_gone(owner: str) -> bool:
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's session (a shared engine): not ours to judge
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _remove_leftovers(client: object) -> None:
    """Remove the containers of earlier sessions whose process is gone."""
    for container in client.containers.list(all=True, filters={"label": OWNER_LABEL}):  # type: ignore[attr-defined]
        owner = container.labels.get(OWNER_LABEL, "")
        if _owner_is_gone(owner):
            sys.stderr.write(f"removing test container {container.name} left by {owner}\n")
            container.remove(force=True, v=True)


def _testcontainers_defaults() -> None:
    """No Ryuk (this session removes its containers, the next one a killed one's), and
    the containers' ports reached on the Docker host. Read when testcontainers is first
    imported: set before that, each only where the environment does not say otherwise."""
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")


class _Containers:
    """Throwaway containers, started on first use, stopped at session end."""

    def __init__(self) -> None:
        self._docker: bool | None = None
        self._cleaned = False
        self.started: list[object] = []

    def docker_available(self) -> bool:
        if self._docker is None:
            self._docker = _docker_answers()
        return self._docker

    def _prepare(self, container: object) -> None:
        """Label it as this session's, after removing what killed sessions left."""
        if not self._cleaned:
            import docker

            client = docker.from_env()
            try:
                _remove_leftovers(client)
            finally:
                client.close()
            self._cleaned = True
        container.with_kwargs(labels={OWNER_LABEL: _owner()})  # type: ignore[attr-defined]

    def rabbitmq_url(self) -> str:
        _testcontainers_defaults()
        # testcontainers warns about its own deprecated internals; not ours to fix.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from testcontainers.community.rabbitmq import RabbitMqContainer

            container = RabbitMqContainer(RABBITMQ_TEST_IMAGE)
            self._prepare(container)
            self.started.append(container)
            container.start()
        host = container.get_container_host_ip()
        port = int(container.get_exposed_port(container.port))
        _BROKER_CONTAINERS[(host, port)] = container.get_wrapped_container().id
        return f"amqp://{container.username}:{container.password}@{host}:{port}/"

    def mongodb_url(self) -> str:
        _testcontainers_defaults()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from testcontainers.community.mongodb import MongoDbContainer

            container = MongoDbContainer(MONGODB_TEST_IMAGE)
            self._prepare(container)
            self.started.append(container)
            container.start()
        # The root user lives in the admin database.
        return container.get_connection_url() + "/humantask?authSource=admin"

    def stop_all(self) -> None:
        while self.started:
            container = self.started.pop()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    container.stop()  # type: ignore[attr-defined]
            except Exception as exc:  # noqa: BLE001 - a warning, not a failed session
                sys.stderr.write(f"warning: could not stop test container: {exc!r}\n")


@pytest.fixture(scope="session")
def _containers() -> Iterator[_Containers]:
    containers = _Containers()
    yield containers
    containers.stop_all()


# -- the fixtures ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def test_session_id() -> str:
    """8 hex characters naming this test session's database and vhost."""
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def amqp_url(_containers: _Containers, test_session_id: str) -> Iterator[str]:
    """AMQP URL of a RabbitMQ for this test session.

    From AMQP_URL on a local broker: a vhost of this session's own (see _session_vhost).
    """
    url = os.environ.get("AMQP_URL")
    if url:
        host, port = _host_port(url, 5672)
        if not _tcp_answers(host, port):
            pytest.fail(
                f"AMQP_URL={url} is set but nothing answers at {host}:{port}.\n{HOW_TO_PROVIDE}",
                pytrace=False,
            )
        with _session_vhost(url, test_session_id) as session_url:
            yield session_url
        return
    if not _containers.docker_available():
        pytest.fail(
            f"AMQP_URL is not set and no Docker engine answers.\n{HOW_TO_PROVIDE}", pytrace=False
        )
    yield _containers.rabbitmq_url()


@pytest.fixture(scope="session")
def mongodb_url(_containers: _Containers, test_session_id: str) -> Iterator[str]:
    """MongoDB URL naming a database unique to this session (dropped at the end)."""
    import pymongo
    import pymongo.errors

    base = os.environ.get("MONGODB_URL")
    if not base:
        if not _containers.docker_available():
            pytest.fail(
                f"MONGODB_URL is not set and no Docker engine answers.\n{HOW_TO_PROVIDE}",
                pytrace=False,
            )
        base = _containers.mongodb_url()

    database = f"humantask_test_{test_session_id}"
    url = with_database(base, database)

    client: pymongo.MongoClient = pymongo.MongoClient(url, serverSelectionTimeoutMS=5000)
    try:
        try:
            client.admin.command("ping")
        except pymongo.errors.PyMongoError as exc:
            pytest.fail(
                f"MONGODB_URL={base} does not answer a ping: {exc}\n{HOW_TO_PROVIDE}",
                pytrace=False,
            )
        yield url
        try:
            client.drop_database(database)
        except pymongo.errors.PyMongoError as exc:
            sys.stderr.write(f"warning: could not drop test database {database}: {exc}\n")
    finally:
        client.close()


def _redacted(url: str | None) -> str:
    if not url:
        return "(unset)"
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    userinfo, _, hosts = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hosts}"))


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [
        f"humantask: AMQP_URL={_redacted(os.environ.get('AMQP_URL'))} "
        f"MONGODB_URL={_redacted(os.environ.get('MONGODB_URL'))}"
    ]
