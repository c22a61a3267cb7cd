"""The machine note every section carries: what the figures were measured on."""

from __future__ import annotations

import contextlib
import os
import platform
import socket
import statistics
import time
from functools import cache
from typing import Any


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


@cache
def machine() -> dict[str, Any]:
    """Cores, CPU model, Python, kernel; the load average says how noisy the start was."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 0
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = []
    return {
        "cores": os.cpu_count() or 0,
        "usable_cores": usable,
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "kernel": f"{platform.system()} {platform.release()}",
        "loadavg_at_start": load,
    }


def describe(m: dict[str, Any]) -> str:
    return f"{m['cores']} cores, {m['cpu']}, Python {m['python']}, {m['kernel']}"


def mount_of(path: str) -> str:
    """'<fstype> on <mount point>' for the mount holding ``path`` (from /proc/mounts)."""
    best, fstype = "", "unknown"
    real = os.path.realpath(path)
    try:
        with open("/proc/mounts", encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                point = parts[1]
                inside = real == point or real.startswith(point.rstrip("/") + "/")
                if inside and len(point) >= len(best):
                    best, fstype = point, parts[2]
    except OSError:
        return "unknown"
    return f"{fstype} on {best}"


def bind_cost_us(folder: str, count: int = 200) -> float:
    """Median microseconds to bind a Unix socket (create its file) in ``folder``.

    Re-opening N listeners after a restart creates N socket files; on some disks that
    costs far more than the supervisor's own work, and it varies with the machine's load.
    """
    samples = []
    sockets = []
    try:
        for i in range(count):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sockets.append(sock)
            began = time.perf_counter()
            sock.bind(os.path.join(folder, f"probe-{i}.sock"))
            samples.append((time.perf_counter() - began) * 1e6)
    finally:
        for i, sock in enumerate(sockets):
            sock.close()
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(folder, f"probe-{i}.sock"))
    return round(statistics.median(samples), 1) if samples else float("nan")


SETTLE_IDLE = 0.9  # the share of CPU time idle over a window that counts as settled
SETTLE_WINDOW = 0.5  # seconds
SETTLE_LIMIT = 30.0  # seconds: past this a section starts anyway (the wait is recorded)


def _cpu_idle_and_total() -> tuple[int, int]:
    """Idle and total jiffies of all CPUs since boot (``/proc/stat``'s first line)."""
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return idle, sum(fields)


def settle(limit: float = SETTLE_LIMIT) -> float:
    """Wait until the CPUs have been at least ``SETTLE_IDLE`` idle over ``SETTLE_WINDOW``,
    at most ``limit`` seconds; the seconds waited. A section that tears down thousands of
    sockets leaves the kernel busy reclaiming them for seconds after its processes are
    gone: the next section must not measure that (without this, a workflow step measured
    right after ``rss`` cost three times the CPU it costs on a quiet machine)."""
    began = time.monotonic()
    if not os.path.exists("/proc/stat"):
        return 0.0
    while True:
        idle0, total0 = _cpu_idle_and_total()
        time.sleep(SETTLE_WINDOW)
        idle1, total1 = _cpu_idle_and_total()
        busy_share = 1 - (idle1 - idle0) / max(total1 - total0, 1)
        waited = time.monotonic() - began
        if busy_share <= 1 - SETTLE_IDLE or waited >= limit:
            return waited
