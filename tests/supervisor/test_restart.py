"""Surviving restarts (docs/restarts.md): kill -9 the supervisor, start it again, lose nothing."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import signal
import socket
import subprocess
import time
from pathlib import Path

import psutil
import pytest

import protocol
from supervisor.records import JobRecord
from supervisor.states import JobStatus, ProcessState
from supervisor.stores import SqliteStore
from supervisor.testing import ServerProcess, process_gone, raw_handshake, wait_for
from supervisor.views import parse_time
from tests.supervisor.serverconfig import WORKERS, write_config

log = logging.getLogger(__name__)


def reconnect_stamps(server: ServerProcess, state: Path, ids: list[str]) -> list[float]:
    """Per job, seconds from the supervisor's 'listening' to its worker's reconnection."""
    latencies = []
    for job_id in ids:
        lines = (state / "logs" / f"{job_id}.log").read_text().splitlines()
        stamps = [parse_time(line.split()[0]) for line in lines if "worker reconnected" in line]
        latencies.append(stamps[-1] - server.listening_at)
    return latencies


@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_live_workers_reattach_across_three_restarts(transport, tmp_path, marker):
    """20 workers survive three kill -9s: same PIDs, one attempt each, their own results."""
    config = write_config(tmp_path, marker, transport=transport)
    state = tmp_path / "state"
    count = 20
    server = ServerProcess(config).start()
    try:
        ids = []
        for i in range(count):
            actions = [
                ["progress", 10, "before"],
                ["touch", str(tmp_path / f"ready-{i}")],
                ["wait_file", str(tmp_path / "phase2")],
                ["progress", 60, "after"],
                ["wait_file", str(tmp_path / "done")],
                ["return", {"n": i}],
            ]
            ids.append(server.client.submit("demo", {"actions": actions}))
        wait_for(
            lambda: all((tmp_path / f"ready-{i}").exists() for i in range(count)),
            timeout=60,
            message="all workers to start",
        )
        pids = {job_id: server.client.get(job_id)["pid"] for job_id in ids}
        for restart in range(3):
            server.kill()
            server = ServerProcess(config).start()
            wait_for(
                lambda s=server: all(s.client.get(j)["process_state"] == "running" for j in ids),
                timeout=30,
                message="every worker to re-attach",
            )
            latencies = sorted(reconnect_stamps(server, state, ids))
            log.warning(
                "restart %d (%s): reconnect after listening: min %.1f ms, median %.1f ms,"
                " max %.1f ms",
                restart + 1,
                transport,
                latencies[0] * 1000,
                latencies[len(latencies) // 2] * 1000,
                latencies[-1] * 1000,
            )
        (tmp_path / "phase2").touch()
        wait_for(
            lambda: all(server.client.get(j)["progress"]["percent"] == 60 for j in ids),
            timeout=30,
            message="progress sent after the restarts to show",
        )
        (tmp_path / "done").touch()
        for i, job_id in enumerate(ids):
            job = server.client.wait(job_id, timeout=30)
            assert job["status"] == "completed"
            assert job["result"] == {"n": i}
            assert job["attempts"] == 1
            assert job["pid"] == pids[job_id]
    finally:
        server.kill()


def _first_attempt_hangs(server: ServerProcess, tmp_path: Path, result: str) -> tuple[str, int]:
    """Submit a job whose first attempt hangs (and later ones return ``result``); return
    its id and the first worker's PID once that worker runs."""
    ready = tmp_path / "ready"
    actions = [
        ["on_attempt", 1, "touch", str(ready)],
        ["on_attempt", 1, "hang"],
        ["return", result],
    ]
    job_id = server.client.submit("demo", {"actions": actions})
    wait_for(ready.exists)
    return job_id, server.client.get(job_id)["pid"]


def test_worker_killed_while_supervisor_is_down_is_lost_and_retried(tmp_path, marker):
    """A worker that died during the outage is declared lost on restart and retried."""
    config = write_config(tmp_path, marker)
    server = ServerProcess(config).start()
    try:
        job_id, pid = _first_attempt_hangs(server, tmp_path, "second try")
        server.kill()
        worker = psutil.Process(pid)
        worker.kill()
        worker.wait(10)
        server = ServerProcess(config).start()
        job = server.client.wait(job_id, timeout=30)
        assert job["status"] == "completed"
        assert job["result"] == "second try"
        assert job["attempts"] == 2
        log_text = (tmp_path / "state" / "logs" / f"{job_id}.log").read_text()
        assert f"worker lost: worker process {pid} is gone" in log_text
    finally:
        server.kill()


def _running_record(job_id: str, pid: int, start: float, socket_path: str) -> JobRecord:
    now = time.time()
    return JobRecord(
        id=job_id,
        name="demo",
        data={"actions": [["return", "ran again"]]},
        status=JobStatus.RUNNING,
        seq=1,
        created_at=now - 5,
        node="test",
        attempts=1,
        process_state=ProcessState.RUNNING,
        pid=pid,
        pid_start_time=start,
        socket_path=socket_path,
        token_hash=hashlib.sha256(b"old").hexdigest(),
        last_heartbeat=now - 1,
        started_at=now - 5,
    )


