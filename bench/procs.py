"""What the benchmark reads from /proc (Linux): resident memory and CPU time per process.

Read-only. The broker and the database are found by their command names, so their CPU
share under load shows next to the services' (they run on the same two cores).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

# Component name -> the command names (/proc/<pid>/comm) of its processes.
SYSTEM_COMPONENTS = {
    "rabbitmq": ("beam.smp",),
    "ferretdb": ("ferretdb",),
    "postgres": ("postgres",),
    "mongod": ("mongod",),
}


def rss_mb(pid: int) -> float | None:
    """Resident set size (VmRSS) in MB, or None once the process is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time the process has used so far."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # After the command name: state is field 3, utime 14 and stime 15 (1-based).
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_busy_seconds() -> tuple[float, float, float]:
    """(busy, total, interrupts) CPU seconds of the whole machine since boot, all cores.
    Interrupt time (irq + softirq: loopback TCP is processed there) is in no process."""
    with open("/proc/stat", encoding="ascii") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already in user
    interrupts = sum(values[5:7]) if len(values) > 6 else 0
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS, interrupts / CLOCK_TICKS


def pids_by_command(names: Iterable[str]) -> list[int]:
    wanted = set(names)
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm", encoding="utf-8", errors="replace") as comm:
                if comm.read().strip() in wanted:
                    found.append(int(entry))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return found


@dataclass
class CpuSnapshot:
    at: float
    per_pid: dict[int, float]
    busy: float
    total: float
    interrupts: float


class CpuMeter:
    """CPU time used between two snapshots, per component (a named group of pids).

    Components are the services started by the benchmark (pids known) plus the
    broker and database found by command name. Processes that appear between the
    snapshots (a new PostgreSQL backend) count from zero; "other" is what the
    machine did besides them (other users of the box: compare runs with care).
    """

    def __init__(self, components: Mapping[str, Iterable[int]]) -> None:
        self.components = {name: list(pids) for name, pids in components.items()}

    def _resolve(self) -> dict[str, list[int]]:
        resolved = dict(self.components)
        for name, commands in SYSTEM_COMPONENTS.items():
            pids = pids_by_command(commands)
            if pids:
                resolved[name] = pids
        return resolved

    def snapshot(self) -> tuple[CpuSnapshot, dict[str, list[int]]]:
        resolved = self._resolve()
        per_pid: dict[int, float] = {}
        for pids in resolved.values():
            for pid in pids:
                used = cpu_seconds(pid)
                if used is not None:
                    per_pid[pid] = used
        busy, total, interrupts = machine_busy_seconds()
        return CpuSnapshot(time.monotonic(), per_pid, busy, total, interrupts), resolved

    @staticmethod
    def usage(
        before: tuple[CpuSnapshot, dict[str, list[int]]],
        after: tuple[CpuSnapshot, dict[str, list[int]]],
    ) -> dict[str, float]:
        """Percent of one core per component over the interval (200 = both cores)."""
        first, _ = before
        last, components = after
        wall = max(last.at - first.at, 1e-6)
        usage: dict[str, float] = {}
        accounted = 0.0
        for name, pids in components.items():
            used = sum(
                last.per_pid.get(pid, 0.0) - first.per_pid.get(pid, 0.0)
                for pid in pids
                if pid in last.per_pid
            )
            usage[name] = round(100 * used / wall, 1)
            accounted += used
        busy = last.busy - first.busy
        interrupts = last.interrupts - first.interrupts
        usage["machine"] = round(100 * busy / wall, 1)
        usage["irq"] = round(100 * interrupts / wall, 1)
        usage["other"] = round(max(0.0, 100 * (busy - accounted - interrupts) / wall), 1)
        return usage
