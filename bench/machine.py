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
