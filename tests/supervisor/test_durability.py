"""What is committed stays committed; heartbeats cost O(1) transactions per interval."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest

import protocol
from supervisor.client import ClientError
from supervisor.core import Supervisor
from supervisor.errors import StoreError
from supervisor.states import ProcessState
from supervisor.testing import (
    ServerProcess,
    kill_workers,
    make_settings,
    raw_handshake,
    stored_job,
    wait_for,
)
from tests.supervisor.failingstore import TRIGGER, FailingStore
from tests.supervisor.serverconfig import write_config

ROOT = Path(__file__).resolve().parents[2]
FAILING_STORE = f"""
store = "tests.supervisor.failingstore:FailingStore"
python_path = ["{ROOT}"]
"""
EXIT_STORE = 5  # the CLI's exit code for a store it cannot open or write


def test_completed_job_and_result_survive_kill_9(tmp_path, marker):
    """kill -9 right after a job completed: on restart the job and its result are there."""
    config = write_config(tmp_path, marker)
    server = ServerProcess(config).start()
    try:
        job_id = server.client.submit("demo", {"actions": [["return", {"kept": [1, 2, 3]}]]})
        done = server.client.wait(job_id, timeout=30)
        assert done["status"] == "completed"
        server.kill()
        server = ServerProcess(config).start()
        again = server.client.get(job_id)
        assert again["status"] == "completed"
        assert again["result"] == {"kept": [1, 2, 3]}
        assert [j["id"] for j in server.client.list(status="completed")] == [job_id]
    finally:
        server.kill()
        kill_workers(marker)


def test_enqueued_job_survives_kill_9_before_it_runs(tmp_path, marker):
    """A 201 means committed: a scheduled job is still there after kill -9."""
    config = write_config(tmp_path, marker)
    server = ServerProcess(config).start()
    try:
        job_id = server.client.submit("demo", {}, run_at=time.time() + 2)
        server.kill()
        server = ServerProcess(config).start()
        assert server.client.get(job_id)["status"] == "scheduled"
        assert server.client.wait(job_id, timeout=30)["status"] == "completed"
    finally:
        server.kill()
        kill_workers(marker)


def _hold_workers(hold_file: Path, count: int) -> list[tuple[socket.socket, str]]:
    """Connect to every job listed in ``hold_file`` and complete its handshake."""
    lines = wait_for(
        lambda: (
            (t := hold_file.read_text().splitlines() if hold_file.exists() else [])
            and len(t) >= count
            and t
        ),
        timeout=60,
    )
    conns = []
    for line in lines:
        path, job_id, token = line.split()
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(10)
        sock.connect(path)
        reply, _decoder = raw_handshake(sock, job_id, token)
        assert isinstance(reply, protocol.Welcome), reply
        sock.setblocking(False)
        conns.append((sock, job_id))
    return conns


def test_heartbeats_of_200_jobs_cost_one_transaction_per_flush(start, worker, tmp_path):
    """200 jobs heartbeating: no more write transactions than flush intervals elapsed."""
    hold_file = tmp_path / "held"
    count, interval = 200, 0.2
    sv = start(
        {"held": worker("hold.sh", env={"HOLD_FILE": str(hold_file)}, heartbeat_timeout=30)},
        concurrency=count,
        flush_interval=interval,
    )
    ids = [sv.enqueue("held") for _ in range(count)]
    conns = _hold_workers(hold_file, count)
    wait_for(lambda: all(sv.job(j)["process_state"] == "running" for j in ids), timeout=60)

    commits: list[float] = []

    def count_commits(statement: str) -> None:
        if statement.strip().upper() == "COMMIT":
            commits.append(time.monotonic())

    sv.call(lambda: sv.sup.store.db.set_trace_callback(count_commits))
    frame = protocol.encode(protocol.Heartbeat())
    sent = 0
    began = time.monotonic()
    while time.monotonic() - began < 3.0:
        for sock, _job_id in conns:
            try:
                sock.send(frame)
                sent += 1
            except BlockingIOError:
                pass
        time.sleep(0.005)
    elapsed = time.monotonic() - began
    sv.call(lambda: sv.sup.store.db.set_trace_callback(None))
    assert sent > 20_000
    # Nothing changed state in the window, so every transaction is a heartbeat flush.
    assert len(commits) <= elapsed / interval + 2, (len(commits), elapsed)
    assert len(commits) >= 3  # and the heartbeats were in fact written
    for sock, _ in conns:
        sock.close()
    sv.call(lambda: [sv.sup.cancel(j) for j in ids])


def test_no_201_for_a_submission_whose_commit_failed(tmp_path, marker):
    """A refused commit answers no 201 and stops the supervisor; the job never existed."""
    config = write_config(tmp_path, marker, extra=FAILING_STORE)
    state = tmp_path / "state"
    server = ServerProcess(config).start()
    try:
        kept = server.client.submit("demo", {}, run_at=time.time() + 3600)
        (state / TRIGGER).touch()
        with pytest.raises(ClientError) as refused:
            server.client.submit("demo", {"lost": True})
        assert refused.value.status == 0  # the connection closed without an answer
        assert server.proc is not None
        assert server.proc.wait(timeout=30) == EXIT_STORE
        (state / TRIGGER).unlink()
        server = ServerProcess(config).start()
        assert [job["id"] for job in server.client.list()] == [kept]
    finally:
        server.kill()


def test_no_ack_for_an_outcome_whose_commit_failed(tmp_path, marker):
    """A worker is acked only for a stored outcome: refused, it resends it after a restart."""
    config = write_config(tmp_path, marker, extra=FAILING_STORE)
    state, ready, gate, out = (tmp_path / n for n in ("state", "ready", "gate", "out"))
    server = ServerProcess(config).start()
    try:
        actions = [
            ["touch", str(ready)],
            ["wait_file", str(gate)],
            ["ledger", str(tmp_path / "ledger")],
            ["complete_then_touch", "done", str(out)],
        ]
        job_id = server.client.submit("demo", {"actions": actions})
        wait_for(ready.exists, message="the worker to start")
        (state / TRIGGER).touch()
        gate.touch()
        assert server.proc is not None
        assert server.proc.wait(timeout=30) == EXIT_STORE
        (state / TRIGGER).unlink()
        server = ServerProcess(config).start()
        job = server.client.wait(job_id, timeout=30)
        assert job["status"] == "completed" and job["attempts"] == 1
        wait_for(out.exists, message="the worker to get its ack")
        assert len((tmp_path / "ledger").read_text().splitlines()) == 1
        text = (state / "logs" / f"{job_id}.log").read_text()
        assert text.count("attempt 1 completed") == 1
    finally:
        server.kill()
    # What the store holds once the worker was acked: its outcome, committed once.
    stored = stored_job(state / "jobs.db", job_id)  # the lock died with the supervisor
    assert stored is not None and stored.status.value == "completed" and stored.attempts == 1


def test_no_event_or_log_line_for_an_outcome_whose_commit_failed(tmp_path, worker):
    """On a refused commit, subscribers see no job.completed and the log claims nothing."""
    state = tmp_path / "state"
    settings = make_settings(state, {"demo": worker(heartbeat_timeout=30)})
    sup = Supervisor(settings, store=FailingStore(settings))
    sup.open()
    try:
        seen: list[str] = []
        sup.on("*", lambda event: seen.append(event.name))
        gate = tmp_path / "gate"
        job = sup.enqueue("demo", {"actions": [["wait_file", str(gate)], ["return", 1]]})
        wait_for(
            lambda: (sup.loop.run_once(0.05), job.process_state is ProcessState.RUNNING)[1],
            message="the worker's hello to be committed",
        )
        (state / TRIGGER).touch()
        gate.touch()
        with pytest.raises(StoreError):
            while True:
                sup.loop.run_once(0.05)
        assert "job.completed" not in seen
        log_text = (state / "logs" / f"{job.id}.log").read_text()
        assert "completed" not in log_text
    finally:
        (state / TRIGGER).unlink(missing_ok=True)
        sup.close()


def _mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir()
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
            check=True,
            capture_output=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot mount a small tmpfs here: {exc}")


def _fill(folder: Path) -> Path:
    """Write a file until the file system is full; returns it (delete it to make room)."""
    filler = folder / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    return filler


def test_no_201_when_the_state_is_on_a_full_file_system(tmp_path, marker):
    """With the state on a full tmpfs, a submission gets no 201 and is not there later."""
    state = tmp_path / "state"
    _mount_tmpfs(state, "2m")
    config = write_config(tmp_path, marker)
    server = ServerProcess(config).start()
    try:
        kept = server.client.submit("demo", {}, run_at=time.time() + 3600)
        filler = _fill(state)
        with pytest.raises(ClientError) as refused:
            server.client.submit("demo", {"lost": True})
        assert refused.value.status == 0
        assert server.proc is not None
        assert server.proc.wait(timeout=30) == EXIT_STORE
        filler.unlink()
        server = ServerProcess(config).start()
        assert [job["id"] for job in server.client.list()] == [kept]
    finally:
        server.kill()
        subprocess.run(["umount", "-l", str(state)], check=False, capture_output=True)
