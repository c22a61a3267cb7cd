"""Reconnection after kill -9: N live workers, SIGKILL the supervisor, start it again.

Per worker and restart two latencies are taken: from the new supervisor's process start
(``ServerProcess.started_at``, just before ``Popen``) and from its listening (when its
"jobvisor listening on" line was read) until that worker's traffic flows again, i.e. until
the worker has the new supervisor's ``welcome`` in hand.

* N <= 100: real worker processes using the Python library (``workers/hold.py``). The
  library writes "reconnected to the supervisor" on stderr, stamped with the wall time at
  which the welcome arrived, into the job's log file; that stamp is the measurement. The
  supervisor's own "worker reconnected" line (the moment it accepted the auth, i.e.
  before the commit that precedes the welcome) is reported beside it.
* N > 100: one load generator process holding N connections, one
  ``jobvisor_worker.Session`` each (``loadgen.py``); its jobs are seeded into the store
  as running attempts owned by its PID (``harness.SeededSetup``). The measurement is the
  ``time.time()`` at which each welcome arrived there.

Log stamps have millisecond resolution and are truncated, so half a millisecond is
added to each. A job is lost when it did not re-attach within the timeout or the new
supervisor declared it lost (``jobvisor_lost_total``).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from bench import startup
from bench.harness import Run, SeededSetup, Server, Setup, each_size
from bench.machine import bind_cost_us, mount_of
from bench.stats import summary
from jobvisor_worker._transport import STABLE_CONNECTION
from supervisor.testing import wait_for
from supervisor.views import parse_time

HOLD = Path(__file__).parent / "workers" / "hold.py"
REAL_WORKERS_UP_TO = 100
REATTACH_TIMEOUT = 60.0
HALF_MS = 0.0005
WORKER_LINE = "jobvisor_worker: reconnected to the supervisor"
SUPERVISOR_LINE = "[jobvisor] worker reconnected"


def run(bench: Run) -> dict[str, Any]:
    sizes = [10, 100] if bench.quick else [10, 100, 1000]
    restarts = 2 if bench.quick else 3  # two: a restart after a restart must work too
    probe_dir = bench.short_dir()
    bind_us = bind_cost_us(str(probe_dir))

    def measure(n: int) -> dict[str, Any]:
        bench.say(f"reconnect N={n}: {restarts} restart(s)")
        if n <= REAL_WORKERS_UP_TO:
            return _real_workers(bench, n, restarts)
        return _load_generator(bench, n, restarts)

    figures, error = each_size(sizes, measure)
    # The floor of "after process start": no supervisor can be back before its own
    # interpreter has started and imported its dependencies (same environment as its
    # supervisors, so the same bytecode caching).
    floor = startup.floor_ms({**os.environ, **bench.env})
    return {
        "floor_ms": floor,
        "params": {
            "sizes": sizes,
            "restarts_per_size": restarts,
            "transport": "unix",
            "real_worker_processes_up_to": REAL_WORKERS_UP_TO,
            "reattach_timeout_s": REATTACH_TIMEOUT,
            "socket_folder_fs": mount_of(str(probe_dir)),
            "socket_bind_us_median_at_start": bind_us,
        },
        "figures": figures,
        "lost": sum(f.get("lost", 0) for f in figures),
        "caveats": [
            "N <= 100: real Python-library worker processes; 'traffic flows again' is the "
            "wall-clock stamp (ms, +0.5 ms) the library writes when the welcome arrives",
            "N = 1000: a load generator speaking the real protocol through the library's "
            "Session (1000 Sessions, one process, one selectors loop, retry every ~20 ms "
            "+-50%); its jobs were seeded into the store as running attempts owned by its "
            "PID (option b), adopted as orphans exactly as after a crash",
            "latencies 'after listening' can be near zero or slightly negative: listeners "
            "are re-opened before the line is printed, and workers queue in their backlog",
            "one machine: the workers' retry loops compete with the starting supervisor "
            "for the same cores",
            "a restart re-creates one socket file per live job (bind); 'after process start' "
            "therefore depends on the socket folder's filesystem: see socket_folder_fs and "
            "socket_bind_us_median_at_start (a noisy shared disk makes this vary by 10x)",
        ],
        "error": error,
    }


def _restart(setup: Setup, server: Server) -> Server:
    server.kill()
    return setup.start()


def _restart_figures(
    number: int, server: Server, n: int, back: list[float], *, refused: int = 0, **extra: Any
) -> dict[str, Any]:
    """Restart ``number``'s figures from ``back``: when each re-attached worker had the new
    ``server``'s welcome (wall clock). ``extra`` goes in before ``lost``."""
    after_start = [t - server.started_at for t in back]
    after_listen = [t - server.listening_at for t in back]
    declared = int(server.metric("jobvisor_lost_total"))
    return {
        "restart": number,
        "startup_ms": round((server.listening_at - server.started_at) * 1000, 1),
        "reattached": len(back),
        "after_listening_ms": summary(after_listen, 1000),
        "after_process_start_ms": summary(after_start, 1000),
        **extra,
        "lost": max(n - len(back), declared) + refused,
        "_start": after_start,  # pooled over the restarts by _entry, which removes them
        "_listen": after_listen,
    }


