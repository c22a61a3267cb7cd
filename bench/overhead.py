"""Overhead: what the supervisor adds to running a trivial worker, per job.

The worker is ``trivial_worker.c`` (hello, welcome, started, completed, ack, exit 0),
built with gcc -O2 at bench time (``cworker.py``). The baseline is the same binary with
``--bare`` (exit 0 at once), spawned from this process through the same spawn path the
supervisor uses (``subprocess.Popen`` with a new session, closed fds, stdin from
/dev/null, stdout+stderr appended to a log file) and waited for.

* One at a time: M jobs of a kind with ``concurrency = 1``, all made due at the same
  moment (``run_at``), so they run back to back and nothing else shares the loop.
  Supervised latency is the job's ``started_at`` -> ``finished_at`` (the supervisor marks
  it running, commits, spawns ... receives ``completed``), read from the store's REAL
  columns (microseconds; the API shows milliseconds). Bare latency is Popen -> wait().
  Added cost = supervised percentile - bare percentile (median and p99).
* In parallel: M jobs with ``concurrency = P``: jobs/s from the first start to the last
  completion, against bare spawns/s with P in flight.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.cworker import Worker, build
from bench.harness import Run, Server, Setup
from bench.machine import bind_cost_us, mount_of
from bench.stats import percentile, summary
from supervisor.testing import wait_for

PARALLEL = 4
WARMUP_JOBS = 3


def run(bench: Run) -> dict[str, Any]:
    sequential = 30 if bench.quick else 200
    parallel = 60 if bench.quick else 400
    worker = build()
    bench.say(f"overhead: {worker.description}; {sequential} one at a time, {parallel} x{PARALLEL}")
    env = bench.env
    kind = {
        "command": worker.command,
        "args": list(worker.args),
        "env": env,
        "heartbeat_timeout": 30.0,
        "max_attempts": 1,
    }
    setup = Setup(
        bench,
        "overhead",
        {"trivial": {**kind, "concurrency": 1}, "trivial_par": {**kind, "concurrency": PARALLEL}},
        concurrency=PARALLEL,
    )
    log = setup.dir / "bare.log"
    create_us = bind_cost_us(str(setup.dir))
    server = setup.start()
    try:
        _batch(server, setup, "trivial", WARMUP_JOBS)  # first exec, page cache, ...
        seq_ids = _batch(server, setup, "trivial", sequential)
        par_ids = _batch(server, setup, "trivial_par", parallel)
    finally:
        server.kill()
    # Read once the supervisor is gone: while it runs, it holds the store's lock.
    seq_rows = _times(setup, seq_ids)
    par_rows = _times(setup, par_ids)
    bare_env = {**os.environ, **env}  # inherited environment plus the marker, built once
    _bare_sequential(worker, bare_env, log, WARMUP_JOBS)
    bare_seq = _bare_sequential(worker, bare_env, log, sequential)
    bare_par_rate = _bare_parallel(worker, bare_env, log, parallel, PARALLEL)

    supervised = sorted(finished - started for started, finished in seq_rows)
    bare = sorted(bare_seq)
    jobs_per_s = len(par_rows) / (max(f for _, f in par_rows) - min(s for s, _ in par_rows))
    seq_span = max(f for _, f in seq_rows) - min(s for s, _ in seq_rows)
    return {
        "params": {
            "sequential_jobs": sequential,
            "parallel_jobs": parallel,
            "parallel": PARALLEL,
            "transport": "unix",
            "worker": worker.description,
            "state_folder_fs": mount_of(str(setup.dir)),
            "file_create_us_median_at_start": create_us,
        },
        "figures": {
            "worker": worker.description,
            "sequential": {
                "supervised_ms": summary(supervised, 1000, 3),
                "bare_ms": summary(bare, 1000, 3),
                "added_median_ms": round(
                    (percentile(supervised, 50) - percentile(bare, 50)) * 1000, 3
                ),
                "added_p99_ms": round(
                    (percentile(supervised, 99) - percentile(bare, 99)) * 1000, 3
                ),
                "jobs_per_s": round(len(seq_rows) / seq_span, 1),
                "bare_spawns_per_s": round(len(bare) / sum(bare), 1),
            },
            "parallel": {
                "parallel": PARALLEL,
                "jobs_per_s": round(jobs_per_s, 1),
                "bare_spawns_per_s": round(bare_par_rate, 1),
                "ratio": round(jobs_per_s / bare_par_rate, 3),
            },
        },
        "caveats": [
            "supervised latency ends when the supervisor receives 'completed' (before the "
            "ack's commit and the worker's exit); the bare one ends when wait() returns, "
            "exit included",
            "each supervised job creates its own log file (the bare baseline appends to one "
            "existing file): that file creation is part of the added cost; see "
            "file_create_us_median_at_start for what it cost on this disk during the run",
            "jobs/s (supervised) also includes the ack's commit, noticing each exit (pidfd) "
            "and starting the next job; per-job SQLite commits use synchronous=NORMAL",
            *([f"C worker unavailable: {worker.note}"] if not worker.compiled else []),
        ],
        "error": None,
    }


def _batch(server: Server, setup: Setup, kind: str, count: int) -> list[str]:
    """Submit ``count`` jobs due at one moment; their ids once every one has finished."""
    before = server.metrics()
    done_before = before.get("jobvisor_completed_total", 0) + before.get("jobvisor_failed_total", 0)
    due = time.time() + 0.3 + count * 0.004
    ids = [server.client.submit(kind, None, run_at=due) for _ in range(count)]

    def finished() -> bool:
        m = server.metrics()
        done = m.get("jobvisor_completed_total", 0) + m.get("jobvisor_failed_total", 0)
        return done - done_before >= count

    wait_for(finished, 60 + count * 0.2, 0.1, f"{count} {kind} jobs to finish")
    return ids


def _times(setup: Setup, ids: list[str]) -> list[tuple[float, float]]:
    """(started_at, finished_at) of the jobs, from the store (full precision); all completed."""
    assert setup.settings.db_path is not None
    db = sqlite3.connect(f"file:{setup.settings.db_path}?mode=ro", uri=True, timeout=10)
    try:
        wanted = set(ids)
        rows = db.execute(
            "SELECT id, started_at, finished_at FROM jobs WHERE status = 'completed'"
        ).fetchall()
    finally:
        db.close()
    times = [(started, finished) for job_id, started, finished in rows if job_id in wanted]
    if len(times) != len(ids):
        raise RuntimeError(f"only {len(times)} of {len(ids)} jobs completed; see {setup.dir}")
    return times


def _spawn(worker: Worker, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """The supervisor's spawn path (supervisor/procs.py), for the --bare baseline."""
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        return subprocess.Popen(
            worker.argv("--bare"),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=fd,
            start_new_session=True,
            close_fds=True,
        )
    finally:
        os.close(fd)


def _bare_sequential(worker: Worker, env: dict[str, str], log: Path, count: int) -> list[float]:
    latencies = []
    for _ in range(count):
        began = time.perf_counter()
        proc = _spawn(worker, env, log)
        if proc.wait() != 0:
            raise RuntimeError(f"bare worker exited {proc.returncode}")
        latencies.append(time.perf_counter() - began)
    return latencies


def _bare_parallel(
    worker: Worker, env: dict[str, str], log: Path, count: int, parallel: int
) -> float:
    """Spawns/s with ``parallel`` bare workers in flight."""
    running: dict[int, subprocess.Popen[bytes]] = {}
    started = 0
    began = time.perf_counter()
    while started < count or running:
        while started < count and len(running) < parallel:
            proc = _spawn(worker, env, log)
            running[proc.pid] = proc
            started += 1
        pid, status = os.wait()
        proc = running.pop(pid, None)
        if proc is not None:
            proc.returncode = os.waitstatus_to_exitcode(status)
    return count / (time.perf_counter() - began)
