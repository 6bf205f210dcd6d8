"""Run the real services as processes, and poll for conditions with hard deadlines.

Tests never sleep blindly: they wait for an observable condition (`wait_for`,
`wait_until`, `ServiceProcess.wait_ready`) and fail with a message when the deadline
passes.

    gw = ServiceProcess("humantask-gateway", env={"GATEWAY_PORT": port, ...}).start()
    gw.wait_ready(f"http://127.0.0.1:{port}/readyz", deadline_seconds=30)
    ...
    gw.terminate(timeout=10)

A console script is looked up next to the running interpreter (`.venv/bin/<name>`).
Each process writes stdout and stderr to `test-artifacts/logs/<log_name>.log`.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import http.client
import inspect
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS_DIR = ROOT / "test-artifacts"
LOG_DIR = ARTIFACTS_DIR / "logs"

TAIL_LINES = 40

# Processes started and not yet reaped; killed at interpreter exit so nothing leaks.
_LIVE: set[ServiceProcess] = set()
# Log file names handed out in this test session, so two copies of one service
# (scaling tests) never share a log file.
_USED_LOG_NAMES: set[str] = set()

# Readiness probes go straight to the service, whatever proxy the environment names.
_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ServiceNotReady(RuntimeError):
    """A service process died or did not answer 200 before its deadline."""


def _unique_log_name(base: str) -> str:
    name, n = base, 1
    while name in _USED_LOG_NAMES:
        n += 1
        name = f"{base}-{n}"
    _USED_LOG_NAMES.add(name)
    return name


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (bind to port 0 and let the kernel choose)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _timeout_message(message: str, timeout: float, last_error: BaseException | None) -> str:
    text = f"{message or 'condition'} (not met within {timeout:g}s)"
    if last_error is not None:
        text += f"; last error: {last_error!r}"
    return text


def wait_until(
    predicate: Callable[[], T],
    timeout: float,
    interval: float = 0.05,
    message: str = "",
    *,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Call `predicate` every `interval` seconds until it returns something truthy.

    Returns that value. Raises `TimeoutError` naming `message` once `timeout` seconds
    have passed. Exceptions of the types in `ignore` count as "not yet" (the last one
    is quoted in the timeout message); any other exception propagates at once.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = predicate()
        except ignore as exc:
            result, last_error = None, exc
        if result:
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(_timeout_message(message, timeout, last_error))
        time.sleep(min(interval, remaining))


async def wait_for(
    predicate: Callable[[], T | Awaitable[T]],
    timeout: float,
    interval: float = 0.05,
    message: str = "",
    *,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Async `wait_until`: `predicate` may be a plain or an async callable.

    An awaitable predicate that is still running at the deadline is cancelled and the
    wait fails; the event loop is never blocked.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        overran = False
        try:
            result: Any = predicate()
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                done, _ = await asyncio.wait(
                    {task}, timeout=max(deadline - time.monotonic(), 0.001)
                )
                if not done:
                    task.cancel()
                    await asyncio.wait({task})
                    overran, result = True, None
                else:
                    result = task.result()
        except ignore as exc:
            result, last_error = None, exc
        if overran:
            raise TimeoutError(
                _timeout_message(message, timeout, last_error)
                + "; the check in progress at the deadline was cancelled"
            )
        if result:
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(_timeout_message(message, timeout, last_error))
        await asyncio.sleep(min(interval, remaining))


class ServiceProcess:
    """One console script running as a child process, logging to a file."""

    def __init__(
        self,
        name: str,
        env: Mapping[str, object | None] | None = None,
        *,
        args: Sequence[str] = (),
        log_name: str | None = None,
        cwd: str | os.PathLike[str] | None = None,
        executable: str | os.PathLike[str] | None = None,
    ) -> None:
        """`env` is merged onto `os.environ` (a value of None removes the variable).

        `executable` defaults to the console script `name` next to `sys.executable`.
        """
        self.name = name
        self.executable = Path(executable) if executable else Path(sys.executable).parent / name
        self.args = [str(a) for a in args]
        self.cwd = Path(cwd) if cwd else ROOT
        merged = dict(os.environ)
        merged.setdefault("PYTHONUNBUFFERED", "1")
        for key, value in (env or {}).items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = str(value)
        self.env = merged
        self.log_path = LOG_DIR / f"{_unique_log_name(log_name or name)}.log"
        self._popen: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"<ServiceProcess {self.name} pid={self.pid} returncode={self.returncode}>"

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> ServiceProcess:
        if self._popen is not None:
            raise RuntimeError(f"{self.name} was already started")
        if not self.executable.exists():
            raise FileNotFoundError(
                f"{self.executable} does not exist: is the project installed in this venv? "
                "Run `make install`."
            )
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self._popen = subprocess.Popen(
                [str(self.executable), *self.args],
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own session: a Ctrl-C at the terminal reaches pytest, whose teardown
                # then stops the service, rather than every child at once.
                start_new_session=True,
            )
        _LIVE.add(self)
        return self

    def __enter__(self) -> ServiceProcess:
        if self._popen is None:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.terminate()

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    @property
    def returncode(self) -> int | None:
        """None while running (or never started); negative -N when killed by signal N."""
        if self._popen is None:
            return None
        rc = self._popen.poll()
        if rc is not None:
            _LIVE.discard(self)
        return rc

    @property
    def running(self) -> bool:
        return self._popen is not None and self.returncode is None

    def send_signal(self, sig: int) -> None:
        """Send a signal without waiting (e.g. SIGTERM to observe a graceful drain)."""
        if self._popen is not None and self._popen.poll() is None:
            self._popen.send_signal(sig)

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit; raises subprocess.TimeoutExpired."""
        if self._popen is None:
            raise RuntimeError(f"{self.name} was never started")
        rc = self._popen.wait(timeout)
        _LIVE.discard(self)
        return rc

    def terminate(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, wait up to `timeout` seconds, then SIGKILL. Returns the exit code.

        An exit code of -9 (-signal.SIGKILL) means the graceful stop did not finish.
        """
        if self._popen is None:
            return None
        if self._popen.poll() is None:
            self._popen.send_signal(signal.SIGTERM)
            try:
                self._popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self._popen.kill()
                self._popen.wait()
        _LIVE.discard(self)
        return self._popen.returncode

    def kill(self) -> int | None:
        """SIGKILL at once (a crash), and reap."""
        if self._popen is None:
            return None
        if self._popen.poll() is None:
            self._popen.kill()
            self._popen.wait()
        _LIVE.discard(self)
        return self._popen.returncode

    # -- readiness and logs ----------------------------------------------------------

    def wait_ready(self, url: str, deadline_seconds: float = 30.0, interval: float = 0.05) -> None:
        """Poll `url` until it answers 200.

        Raises ServiceNotReady at once if the process exits, or when the deadline passes,
        with the exit code (if any) and the last lines of the log.
        """
        if self._popen is None:
            raise RuntimeError(f"{self.name} was never started")
        started = time.monotonic()
        deadline = started + deadline_seconds
        last = "no attempt yet"
        while True:
            rc = self.returncode
            if rc is not None:
                raise ServiceNotReady(
                    self._describe_failure(f"exited with code {rc} before {url} answered 200", last)
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ServiceNotReady(
                    self._describe_failure(
                        f"still running but {url} did not answer 200 within {deadline_seconds:g}s",
                        last,
                    )
                )
            try:
                with _NO_PROXY_OPENER.open(url, timeout=max(0.05, min(2.0, remaining))) as resp:
                    if resp.status == 200:
                        return
                    last = f"HTTP {resp.status}"
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}"
                exc.close()
            except (OSError, http.client.HTTPException) as exc:
                last = repr(exc)
            time.sleep(min(interval, max(0.0, deadline - time.monotonic())))

    async def wait_ready_async(
        self, url: str, deadline_seconds: float = 30.0, interval: float = 0.05
    ) -> None:
        """`wait_ready` without blocking the event loop (runs in a worker thread)."""
        await asyncio.to_thread(self.wait_ready, url, deadline_seconds, interval)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = TAIL_LINES) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def _describe_failure(self, what: str, last: str) -> str:
        return (
            f"{self.name} (pid {self.pid}) {what}; last probe: {last}\n"
            f"--- last {TAIL_LINES} lines of {self.log_path} ---\n"
            f"{self.log_tail(TAIL_LINES)}\n"
            f"--- end of log ---"
        )


@atexit.register
def _kill_leftovers() -> None:
    for proc in list(_LIVE):
        with contextlib.suppress(Exception):  # best effort at interpreter exit
            proc.kill()
