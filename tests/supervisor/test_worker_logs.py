"""Worker log lines in the job's log: the time they were made, and no floods."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import protocol
from supervisor.joblogs import stamp
from supervisor.testing import raw_handshake, wait_for


def _held(hold_file: Path) -> tuple[str, str, str]:
    line = wait_for(lambda: hold_file.exists() and hold_file.read_text().strip())
    path, job_id, token = line.split()
    return path, job_id, token


def test_a_log_keeps_the_workers_time_when_it_is_sane(start, worker, tmp_path: Path):
    """A log line shows the worker's ts (e.g. buffered through an outage); a wild ts is ignored."""
    hold_file = tmp_path / "held"
    sv = start({"held": worker("hold.sh", env={"HOLD_FILE": str(hold_file)})}, worker_give_up=60)
    job_id = sv.enqueue("held")
    path, _, token = _held(hold_file)
    now = time.time()
    buffered_ms = int((now - 45.0) * 1000)  # made in an outage shorter than the give-up window
    lines = [
        protocol.Log(level="info", message="buffered", ts=buffered_ms),
        protocol.Log(level="info", message="epoch", ts=0),
        protocol.Log(level="info", message="next year", ts=(now + 365 * 86400) * 1000),
        protocol.Log(level="info", message="older than any outage", ts=(now - 3600) * 1000),
        protocol.Log(level="info", message="no ts"),
    ]
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(path)
        welcome, _decoder = raw_handshake(sock, job_id, token)
        assert isinstance(welcome, protocol.Welcome)
        sock.sendall(b"".join(protocol.encode(line) for line in lines))
        log_file = sv.settings.log_dir / f"{job_id}.log"
        text = wait_for(lambda: log_file.exists() and "no ts" in (t := log_file.read_text()) and t)
    by_message = {
        line.split("] ", 1)[1]: line.split(" ", 1)[0]
        for line in text.splitlines()
        if line.split(" ", 2)[1] == "[info]"
    }
    assert by_message["buffered"] == stamp(buffered_ms / 1000)
    for wild in ("epoch", "next year", "older than any outage", "no ts"):
        # the supervisor's own clock instead: not before the test began
        assert by_message[wild] >= stamp(now), (wild, by_message[wild])


def test_a_worker_reconnecting_in_a_loop_does_not_flood_its_job_log(start, worker, tmp_path):
    """Twelve reconnections in a row write at most five "worker reconnected" lines."""
    hold_file = tmp_path / "held"
    sv = start({"held": worker("hold.sh", env={"HOLD_FILE": str(hold_file)})})
    job_id = sv.enqueue("held")
    path, _, token = _held(hold_file)
    for _ in range(13):  # the first is a connection; the other twelve are reconnections
        wait_for(lambda: Path(path).exists())  # the listener is re-opened after each drop
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(10)
            sock.connect(path)
            welcome, _decoder = raw_handshake(sock, job_id, token)
            assert isinstance(welcome, protocol.Welcome)
        wait_for(lambda: sv.job(job_id)["process_state"] == "reconnecting")
    assert sv.event_names(job_id).count("job.reconnected") == 12  # events are not throttled
    text = (sv.settings.log_dir / f"{job_id}.log").read_text()
    assert 1 <= text.count("worker reconnected") <= 5
