"""A CPU-bound Python worker under a real supervisor (docs/worker-python.md, "A busy main
thread"): its latest progress reaches the supervisor while its main thread keeps the
interpreter busy, and its heartbeats keep it from being judged stale."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from supervisor.testing import TEST_RUN_VAR, SupervisorThread, wait_for

SPINNER = Path(__file__).parent / "workers" / "spinner.py"
transports = pytest.mark.parametrize("transport", ["unix", "tcp"])
# Short, yet long enough that a 2-core machine running the whole suite beside this test
# does not deschedule the worker's I/O thread for that long (2.0 s was seen judged stale
# there once): a heartbeat every 4/3 s.
HEARTBEAT_TIMEOUT = 4.0


def _spinner(marker: str, heartbeat_timeout: float) -> dict[str, Any]:
    return {
        "command": sys.executable,
        "args": [str(SPINNER)],
        "env": {TEST_RUN_VAR: marker},
        "heartbeat_timeout": heartbeat_timeout,
        "max_attempts": 1,
    }


def _progress(sv: SupervisorThread, job_id: str) -> dict[str, Any]:
    progress: dict[str, Any] = sv.job(job_id)["progress"]
    return progress


def _finish(sv: SupervisorThread, job_id: str, folder: Path) -> dict[str, Any]:
    (folder / "finish").touch()
    return sv.wait(job_id, timeout=60)


@transports
def test_a_spinning_worker_s_progress_keeps_arriving_and_its_last_is_seen(
    start: Callable[..., SupervisorThread], marker: str, tmp_path: Path, transport: str
) -> None:
    """Progress called in a tight loop keeps reaching the supervisor, and the last one
    arrives while the main thread spins on without calling the library, long before any
    heartbeat is due."""
    # A heartbeat every 5 s: only a prompt wake-up of the I/O thread can deliver "last".
    sv = start({"spin": _spinner(marker, 30.0)}, transport=transport)
    job_id = sv.enqueue("spin", {"folder": str(tmp_path)})
    wait_for(lambda: _progress(sv, job_id)["message"] == "spinning", message="progress")
    # The supervisor keeps seeing newer reports while the loop runs, not one per heartbeat.
    seen: set[int] = set()
    wait_for(
        lambda: seen.add(_progress(sv, job_id)["data"]["n"]) or len(seen) >= 20,
        timeout=4.0,  # generous, and still short of the first heartbeat's 5 s
        message="20 different progress reports while the worker spins",
    )
    (tmp_path / "stop").touch()
    last = wait_for(
        lambda: (p := _progress(sv, job_id))["message"] == "last" and p,
        timeout=3.0,  # generous: the I/O thread needs one turn at the GIL, about 5 ms
        message="the last progress while the worker spins",
    )
    assert last["percent"] == 100
    job = _finish(sv, job_id, tmp_path)
    assert job["status"] == "completed", job
    assert last["data"] == {"n": job["result"]["calls"]}


@transports
def test_a_spinning_worker_is_never_stale(
    start: Callable[..., SupervisorThread], marker: str, tmp_path: Path, transport: str
) -> None:
    """A worker whose main thread never blocks, first calling progress() in a tight loop,
    then not calling the library at all, is never judged stale with a short heartbeat
    timeout, and completes in its first attempt."""
    sv = start({"spin": _spinner(marker, HEARTBEAT_TIMEOUT)}, transport=transport)
    job_id = sv.enqueue("spin", {"folder": str(tmp_path)})
    # Each phase lasts a few heartbeat timeouts, as the supervisor's watchdog sees them.
    _heard(sv, job_id, 4)
    (tmp_path / "stop").touch()
    wait_for(lambda: _progress(sv, job_id)["message"] == "last", message="the last progress")
    _heard(sv, job_id, 4)  # only the I/O thread speaks now: heartbeats
    job = _finish(sv, job_id, tmp_path)
    assert job["status"] == "completed", job
    assert job["attempts"] == 1, job
    assert "job.stale" not in sv.event_names(job_id), [
        (e.name, e.time, e.data.get("silent_for"))
        for e in sv.events
        if e.name != "job.external.progress"
    ]


def _heard(sv: SupervisorThread, job_id: str, count: int) -> None:
    """Wait until the supervisor has heard from the worker at ``count`` more moments
    (``last_heartbeat``, moved by every batch of messages), each a heartbeat interval
    after the last."""
    heard: list[float] = []

    def more() -> bool:
        stamp = sv.call(lambda: sv.sup.get(job_id)).last_heartbeat  # type: ignore[union-attr]
        if stamp is not None and (not heard or stamp >= heard[-1] + HEARTBEAT_TIMEOUT / 3):
            heard.append(stamp)
        return len(heard) > count

    # Polled gently: each look is a loop iteration and a commit of the supervisor's own.
    wait_for(more, timeout=60, interval=0.1, message=f"{count} moments the worker was heard")
