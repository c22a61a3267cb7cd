"""``Supervisor.settled``: each job's final status reaches a listener exactly once."""

from __future__ import annotations

import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

from supervisor.records import JobRecord
from supervisor.testing import SupervisorThread, wait_for

WORKER = """
import sys
import time
from jobvisor_worker import run_job


def handle(job):
    if job.data == "fail":
        raise RuntimeError("asked to fail")
    if job.data == "hang":
        time.sleep(60)
    return {"echo": job.data}


run_job(handle)
"""


def test_a_final_status_reaches_a_listener_once(
    start: Callable[..., SupervisorThread], marker: str, tmp_path: Path
) -> None:
    """Completed, failed after its last attempt, cancelled, failed at start: one call each."""
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(WORKER))
    env = {"JOBVISOR_TEST_RUN": marker}
    jobs = {
        "echo": {
            "command": sys.executable,
            "args": [str(script)],
            "env": env,
            "max_attempts": 2,
            "retry_delay": 0.1,
        },
        "missing": {"command": str(tmp_path / "program"), "max_attempts": 1},
    }
    program = tmp_path / "program"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    sv = start(jobs)
    program.unlink()  # its attempt fails at start
    heard: list[tuple[str, str]] = []
    lock = threading.Lock()

    def listener(job: JobRecord) -> None:
        assert threading.current_thread() is sv.thread  # on the loop
        with lock:
            heard.append((job.id, job.status.value))

    sv.call(lambda: sv.sup.settled.append(listener))
    done = sv.enqueue("echo", "hello")
    failed = sv.enqueue("echo", "fail")
    hung = sv.enqueue("echo", "hang")
    unstartable = sv.enqueue("missing", None)
    sv.wait(done)
    sv.wait(failed)
    sv.wait(unstartable)
    sv.wait(hung, "running")
    sv.cancel(hung)
    sv.wait(hung)
    assert sv.job(failed)["attempts"] == 2
    expected = {
        (done, "completed"),
        (failed, "failed"),
        (hung, "cancelled"),
        (unstartable, "failed"),
    }
    wait_for(lambda: len(heard) >= 4, message="four settled jobs")
    with lock:
        assert sorted(heard) == sorted(expected)  # each once: the retry was no settling
