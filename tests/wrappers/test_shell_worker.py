"""The shell worker library run by a real supervisor: examples/shell/resize.sh completes,
reports, is cancelled, fails, and re-attaches across a kill -9 of `jobvisor serve`, over
the Unix socket and loopback TCP (docs/worker-shell.md)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from supervisor.testing import (
    TEST_RUN_VAR,
    ServerProcess,
    live_workers,
    process_gone,
    wait_for,
)
from tests.supervisor.serverconfig import write_serve_config
from tests.wrappers.shell_fixtures import EXAMPLE, LIBRARY

TRANSPORTS = pytest.mark.parametrize("transport", ["unix", "tcp"])


def resize_kind(marker: str, **options: Any) -> dict[str, Any]:
    """A [jobs.NAME] table running the example, tagged for cleanup, never retried."""
    env = {TEST_RUN_VAR: marker}
    return {"command": "bash", "args": [str(EXAMPLE)], "env": env, "max_attempts": 1, **options}


def log_of(sv: Any, job_id: str) -> str:
    return (sv.settings.log_dir / f"{job_id}.log").read_text()


@TRANSPORTS
def test_example_completes_with_its_result_progress_and_logs(transport, start, marker):
    """The example resizes two images: result stored, progress at 100, logs in the job log."""
    sv = start({"resize": resize_kind(marker)}, transport=transport)
    job_id = sv.enqueue("resize", {"images": ["a.png", "b.png"], "size": "64x64"})
    job = sv.wait(job_id)
    assert job["status"] == "completed", job
    assert job["result"] == {"resized": 2, "size": "64x64"}
    assert job["attempts"] == 1
    assert job["progress"]["percent"] == 100
    assert job["progress"]["message"] == "resized b.png"
    log = log_of(sv, job_id)
    assert f"[info] resizing 2 image(s) to 64x64 (job {job_id}, attempt 1)" in log
    assert "[debug] wrote a-64x64.png" in log and "[debug] wrote b-64x64.png" in log
    assert "worker exited with code 0" in log


@TRANSPORTS
def test_cancel_runs_the_scripts_trap_and_it_is_gone_within_kill_grace(
    transport, start, marker, tmp_path
):
    """A cancel becomes SIGTERM: the script's trap logs and exits before any escalation."""
    grace = 10.0
    sv = start({"resize": resize_kind(marker)}, transport=transport, kill_grace=grace)
    ready = tmp_path / "ready"
    job_id = sv.enqueue("resize", {"images": ["a.png"], "delay": 60, "ready_file": str(ready)})
    wait_for(ready.exists, message="the script to connect")
    pid = sv.job(job_id)["pid"]
    sv.cancel(job_id, "no longer needed")
    assert sv.wait(job_id)["status"] == "cancelled"
    # The supervisor's own SIGTERM would come only after `grace`: gone well before it.
    wait_for(lambda: process_gone(pid), timeout=grace / 2, message="the script to exit")
    wait_for(lambda: not list(live_workers(marker)), message="the helper and sleep to go")
    # The trap's line left before the script exited; the supervisor writes it once its loop
    # reads it, which on a busy machine may be after the processes are seen gone.
    wait_for(
        lambda: "[warn] cancelled: removing partial output" in log_of(sv, job_id),
        message="the trap's log line",
    )
    wait_for(lambda: "worker exited with code 143" in log_of(sv, job_id))


@TRANSPORTS
def test_job_fail_fails_the_job_with_its_message(transport, start, marker):
    """job_fail MESSAGE is the job's error; the error log line comes before it."""
    sv = start({"resize": resize_kind(marker)}, transport=transport)
    job_id = sv.enqueue("resize", {"images": ["a.png"], "fail": "disk full"})
    job = sv.wait(job_id)
    assert job["status"] == "failed"
    assert job["error"]["message"] == "disk full"
    assert "[error] giving up: disk full" in log_of(sv, job_id)


@TRANSPORTS
def test_a_non_zero_exit_fails_the_job_with_the_status(transport, start, marker):
    """A script that exits 3 without an outcome fails, reported by its EXIT trap."""
    sv = start({"resize": resize_kind(marker)}, transport=transport)
    job_id = sv.enqueue("resize", {"images": ["a.png"], "exit": 3})
    job = sv.wait(job_id)
    assert job["status"] == "failed"
    assert job["error"]["message"] == "the script exited with status 3"
    wait_for(lambda: "worker exited with code 3" in log_of(sv, job_id))


