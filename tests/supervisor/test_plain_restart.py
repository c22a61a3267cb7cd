"""Plain jobs across a ``kill -9`` of the supervisor (docs/worker-plain.md): the program's
wrapper is re-adopted by PID and start time, never re-run, and its exit file decides."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from supervisor.client import ClientError
from supervisor.testing import (
    TEST_RUN_VAR,
    ServerProcess,
    live_workers,
    process_gone,
    wait_for,
)
from tests.supervisor.serverconfig import write_serve_config

# Counts its runs, says it is ready, waits for the test's go, prints its result.
SCRIPT = (
    'echo run >> "$DIR/runs"; touch "$DIR/ready"; '
    'while [ ! -e "$DIR/go" ]; do sleep 0.02; done; echo \'{"ok": true}\''
)


@pytest.fixture(params=["unix", "tcp"])
def config(request: pytest.FixtureRequest, tmp_path: Path, marker: str) -> Path:
    """A supervisor config with one plain kind, on either worker transport."""
    return write_serve_config(
        tmp_path,
        f"""
[jobs.plain]
command = "sh"
args = ["-c", {json.dumps(SCRIPT)}]
protocol = "none"
max_attempts = 1
env = {{ {TEST_RUN_VAR} = "{marker}", DIR = "{tmp_path}" }}
""",
        transport=request.param,
    )


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    """Supervisor processes started by a test, killed at teardown."""
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.kill()


def serve(config: Path, servers: list[ServerProcess]) -> ServerProcess:
    server = ServerProcess(config).start()
    servers.append(server)
    return server


def started(server: ServerProcess, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    """Submit the plain job; its id and JSON once the program runs."""
    job_id = server.client.submit("plain", {})
    wait_for((tmp_path / "ready").exists, message="the program to start")
    return job_id, server.client.get(job_id)


def test_a_running_program_is_readopted_and_completes_once(config, tmp_path, servers):
    """After kill -9 and a restart the same program carries on (same PID, one attempt,
    one run) and its exit completes the job."""
    server = serve(config, servers)
    job_id, before = started(server, tmp_path)
    server.kill()
    server = serve(config, servers)
    after = server.client.get(job_id)
    assert (after["status"], after["process_state"]) == ("running", "running")
    assert (after["pid"], after["attempts"]) == (before["pid"], 1)
    (tmp_path / "go").touch()
    job = server.client.wait(job_id, timeout=30)
    assert job["status"] == "completed", job["error"]
    assert job["result"] == {"ok": True}
    assert job["attempts"] == 1
    assert (tmp_path / "runs").read_text() == "run\n"
    log = server.client.logs(job_id).data.decode()
    assert f"re-adopted the program's wrapper {before['pid']}" in log


def test_a_program_that_ends_while_no_supervisor_runs_is_judged_by_its_exit_file(
    config, tmp_path, servers
):
    """A program that completes while the supervisor is down completes the job on the
    next start, with its result, without being re-run."""
    server = serve(config, servers)
    job_id, before = started(server, tmp_path)
    server.kill()
    (tmp_path / "go").touch()
    wait_for(lambda: process_gone(before["pid"]), message="the wrapper to exit")
    server = serve(config, servers)
    job = server.client.wait(job_id, timeout=30)
    assert job["status"] == "completed", job["error"]
    assert job["result"] == {"ok": True}
    assert job["attempts"] == 1
    assert (tmp_path / "runs").read_text() == "run\n"


@pytest.mark.parametrize("when", ["after the restart", "while no supervisor runs"])
def test_a_wrapper_killed_alone_after_a_crash_leaves_the_exit_status_unknown(
    config, tmp_path, servers, marker, when
):
    """Its wrapper killed (by someone else) once the supervisor that spawned it is gone,
    nobody knows how the program ended: the attempt fails as exit_unknown, and the
    program, still running, is stopped."""
    server = serve(config, servers)
    job_id, before = started(server, tmp_path)
    server.kill()
    if when == "while no supervisor runs":
        os.kill(before["pid"], signal.SIGKILL)
        wait_for(lambda: process_gone(before["pid"]), message="the wrapper to die")
    server = serve(config, servers)
    if when == "after the restart":
        assert server.client.get(job_id)["pid"] == before["pid"]
        os.kill(before["pid"], signal.SIGKILL)
    job = server.client.wait(job_id, timeout=30)
    assert job["status"] == "failed"
    assert job["error"]["reason"] == "exit_unknown"
    assert "exit status unknown" in job["error"]["message"]
    wait_for(lambda: not list(live_workers(marker)), message="the program to be stopped")


@pytest.mark.parametrize("ended", [False, True], ids=["still running", "ended meanwhile"])
def test_a_crash_before_the_pid_is_committed_neither_loses_nor_reruns_the_program(
    config, tmp_path, servers, marker, ended
):
    """The supervisor dies between spawning the wrapper and committing its PID: the next
    one finds the wrapper by its job id (or, if it has exited, its exit file) and the
    program runs once."""
    crashing = ServerProcess(config, env={"JOBVISOR_CRASH_AT": "spawn"})
    servers.append(crashing.start())
    with contextlib.suppress(OSError, ClientError):  # the answer may die with it
        crashing.client.submit("plain", {})
    wait_for((tmp_path / "ready").exists, message="the program to start")
    assert crashing.proc is not None
    wait_for(lambda: crashing.proc.poll() is not None, message="the supervisor to crash")
    if ended:
        (tmp_path / "go").touch()
        wait_for(lambda: not list(live_workers(marker)), message="the program to end")
    server = serve(config, servers)
    [listed] = server.client.list()
    if not ended:
        wait_for(lambda: server.client.get(listed["id"])["pid"], message="the adopted PID")
        (tmp_path / "go").touch()
    job = server.client.wait(listed["id"], timeout=30)
    assert job["status"] == "completed", job["error"]
    assert job["result"] == {"ok": True}
    assert (tmp_path / "runs").read_text() == "run\n"