def test_recycled_pid_is_not_adopted_nor_harmed(tmp_path, marker):
    """A stored PID now owned by an unrelated process (other start time) is not our worker."""
    config = write_config(tmp_path, marker)
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        start = psutil.Process(bystander.pid).create_time()
        store = SqliteStore(path=tmp_path / "state" / "jobs.db")
        store.open()
        store.write(
            [
                _running_record(
                    "recycled0000000000001", bystander.pid, start - 3600, "/tmp/nowhere.sock"
                )
            ]
        )
        store.close()
        server = ServerProcess(config).start()
        try:
            job = server.client.wait("recycled0000000000001", timeout=30)
            assert job["status"] == "completed"
            assert job["result"] == "ran again"
            assert job["attempts"] == 2
            assert bystander.poll() is None, "the unrelated process must not be signalled"
        finally:
            server.kill()
    finally:
        bystander.kill()
        bystander.wait()


def test_worker_printing_heavily_while_supervisor_is_dead_keeps_running(tmp_path, marker):
    """Output goes to a file, not a pipe: 20 MB printed during the outage harms nothing."""
    config = write_config(tmp_path, marker)
    server = ServerProcess(config).start()
    try:
        ready, go, spewed, finish = (tmp_path / n for n in ("ready", "go", "spewed", "finish"))
        job_id = server.client.submit(
            "demo",
            {
                "actions": [
                    ["touch", str(ready)],
                    ["wait_file", str(go)],
                    ["spew", 20],
                    ["touch", str(spewed)],
                    ["wait_file", str(finish)],
                    ["return", "still here"],
                ]
            },
        )
        wait_for(ready.exists)
        server.kill()
        go.touch()
        wait_for(spewed.exists, timeout=60, message="the worker to print 20 MB")
        server = ServerProcess(config).start()
        finish.touch()
        job = server.client.wait(job_id, timeout=30)
        assert job["result"] == "still here"
        assert job["attempts"] == 1
        size = (tmp_path / "state" / "logs" / f"{job_id}.log").stat().st_size
        assert size > 20 * 1024 * 1024
    finally:
        server.kill()


def test_graceful_stop_leaves_workers_running_for_the_next_supervisor(tmp_path, marker):
    """SIGTERM stops the supervisor quickly; its workers re-attach to the next one."""
    config = write_config(tmp_path, marker)
    server = ServerProcess(config).start()
    try:
        ready, go = tmp_path / "ready", tmp_path / "go"
        job_id = server.client.submit(
            "demo", {"actions": [["touch", str(ready)], ["wait_file", str(go)], ["return", 7]]}
        )
        wait_for(ready.exists)
        pid = server.client.get(job_id)["pid"]
        began = time.monotonic()
        server.stop()
        assert server.proc is not None and server.proc.returncode == 0
        assert time.monotonic() - began < 5
        assert psutil.pid_exists(pid)
        server = ServerProcess(config).start()
        go.touch()
        job = server.client.wait(job_id, timeout=30)
        assert job["result"] == 7 and job["pid"] == pid and job["attempts"] == 1
    finally:
        server.kill()


def test_worker_that_never_reconnects_is_lost_after_the_window(tmp_path, marker):
    """An adopted worker that stays silent for 2 x heartbeat_timeout is lost and retried."""
    config = write_config(tmp_path, marker)
    server = ServerProcess(config).start()
    try:
        job_id, pid = _first_attempt_hangs(server, tmp_path, "retried")
        server.kill()
        psutil.Process(pid).send_signal(signal.SIGSTOP)  # alive, but will not reconnect
        began = time.monotonic()
        server = ServerProcess(config).start()
        job = server.client.wait(job_id, timeout=30)
        assert time.monotonic() - began >= 2 * 2.0  # the window: 2 x heartbeat_timeout
        assert job["result"] == "retried" and job["attempts"] == 2
        wait_for(
            lambda: process_gone(pid),
            message="the silent worker to be killed before the retry",
        )
        text = (tmp_path / "state" / "logs" / f"{job_id}.log").read_text()
        assert "did not reconnect within 5 s" in text  # 2 x reconnect interval + 1 s
    finally:
        server.kill()