@TRANSPORTS
def test_a_script_killed_with_sigkill_fails_and_leaves_no_helper(
    transport, start, marker, tmp_path
):
    """kill -9 of the script fails the job; its helper and children are gone too."""
    sv = start({"resize": resize_kind(marker)}, transport=transport)
    ready = tmp_path / "ready"
    job_id = sv.enqueue("resize", {"images": ["a.png"], "delay": 60, "ready_file": str(ready)})
    wait_for(ready.exists, message="the script to connect")
    os.kill(sv.job(job_id)["pid"], signal.SIGKILL)
    job = sv.wait(job_id)
    assert job["status"] == "failed"
    assert job["error"]["message"] == "killed by SIGKILL"
    wait_for(lambda: not list(live_workers(marker)), message="the helper to go")


def _config(tmp_path: Path, marker: str, transport: str) -> Path:
    return write_serve_config(
        tmp_path,
        f"""
[jobs.resize]
command = "bash"
args = ["{EXAMPLE}"]
env = {{ {TEST_RUN_VAR} = "{marker}" }}
max_attempts = 1
""",
        transport=transport,
    )


@TRANSPORTS
def test_the_script_reattaches_across_a_kill_9_of_the_supervisor(transport, tmp_path, marker):
    """kill -9 and restart of `jobvisor serve`: same process, one attempt, its result, and
    the reconnection logged with the script's pid."""
    config = _config(tmp_path, marker, transport)
    ready, go = tmp_path / "ready", tmp_path / "go"
    server = ServerProcess(config).start()
    try:
        data = {"images": ["a.png"], "ready_file": str(ready), "wait_file": str(go)}
        job_id = server.client.submit("resize", data)
        wait_for(ready.exists, timeout=30, message="the script to connect")
        pid = server.client.get(job_id)["pid"]
        server.kill()
        server = ServerProcess(config).start()
        wait_for(
            lambda: server.client.get(job_id)["process_state"] == "running",
            timeout=30,
            message="the helper to re-attach",
        )
        go.touch()
        job = server.client.wait(job_id, timeout=30)
        assert job["status"] == "completed", job
        assert job["result"] == {"resized": 1, "size": "128x128"}
        assert job["attempts"] == 1
        assert job["pid"] == pid
        assert ready.read_text().split() == [str(pid)]  # one run, never started again
        log = (tmp_path / "state" / "logs" / f"{job_id}.log").read_text()
        # hello names the script (the process the supervisor started), not its helper
        assert f"worker reconnected (pid {pid})" in log
    finally:
        server.kill()


def test_the_supervisor_tells_workers_its_python(start, marker, tmp_path):
    """Every worker's environment has JOBVISOR_PYTHON, the supervisor's interpreter."""
    seen = tmp_path / "python"
    kind = {
        "command": "bash",
        "args": ["-c", f'printf %s "$JOBVISOR_PYTHON" > {seen}'],
        "env": {TEST_RUN_VAR: marker},
        "max_attempts": 1,
    }
    sv = start({"probe": kind})
    sv.wait(sv.enqueue("probe"))
    assert seen.read_text() == sys.executable


def test_shell_lib_and_path_print_the_installed_library():
    """`jobvisor shell-lib` and `python -m jobvisor_worker.shell --path` name the library."""
    bindir = Path(sys.executable).parent
    for argv in (
        [str(bindir / "jobvisor"), "shell-lib"],
        [sys.executable, "-m", "jobvisor_worker.shell", "--path"],
    ):
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True, cwd="/")
        assert Path(done.stdout.strip()).resolve() == LIBRARY.resolve()


def test_a_timed_out_script_keeps_the_supervisors_reason(start, marker, tmp_path):
    """The supervisor's group SIGTERM ends the script; its exit status is not reported."""
    sv = start({"resize": resize_kind(marker, timeout=1)})
    job_id = sv.enqueue("resize", {"images": ["a.png"], "delay": 60})
    job = sv.wait(job_id)
    assert job["status"] == "failed"
    assert job["error"]["message"] == "timed out after 1 s"
    wait_for(
        lambda: "worker exited with code" in log_of(sv, job_id) or "killed by" in log_of(sv, job_id)
    )
    assert "the script exited" not in log_of(sv, job_id)


def test_exit_0_without_an_outcome_fails_by_the_supervisors_rule(start, marker, tmp_path):
    """A script that ends cleanly without job_complete is not taken as a success."""
    script = tmp_path / "forgets.sh"
    script.write_text(f'source {LIBRARY}\njob_init\njob_info "forgot to complete"\n')
    kind = {"command": "bash", "args": [str(script)], "env": {TEST_RUN_VAR: marker}}
    sv = start({"forgets": {**kind, "max_attempts": 1}})
    job = sv.wait(sv.enqueue("forgets"))
    assert job["status"] == "failed"
    assert job["error"]["message"] == "exited without reporting a result (exit code 0)"
