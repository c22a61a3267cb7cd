"""The machine note every section carries: what the figures were measured on."""

from __future__ import annotations

import os
import platform
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