def _entry(n: int, workers: str, per_restart: list[dict[str, Any]]) -> dict[str, Any]:
    pooled_start: list[float] = []
    pooled_listen: list[float] = []
    for r in per_restart:
        pooled_start += r.pop("_start")
        pooled_listen += r.pop("_listen")
    return {
        "n": n,
        "workers": workers,
        "restarts": per_restart,
        "pooled": {
            "after_listening_ms": summary(pooled_listen, 1000),
            "after_process_start_ms": summary(pooled_start, 1000),
        },
        "lost": sum(r["lost"] for r in per_restart),
    }


# --- real worker processes ----------------------------------------------------------------------


def _real_workers(bench: Run, n: int, restarts: int) -> dict[str, Any]:
    finish = bench.tmp / f"finish-{n}"
    setup = Setup(
        bench,
        f"reconnect-{n}",
        {
            "hold": {
                "command": sys.executable,
                "args": [str(HOLD)],
                "env": {**bench.env, "BENCH_FINISH_FILE": str(finish)},
                "heartbeat_timeout": 30.0,
                "max_attempts": 1,
            }
        },
        concurrency=n + 10,
    )
    server = setup.start()
    try:
        ids = [server.client.submit("hold") for _ in range(n)]
        wait_for(
            lambda: server.metric("jobvisor_workers_connected") >= n,
            60 + n,
            0.1,
            f"{n} workers to connect",
        )
        per_restart = []
        for number in range(restarts):
            # A connection lost within STABLE_CONNECTION of its welcome is a crash loop to
            # the library, which then backs off instead of retrying at once (and stops
            # logging each re-attach): this section measures one restart at a time.
            time.sleep(STABLE_CONNECTION + 0.2)
            server = _restart(setup, server)
            try:
                wait_for(
                    lambda s=server: s.metric("jobvisor_reconnected_total") >= n,
                    REATTACH_TIMEOUT,
                    0.05,
                    "every worker to re-attach",
                )
            except TimeoutError:
                pass  # the missing ones are counted as lost below
            welcome, hello = _stamps(setup, ids, since=server.started_at - HALF_MS)
            hello_ms = summary([t - server.listening_at for t in hello], 1000)
            per_restart.append(
                _restart_figures(
                    number + 1, server, n, welcome, hello_accepted_after_listening_ms=hello_ms
                )
            )
        finish.touch()
    finally:
        server.kill()
    return _entry(n, "Python library worker processes (workers/hold.py)", per_restart)


def _first_stamp_after(lines: list[str], marker: str, since: float) -> float | None:
    for line in lines:
        if marker in line:
            try:
                stamp = parse_time(line.split(" ", 1)[0]) + HALF_MS
            except ValueError:
                continue
            if stamp >= since:
                return stamp
    return None


def _stamps(setup: Setup, ids: list[str], since: float) -> tuple[list[float], list[float]]:
    """From the jobs' log files: when each worker had its welcome, and when the supervisor
    accepted each hello (the first of each line at or after ``since``)."""
    welcome, hello = [], []
    for job_id in ids:
        path = setup.settings.log_dir / f"{job_id}.log"
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        stamp = _first_stamp_after(lines, WORKER_LINE, since)
        if stamp is not None:
            welcome.append(stamp)
        stamp = _first_stamp_after(lines, SUPERVISOR_LINE, since)
        if stamp is not None:
            hello.append(stamp)
    return welcome, hello


# --- the load generator -------------------------------------------------------------------------


def _load_generator(bench: Run, n: int, restarts: int) -> dict[str, Any]:
    setup = SeededSetup(bench, "reconnect", n, "held", heartbeat_timeout=30.0)
    gen, server, _attach_s = setup.seeded_and_connected()
    try:
        per_restart = []
        for number in range(restarts):
            before = gen.ask("welcomes")["count"]
            target = sum(before) + n
            attempts_before = gen.ask("status")["connect_attempts"]
            server = _restart(setup, server)
            try:
                wait_for(
                    lambda target=target: gen.ask("status")["welcomes"] >= target,
                    REATTACH_TIMEOUT,
                    0.02,
                    "every session to re-attach",
                )
            except TimeoutError:
                pass
            status = gen.ask("status")
            welcomes = gen.ask("welcomes")
            back = [
                last
                for last, count, old in zip(
                    welcomes["last"], welcomes["count"], before, strict=True
                )
                if count > old and last is not None
            ]
            per_restart.append(
                _restart_figures(
                    number + 1,
                    server,
                    n,
                    back,
                    refused=status["refused"],
                    connect_attempts=status["connect_attempts"] - attempts_before,
                )
            )
    finally:
        server.kill()
        gen.stop()
    return _entry(
        n,
        f"load generator: {n} jobvisor_worker.Session objects in one process, "
        "jobs seeded into the store as running (option b)",
        per_restart,
    )
