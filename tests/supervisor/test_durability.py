"""What is committed stays committed; heartbeats cost O(1) transactions per interval."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import protocol
from supervisor.testing import ServerProcess, kill_workers, raw_handshake, wait_for
from tests.supervisor.serverconfig import write_config


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
