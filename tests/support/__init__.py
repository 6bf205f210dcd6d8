"""Helpers shared by the test suites (processes, ports, polling with deadlines)."""

from .services import (
    ARTIFACTS_DIR,
    LOG_DIR,
    ServiceNotReady,
    ServiceProcess,
    free_port,
    wait_for,
    wait_until,
)

__all__ = [
    "ARTIFACTS_DIR",
    "LOG_DIR",
    "ServiceNotReady",
    "ServiceProcess",
    "free_port",
    "wait_for",
    "wait_until",
]
