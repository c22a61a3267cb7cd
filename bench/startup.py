"""Start-up: ``jobvisor serve`` to its ``listening`` line with no jobs, and its idle RSS.

Three programs are started in turn, ``runs`` times each (quick: 5, full: 20), each from a
fresh process of this run's Python:

* **bare** -- ``python -c`` printing one line: the interpreter's own start (the floor of
  the target);
* **deps** -- the same after importing the supervisor's declared dependencies
  (``install_requires`` of the installed ``jobvisor``: msgpack, psutil, h11, pydantic,
  prometheus_client): what no change inside ``supervisor/`` can go under while it
  imports them all at start;
* **serve** -- ``jobvisor serve`` (``supervisor.testing.ServerProcess``) on a config with
  no jobs, HTTP on a free loopback port, a Unix socket folder of its own; stopped with
  SIGTERM after each run (the same state folder serves every run: a restart with no jobs).

For each: wall time from just before the spawn to the first line read (the floors print
theirs once imported; serve prints "jobvisor listening on ..."), the CPU time the process
used until then (``wait4`` rusage for the floors, which exit after their line; psutil for
serve, read right after its line), and its RSS (the floors read their own ``VmRSS``; serve's
is read by psutil ``SETTLE`` seconds after its line, idle). median and p90 over the runs;
serve's figures are also given over each floor's, against the targets
(``TARGET_OVER_BARE_MS`` over bare, ``TARGET_RSS_BYTES``), reported and never asserted.

Every program runs with bytecode caching on (``cached_bytecode_env``), and one uncounted
start of each fills the cache first: the start of an installed supervisor, not of the
compiler.

The CPU times move less than wall times on a busy machine: compare those first.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from bench.harness import Run
from bench.stats import percentile
from supervisor.testing import ServerProcess

TARGET_OVER_BARE_MS = 100.0
TARGET_RSS_BYTES = 25_000_000
SETTLE = 0.3  # seconds after "listening" before the idle RSS is read
# The line a floor program prints: its own VmRSS in kB, read from /proc.
_REPORT = (
    "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmRSS')),"
    " flush=True)"
)


def dependencies() -> list[str]:
    """The modules of the installed ``jobvisor``'s runtime requirements (no extras)."""
    names = []
    for req in importlib.metadata.requires("jobvisor") or []:
        if "extra ==" in req:
            continue
        match = re.match(r"[A-Za-z0-9_.\-]+", req)
        if match:
            names.append(match.group(0).replace("-", "_").lower())
    return names


def run(bench: Run) -> dict[str, Any]:
    runs = 5 if bench.quick else 20
    deps = dependencies()
    bench.say(f"startup: {runs} runs each of bare python, python + {', '.join(deps)}, serve")
    folder = bench.folder("startup")
    config = bench.config(folder)
    env = cached_bytecode_env(bench, {**os.environ, **bench.env})
    bare_code = _REPORT
    deps_code = f"import {', '.join(deps)}; {_REPORT}"
    # One start of each, not counted, writes the bytecode caches the counted runs read.
    _floor(deps_code, env)
    _serve(config, env)
    samples: dict[str, list[dict[str, float]]] = {"bare": [], "deps": [], "serve": []}
    # Interleaved, so that a burst of load on the machine touches all three alike.
    for _ in range(runs):
        samples["bare"].append(_floor(bare_code, env))
        samples["deps"].append(_floor(deps_code, env))
        samples["serve"].append(_serve(config, env))
    figures = {name: _summary(rows) for name, rows in samples.items()}
    serve, bare, deps_f = figures["serve"], figures["bare"], figures["deps"]
    over_bare = serve["wall_ms"]["median"] - bare["wall_ms"]["median"]
    figures["over_bare_ms"] = round(over_bare, 1)
    figures["over_deps_ms"] = round(serve["wall_ms"]["median"] - deps_f["wall_ms"]["median"], 1)
    figures["cpu_over_bare_ms"] = round(serve["cpu_ms"]["median"] - bare["cpu_ms"]["median"], 1)
    figures["cpu_over_deps_ms"] = round(serve["cpu_ms"]["median"] - deps_f["cpu_ms"]["median"], 1)
    figures["met_time_target"] = over_bare <= TARGET_OVER_BARE_MS
    figures["met_rss_target"] = serve["rss_bytes"]["median"] <= TARGET_RSS_BYTES
    return {
        "params": {
            "runs": runs,
            "dependencies": deps,
            "target_over_bare_ms": TARGET_OVER_BARE_MS,
            "target_rss_bytes": TARGET_RSS_BYTES,
            "settle_s": SETTLE,
            "transport": "unix",
            "bytecode": "cached (PYTHONPYCACHEPREFIX in the run's folder, warmed by one "
            "uncounted start of each program)",
            "python": sys.version.split()[0],
        },
        "figures": figures,
        "caveats": [
            "wall times include the wait for a core on a shared machine; CPU times do not",
            "serve's RSS is read idle after its line; the floors' RSS at their line",
            "deps imports every declared dependency, including those serve imports only "
            "when first needed (prometheus_client, with the first scrape of /metrics)",
        ],
        "error": None,
    }


