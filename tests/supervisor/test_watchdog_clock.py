"""Heartbeat deadlines on a ManualClock: hours of silence judged without sleeping."""

from __future__ import annotations

import sys
from pathlib import Path

import psutil

from supervisor.clock import ManualClock
from supervisor.core import Supervisor
from supervisor.testing import TEST_RUN_VAR, make_settings, wait_for

WORKERS = Path(__file__).parent / "workers"


def _pump(sup: Supervisor, until, timeout: float = 20.0) -> None:
    """Run loop iterations (real I/O, manual time) until ``until()`` holds."""
    wait_for(lambda: sup.loop.run_once(timeout=0.01) or until(), timeout=timeout)


def test_stale_at_one_timeout_and_kill_at_two_on_a_manual_clock(tmp_path, marker):
    """A silent worker: nothing at 0.99x, job.stale at 1x, killed at 2x heartbeat_timeout."""
    clock = ManualClock()
    hour = 3600.0
    settings = make_settings(
        tmp_path / "state",
        {
            "quiet": {
                "command": sys.executable,
                "args": [str(WORKERS / "silent.py")],
                "heartbeat_timeout": hour,
                "max_attempts": 1,
                "env": {TEST_RUN_VAR: marker},
            }
        },
        http="",
        kill_grace=60.0,
    )
    sup = Supervisor(settings, clock=clock)
    sup.open()
    events: list[str] = []
    sup.on("job.*", lambda e: events.append(e.name))
    try:
        job = sup.enqueue("quiet")
        _pump(sup, lambda: job.process_state is not None and job.process_state.value == "running")
        pid = job.pid
        assert pid is not None

        clock.advance(0.99 * hour)
        sup.loop.run_once(timeout=0)
        assert "job.stale" not in events

        clock.advance(0.02 * hour)
        _pump(sup, lambda: "job.stale" in events)
        assert job.status.value == "running"

        clock.advance(0.98 * hour)  # 1.99 hours of silence
        sup.loop.run_once(timeout=0)
        assert psutil.Process(pid).status() != psutil.STATUS_ZOMBIE

        clock.advance(0.02 * hour)  # past two timeouts: SIGTERM, the worker dies of it
        _pump(sup, lambda: job.status.value == "failed")
        assert job.error is not None and job.error["reason"] == "stale"
        assert "heartbeat_timeout 3600 s" in job.error["message"]
        assert events.index("job.stale") < events.index("job.failed")
    finally:
        sup.close()


def test_a_starting_worker_has_the_reconnect_window_for_its_first_hello(tmp_path, marker):
    """heartbeat_timeout 0.5: a worker slow to start is not killed at 1 s, but after 5 s."""
    clock = ManualClock()
    gate = tmp_path / "gate-{job}"
    settings = make_settings(
        tmp_path / "state",
        {
            "late": {
                "command": sys.executable,
                "args": [str(WORKERS / "late.py")],
                "heartbeat_timeout": 0.5,
                "max_attempts": 1,
                "env": {TEST_RUN_VAR: marker, "LATE_GATE": str(gate)},
            }
        },
        http="",
        worker_reconnect_interval=2.0,
    )
    sup = Supervisor(settings, clock=clock)
    sup.open()
    events: list[str] = []
    sup.on("job.*", lambda e: events.append(e.name))
    try:
        slow, silent = sup.enqueue("late"), sup.enqueue("late")
        _pump(sup, lambda: slow.pid is not None and silent.pid is not None)
        clock.advance(4.9)  # far beyond 2 x heartbeat_timeout, inside 2 x 2 s + 1 s
        sup.loop.run_once(timeout=0)
        assert slow.status.value == silent.status.value == "running"
        assert "job.stale" not in events
        (tmp_path / f"gate-{slow.id}").touch()
        _pump(sup, lambda: slow.status.value == "completed")
        clock.advance(0.2)  # 5.1 s: the other one never connected
        _pump(sup, lambda: silent.status.value == "failed")
        assert silent.error is not None and silent.error["reason"] == "stale"
        assert "did not connect within 5 s" in silent.error["message"]
    finally:
        sup.close()
