"""The test harness itself: polling with deadlines, and service processes."""

from __future__ import annotations

import sys
import time

import pytest

from tests.support.services import (
    ServiceNotReady,
    ServiceProcess,
    free_port,
    wait_for,
    wait_until,
)


def test_wait_until_returns_the_first_truthy_value() -> None:
    calls = []

    def ready() -> str | None:
        calls.append(1)
        return "done" if len(calls) >= 3 else None

    assert wait_until(ready, timeout=5, interval=0.01, message="never ready") == "done"
    assert len(calls) == 3


def test_wait_until_times_out_with_the_message() -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="the answer never came"):
        wait_until(lambda: False, timeout=0.2, interval=0.01, message="the answer never came")
    assert 0.2 <= time.monotonic() - started < 2


def test_wait_until_ignores_listed_exceptions_and_quotes_the_last() -> None:
    def flaky() -> bool:
        raise ConnectionRefusedError("nobody home")

    with pytest.raises(TimeoutError, match="nobody home"):
        wait_until(flaky, timeout=0.1, interval=0.01, ignore=(ConnectionError,))
    with pytest.raises(ZeroDivisionError):
        wait_until(lambda: 1 / 0, timeout=1, ignore=(ConnectionError,))


async def test_wait_for_accepts_async_predicates_and_times_out() -> None:
    state = {"n": 0}

    async def bump() -> int | None:
        state["n"] += 1
        return state["n"] if state["n"] >= 2 else None

    assert await wait_for(bump, timeout=5, interval=0.01) == 2

    with pytest.raises(TimeoutError, match="still false"):
        await wait_for(lambda: False, timeout=0.1, interval=0.01, message="still false")


def test_service_process_ready_then_terminated() -> None:
    port = free_port()
    # Any executable will do; a tiny HTTP server stands in for a service.
    proc = ServiceProcess(
        "http-server",
        executable=sys.executable,
        args=["-m", "http.server", str(port), "--bind", "127.0.0.1"],
        log_name="harness-http-server",
    ).start()
    try:
        proc.wait_ready(f"http://127.0.0.1:{port}/", deadline_seconds=20)
        assert proc.running
    finally:
        rc = proc.terminate(timeout=10)
    assert rc is not None and proc.returncode == rc
    assert not proc.running


def test_wait_ready_reports_exit_code_and_log_tail() -> None:
    proc = ServiceProcess(
        "crasher",
        executable=sys.executable,
        args=["-c", "import sys; print('cannot reach the broker'); sys.exit(3)"],
    ).start()
    with pytest.raises(ServiceNotReady) as info:
        proc.wait_ready(f"http://127.0.0.1:{free_port()}/readyz", deadline_seconds=20)
    assert "exited with code 3" in str(info.value)
    assert "cannot reach the broker" in str(info.value)
    assert proc.returncode == 3