def cached_bytecode_env(bench: Run, env: dict[str, str]) -> dict[str, str]:
    """``env`` with bytecode caching on, into a folder of the run: an installed
    supervisor starts from compiled ``.pyc`` files, and a start that compiles every
    module from source (``PYTHONDONTWRITEBYTECODE`` set, as in some CI shells) measures
    the compiler instead. The folder keeps the source tree clean."""
    env = dict(env)
    # Empty, not absent: ServerProcess lays its env over os.environ, and Python reads an
    # empty value as unset.
    env["PYTHONDONTWRITEBYTECODE"] = ""
    env["PYTHONPYCACHEPREFIX"] = str(bench.folder("startup-pycache"))
    return env


def floor_ms(env: dict[str, str], runs: int = 5) -> dict[str, float]:
    """Median wall and CPU ms of ``python -c`` importing the dependencies, over ``runs``
    fresh processes with ``env`` (the one the section's supervisors get, so that the
    bytecode caching is theirs), after one uncounted start: the floor of any supervisor
    start, for other sections to print beside theirs."""
    code = f"import {', '.join(dependencies())}; {_REPORT}"
    _floor(code, env)
    rows = [_floor(code, env) for _ in range(runs)]
    return {
        "wall_ms": round(percentile(sorted(r["wall_ms"] for r in rows), 50), 1),
        "cpu_ms": round(percentile(sorted(r["cpu_ms"] for r in rows), 50), 1),
    }


def _floor(code: str, env: dict[str, str]) -> dict[str, float]:
    began = time.time()
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, env=env, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    wall = time.time() - began
    proc.stdout.close()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 or not line.strip().isdigit():
        raise RuntimeError(f"floor program {code!r} failed: exit {proc.returncode}, {line!r}")
    return {
        "wall_ms": wall * 1000,
        "cpu_ms": (usage.ru_utime + usage.ru_stime) * 1000,
        "rss_bytes": int(line) * 1024,
    }


def _serve(config: Path, env: dict[str, str]) -> dict[str, float]:
    server = ServerProcess(config, env=env).start(timeout=120)
    try:
        assert server.proc is not None
        ps = psutil.Process(server.proc.pid)
        cpu = ps.cpu_times()
        time.sleep(SETTLE)  # idle: nothing to wait for, the loop is only waiting
        rss = ps.memory_info().rss
    finally:
        server.kill(signal.SIGTERM)
    return {
        "wall_ms": (server.listening_at - server.started_at) * 1000,
        "cpu_ms": (cpu.user + cpu.system) * 1000,
        "rss_bytes": rss,
    }


def _summary(rows: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    out = {}
    for key in ("wall_ms", "cpu_ms", "rss_bytes"):
        values = sorted(r[key] for r in rows)
        out[key] = {
            "count": len(values),
            "median": round(percentile(values, 50), 1),
            "p90": round(percentile(values, 90), 1),
            "max": round(values[-1], 1),
        }
    return out
