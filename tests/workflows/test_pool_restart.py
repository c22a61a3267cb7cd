"""The warm pool across a kill -9 of a real ``jobvisor serve`` (docs/workflows.md)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.testing import (
    ServerProcess,
    _readline,
    kill_workers,
    live_workers,
    process_gone,
    short_socket_dir,
    wait_for,
)
from tests.workflows.poolhelpers import POOLWORKER, STEPS

LAUNCHER = Path(__file__).parent / "pool_serve.py"


class PoolServer(ServerProcess):
    """``ServerProcess``, but ``jobvisor serve`` runs with a warm pool on ``step``."""

    def start(self, timeout: float = 30.0) -> PoolServer:
        argv = [sys.executable, str(LAUNCHER), str(self.config), "step", "poolsteps:run"]
        with open(self.log, "a") as log:
            self.started_at = time.time()
            self.proc = subprocess.Popen(
                argv,
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
                text=True,
                env=self.env,
            )
        line = _readline(self.proc, timeout)
        self.listening_at = time.time()
        if not line.startswith("jobvisor listening on "):
            self.kill()
            raise RuntimeError(f"supervisor did not start: {line!r}; see {self.log}")
        self.line = line.strip()
        self.url = line[len("jobvisor listening on ") :].split()[0]
        return self


@pytest.fixture
def marker() -> Iterator[str]:
    """A tag in every worker's environment; all tagged processes die at teardown."""
    tag = uuid.uuid4().hex
    yield tag
    kill_workers(tag)


def write_config(tmp_path: Path, marker: str) -> Path:
    config = tmp_path / "jobvisor.toml"
    args = ", ".join(f'"{a}"' for a in [*POOLWORKER, "--path", str(STEPS), "--import", "poolsteps"])
    config.write_text(f"""
state_dir = "state"
http = "127.0.0.1:0"
socket_dir = "{short_socket_dir()}"
flush_interval = 0.1
kill_grace = 1.0
workflow_pool_size = 2

[jobs.step]
command = "{sys.executable}"
args = [{args}]
env = {{ JOBVISOR_TEST_RUN = "{marker}" }}
heartbeat_timeout = 2.0
""")
    return config


def pool_workers(marker: str) -> set[int]:
    """PIDs of the live pool workers of this test."""
    return {p.pid for p in live_workers(marker) if "supervisor.workflows.poolworker" in p.cmdline()}


@pytest.mark.slow
def test_kill_9_idle_workers_exit_and_the_busy_one_reattaches(tmp_path, marker):
    """kill -9 the supervisor mid-step: the waiting workers exit (end-of-file), the busy
    one re-attaches to the restarted supervisor and completes its one attempt."""
    config = write_config(tmp_path, marker)
    server = PoolServer(config).start()
    try:
        waiting = wait_for(
            lambda: len(p := pool_workers(marker)) == 2 and p, message="two waiting workers"
        )
        gate, started = tmp_path / "go", tmp_path / "started"
        job_id = server.client.submit(
            "step", {"touch": str(started), "wait_file": str(gate), "result": "survived"}
        )
        wait_for(started.exists, timeout=30, message="the step to start")
        busy = server.client.get(job_id)["pid"]
        assert busy in waiting  # a warm worker took the step
        idle = wait_for(
            lambda: len(p := pool_workers(marker) - {busy}) == 2 and p,
            message="the pool to refill",
        )
        server.kill()
        wait_for(lambda: all(process_gone(pid) for pid in idle), message="the idle workers to exit")
        assert not process_gone(busy)
        server = PoolServer(config).start()
        wait_for(
            lambda: server.client.get(job_id)["process_state"] == "running",
            message="the busy worker to re-attach",
        )
        gate.touch()
        job = wait_for(
            lambda: (j := server.client.get(job_id))["status"] == "completed" and j,
            message="the step to complete",
        )
        assert job["result"] == {"pid": busy, "result": "survived"}
        assert job["attempts"] == 1
        text = (tmp_path / "state" / "logs" / f"{job_id}.log").read_text()
        assert "worker reconnected" in text
        # A graceful stop closes the new pool: its waiting workers exit too.
        waiting = wait_for(
            lambda: len(p := pool_workers(marker) - {busy}) == 2 and p,
            message="the new pool to fill",
        )
        server.stop()
        wait_for(
            lambda: all(process_gone(pid) for pid in waiting),
            message="the new pool's workers to exit on a graceful stop",
        )
    finally:
        server.stop()


@pytest.mark.slow
def test_a_crash_before_the_pid_commits_leaves_no_step_running_unnamed(tmp_path, marker):
    """Killed after a worker was taken but before its PID was committed: the worker never
    got its job (it exits), and after the restart the attempt is lost and retried once."""
    config = write_config(tmp_path, marker)
    server = PoolServer(config, env={"JOBVISOR_CRASH_AT": "spawn"}).start()
    try:
        waiting = wait_for(
            lambda: len(p := pool_workers(marker)) == 2 and p, message="two waiting workers"
        )
        runs = tmp_path / "runs"
        # Scheduled a little ahead, so that the 201 leaves before the crash.
        job_id = server.client.submit(
            "step", {"count_to": str(runs), "result": "once"}, run_at=time.time() + 0.5
        )
        assert server.proc is not None
        assert server.proc.wait(timeout=30) == -signal.SIGKILL  # it killed itself at "spawn"
        wait_for(
            lambda: all(process_gone(pid) for pid in waiting),
            message="the waiting workers, the taken one included, to exit",
        )
        assert not runs.exists()  # the taken worker never ran the step
        server = PoolServer(config).start()
        job = wait_for(
            lambda: (j := server.client.get(job_id))["status"] == "completed" and j,
            timeout=30,
            message="the retried step to complete",
        )
        assert job["attempts"] == 2 and job["result"]["result"] == "once"
        assert len(runs.read_text().splitlines()) == 1
        text = (tmp_path / "state" / "logs" / f"{job_id}.log").read_text()
        assert "worker lost" in text
    finally:
        server.stop()