def test_superseded_attempt_is_fenced_off(tmp_path, marker):
    """A hello with an earlier attempt's token is refused and changes nothing."""
    config = write_config(tmp_path, marker, transport="tcp")
    server = ServerProcess(config).start()
    try:
        ready, gate = tmp_path / "ready", tmp_path / "gate"
        job_id = server.client.submit(
            "demo",
            {
                "actions": [
                    ["touch", str(ready)],
                    ["on_attempt", 1, "hang"],
                    ["wait_file", str(gate)],
                    ["return", "attempt two"],
                ]
            },
        )
        wait_for(ready.exists)
        first = server.client.get(job_id)
        old_token = psutil.Process(first["pid"]).environ()["JOBVISOR_TOKEN"]
        psutil.Process(first["pid"]).kill()
        second = wait_for(
            lambda: (
                (j := server.client.get(job_id))["attempts"] == 2
                and j["process_state"] == "running"
                and j
            )
        )
        port = int(second["socket"].rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            reply, _decoder = raw_handshake(
                sock, job_id, old_token, pid=first["pid"], check_proof=False
            )
            with contextlib.suppress(OSError):
                sock.sendall(protocol.encode(protocol.Completed(result="forged")))
        assert isinstance(reply, protocol.Error) and reply.code == "bad_token"
        assert server.client.get(job_id)["status"] == "running"
        gate.touch()
        job = server.client.wait(job_id, timeout=30)
        assert job["result"] == "attempt two"
    finally:
        server.kill()


def test_outcome_committed_but_not_acked_is_acked_after_restart(tmp_path, marker):
    """Killed between committing an outcome and sending its ack: the worker gets its ack."""
    config = write_config(tmp_path, marker)
    server = ServerProcess(config, env={"JOBVISOR_CRASH_AT": "outcome"}).start()
    try:
        job_id = server.client.submit("demo", {"actions": [["return", {"once": True}]]})
        assert server.proc is not None
        server.proc.wait(timeout=30)  # it kills itself right after the commit
        server = ServerProcess(config).start()
        job = server.client.get(job_id)
        assert job["status"] == "completed" and job["result"] == {"once": True}
        assert job["attempts"] == 1
        pid = job["pid"]
        wait_for(
            lambda: process_gone(pid),
            timeout=20,
            message="the worker to get its ack and exit",
        )
        text = (tmp_path / "state" / "logs" / f"{job_id}.log").read_text()
        assert "worker reconnected" in text
    finally:
        server.kill()


def test_job_timeout_still_applies_to_an_adopted_worker(tmp_path, marker):
    """A job's timeout counts from its start, across a restart of the supervisor."""
    config = write_config(tmp_path, marker, kind="timeout = 2.0\nmax_attempts = 1")
    server = ServerProcess(config).start()
    try:
        ready = tmp_path / "ready"
        job_id = server.client.submit("demo", {"actions": [["touch", str(ready)], ["hang"]]})
        wait_for(ready.exists)
        started = parse_time(server.client.get(job_id)["started_at"])
        server.kill()
        server = ServerProcess(config).start()
        job = server.client.wait(job_id, timeout=30)
        assert job["status"] == "failed"
        assert job["error"]["reason"] == "timeout"
        assert parse_time(job["finished_at"]) - started < 2.0 + 3.0
    finally:
        server.kill()


def _adopted_worker_with_grandchild(
    tmp_path: Path, marker: str, last_action: list[object]
) -> tuple[ServerProcess, str, int, int]:
    """A job whose worker forks a TERM-ignoring child, then the supervisor is killed and
    restarted; returns the new server, the job id and the worker's and grandchild's PIDs."""
    config = write_config(tmp_path, marker, kind="max_attempts = 1")
    server = ServerProcess(config).start()
    child_file = tmp_path / "grandchild"
    job_id = server.client.submit(
        "demo", {"actions": [["fork_child", str(child_file)], last_action]}
    )
    wait_for(child_file.exists, message="the worker to fork its child")
    pid = server.client.get(job_id)["pid"]
    server.kill()
    server = ServerProcess(config).start()
    return server, job_id, pid, int(child_file.read_text())


def test_cancelled_adopted_worker_takes_its_process_group_with_it(tmp_path, marker):
    """After a restart, cancelling a job kills the adopted worker's children too."""
    server, job_id, pid, grandchild = _adopted_worker_with_grandchild(tmp_path, marker, ["hang"])
    try:
        wait_for(
            lambda: server.client.get(job_id)["process_state"] == "running",
            message="the worker to re-attach",
        )
        server.client.cancel(job_id)
        wait_for(lambda: process_gone(pid), message="the cancelled worker to exit")
        wait_for(lambda: process_gone(grandchild), message="the worker's child to be killed")
    finally:
        server.kill()


def test_silent_adopted_worker_is_killed_with_its_process_group(tmp_path, marker):
    """After a restart, a worker that never comes back is killed with its children."""
    child_file = tmp_path / "grandchild"
    forks = WORKERS / "forks.sh"
    config = write_config(
        tmp_path,
        marker,
        kind=f"""
[jobs.forks]
command = "{forks}"
env = {{ JOBVISOR_TEST_RUN = "{marker}", CHILD_FILE = "{child_file}" }}
heartbeat_timeout = 2.0
max_attempts = 1
""",
    )
    server = ServerProcess(config).start()
    try:
        job_id = server.client.submit("forks", None)
        wait_for(child_file.exists, message="the worker to fork its child")
        pid, grandchild = server.client.get(job_id)["pid"], int(child_file.read_text())
        server.kill()
        server = ServerProcess(config).start()
        job = server.client.wait(job_id, timeout=30)
        assert job["status"] == "failed" and job["error"]["reason"] == "lost"
        wait_for(lambda: process_gone(pid), message="the silent worker to be killed")
        wait_for(lambda: process_gone(grandchild), message="the worker's child to be killed")
    finally:
        server.kill()
