"""Busy worker: how soon a CPU-bound Python worker's progress reaches the supervisor.

A real supervisor (``SupervisorThread`` in this process, Unix socket transport,
``heartbeat_timeout = HEARTBEAT_TIMEOUT``, so the welcome asks for a heartbeat every
``HEARTBEAT_TIMEOUT / 3`` s) runs ``bench/workers/busy.py`` twice, one after the other:

* **idle** (the floor): ``progress()`` every 10 ms with a sleep between, so the library's
  I/O thread has the interpreter to itself whenever it needs it;
* **busy**: ``progress()`` in a tight Python loop, the main thread never blocking.

Both then spin ``SPIN`` seconds in a pure Python loop without calling the library, so
only the I/O thread's heartbeats keep the job alive.

Each progress carries ``t``, the wall time of its ``progress()`` call; the supervisor's
``job.*.progress`` events (one per loop iteration that received any: coalesced, like the
worker's own outbox) are stamped on arrival in the subscriber. Figures, per worker:

* ``lag_ms``: arrival - call, of the progress that arrived;
* ``staleness_ms``: how old the progress the supervisor shows can get: for consecutive
  arrivals k and k+1, arrival(k+1) - call(k) (the busy worker has made newer calls all
  along). Its p99 is the figure the target (``TARGET_MS``) is about;
* ``calls_per_s``, ``messages_per_s``, ``arrived_per_s``: ``progress()`` calls made per
  second; messages the supervisor decoded from the worker per second (its
  ``worker_messages`` counter, the spin's few heartbeats included), after the worker's
  coalescing; progress changes it applied per second (one per loop iteration at most);
* ``max_silence_ms``: the longest time the supervisor went without any message from the
  worker (polled every ``POLL`` s on its loop), and ``heartbeat_late_ms``: that minus the
  heartbeat interval, over the whole run including the spin; up to ``POLL`` of it is the
  polling's own granularity, so "on time" is late by at most ``POLL``, and never stale.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from bench.child import ROOT
from bench.harness import Run
from bench.stats import percentile, summary
from supervisor.events import Event
from supervisor.testing import SupervisorThread, make_settings, wait_for

WORKER = ROOT / "bench" / "workers" / "busy.py"
HEARTBEAT_TIMEOUT = 1.5
TARGET_MS = 100.0
POLL = 0.02


def run(bench: Run) -> dict[str, Any]:
    seconds = 2.0 if bench.quick else 8.0
    spin = 1.0 if bench.quick else 4.0
    bench.say(f"busy-worker: {seconds:g} s of progress calls, then {spin:g} s of spin; idle, busy")
    folder = bench.folder("busy-worker")
    settings = make_settings(
        folder / "state",
        {
            "busy": {
                "command": sys.executable,
                "args": [str(WORKER)],
                "env": {**bench.env, "PYTHONPATH": str(ROOT)},
                "heartbeat_timeout": HEARTBEAT_TIMEOUT,
                "max_attempts": 1,
            }
        },
        transport="unix",
    )
    figures = {}
    with SupervisorThread(settings) as sv:
        for mode in ("idle", "busy"):
            figures[mode] = _one(sv, mode, seconds, spin)
    busy, idle = figures["busy"], figures["idle"]
    return {
        "params": {
            "seconds": seconds,
            "spin_s": spin,
            "heartbeat_timeout_s": HEARTBEAT_TIMEOUT,
            "heartbeat_interval_s": HEARTBEAT_TIMEOUT / 3,
            "target_staleness_p99_ms": TARGET_MS,
            "transport": "unix",
            "python": sys.version.split()[0],
        },
        "figures": {
            **figures,
            "met_target": busy["staleness_ms"].get("p99", float("inf")) <= TARGET_MS
            and busy["heartbeat_late_ms"] <= POLL * 1000
            and busy["stale_events"] == 0,
            "staleness_p99_over_idle_ms": round(
                busy["staleness_ms"].get("p99", float("nan"))
                - idle["staleness_ms"].get("p99", float("nan")),
                1,
            ),
        },
        "caveats": [
            "the supervisor runs on a thread of the bench process and the worker is a child "
            "process: on 2 shared cores the three compete with whatever else runs",
            "staleness is measured at each arrival, so a p99 needs enough arrivals; the "
            "idle worker's 10 ms between calls is part of its own staleness",
            "a C extension holding the GIL stops the I/O thread too: nothing in the "
            "library can send then (docs/worker-python.md, 'A busy main thread')",
        ],
        "error": None,
    }


def _one(sv: SupervisorThread, mode: str, seconds: float, spin: float) -> dict[str, Any]:
    arrivals: list[tuple[float, float]] = []  # (arrived, called), wall clock

    def on_progress(event: Event) -> None:
        data = event.data.get("data")
        if isinstance(data, dict) and isinstance(data.get("t"), float):
            arrivals.append((time.time(), data["t"]))

    unsubscribe = sv.on("job.*progress", on_progress)
    messages_before = sv.call(lambda: sv.sup.counters.worker_messages)
    job_id = sv.enqueue("busy", {"mode": mode, "seconds": seconds, "spin": spin})
    silences: list[float] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            seen = sv.call(lambda: _last_heard(sv, job_id))
            if seen is not None:
                silences.append(time.time() - seen)
            time.sleep(POLL)

    poller = threading.Thread(target=poll, name="busy-poll", daemon=True)
    poller.start()
    try:
        job = wait_for(
            lambda: (j := sv.job(job_id))["status"] in ("completed", "failed") and j,
            timeout=seconds + spin + 60,
            message=f"the {mode} worker to finish",
        )
    finally:
        done.set()
        poller.join()
        unsubscribe()
    messages = sv.call(lambda: sv.sup.counters.worker_messages) - messages_before
    if job["status"] != "completed":
        raise RuntimeError(f"the {mode} worker ended {job['status']}: {job.get('error')}")
    calls = job["result"]["calls"]
    lags = [arrived - called for arrived, called in arrivals]
    stale = [arrivals[k + 1][0] - arrivals[k][1] for k in range(len(arrivals) - 1)]
    max_silence = max(silences, default=float("nan"))
    return {
        "calls": calls,
        "calls_per_s": round(calls / seconds),
        "messages": messages,
        "messages_per_s": round(messages / seconds),
        "arrived": len(arrivals),
        "arrived_per_s": round(len(arrivals) / seconds),
        "lag_ms": summary(lags, 1000, 2),
        "staleness_ms": summary(stale, 1000, 2),
        "staleness_p90_ms": round(percentile(sorted(stale), 90) * 1000, 2),
        "max_silence_ms": round(max_silence * 1000, 1),
        "heartbeat_late_ms": round((max_silence - HEARTBEAT_TIMEOUT / 3) * 1000, 1),
        "stale_events": sv.event_names(job_id).count("job.stale"),
    }


def _last_heard(sv: SupervisorThread, job_id: str) -> float | None:
    job = sv.sup.get(job_id)
    return None if job is None or job.status.value != "running" else job.last_heartbeat
