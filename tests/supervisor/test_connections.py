"""Connections that drop, overlap, linger or never speak; ports that run out; the Python API."""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import socket
import sys
import time
from pathlib import Path

import pytest

import protocol
from supervisor import channels, conversation
from supervisor.records import JobKind
from supervisor.testing import TEST_RUN_VAR, process_gone, wait_for

WORKERS = Path(__file__).parent / "workers"


def test_a_dropped_connection_is_reopened_and_the_worker_reattaches(start, worker):
    """The worker hangs up while the supervisor lives: reconnecting, then job.reconnected."""
    sv = start({"raw": worker("raw.py", env={"RAW_MODE": "redial"})})
    job_id = sv.enqueue("raw")
    job = sv.wait(job_id)
    assert job["result"] == "redialled" and job["attempts"] == 1
    names = sv.event_names(job_id)
    assert names.index("job.reconnected") < names.index("job.completed")
    log = (sv.settings.log_dir / f"{job_id}.log").read_text()
    assert "worker reconnected" in log


def test_a_second_connection_replaces_the_first(start, worker):
    """Over TCP (listener kept open) a new hello with the token closes the old connection."""
    sv = start({"raw": worker("raw.py", env={"RAW_MODE": "overlap"})}, transport="tcp")
    job = sv.wait(sv.enqueue("raw"))
    assert job["status"] == "completed", job
    assert job["result"] == "replaced"


def test_a_finished_worker_that_does_not_exit_is_stopped(start, worker):
    """kill_grace after its ack, a worker still running is terminated; the job stays done."""
    sv = start({"raw": worker("raw.py", env={"RAW_MODE": "linger"})}, kill_grace=0.5)
    job_id = sv.enqueue("raw")
    job = sv.wait(job_id)
    assert job["status"] == "completed"
    pid = job["pid"]
    wait_for(
        lambda: process_gone(pid),
        message="the lingerer to stop",
    )
    log = sv.settings.log_dir / f"{job_id}.log"
    wait_for(lambda: "stopping worker: finished but did not exit" in log.read_text())
    assert sv.job(job_id)["status"] == "completed"


@pytest.mark.parametrize("says", ["nothing", "hello_only"])
def test_a_connection_without_hello_is_closed_after_the_handshake_timeout(
    start, worker, tmp_path, monkeypatch, says
):
    """A client that never completes the handshake (silent, or no auth) is closed in time."""
    monkeypatch.setattr(conversation, "HANDSHAKE_TIMEOUT", 0.3)
    gate = tmp_path / "gate-{job}"
    sv = start({"late": worker("late.py", env={"LATE_GATE": str(gate)})})
    job_id = sv.enqueue("late")
    path = wait_for(lambda: sv.job(job_id)["socket"])
    began = time.monotonic()
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(path)
        if says == "hello_only":  # the challenge comes, the auth never does
            hello = protocol.Hello(v=2, job_id=job_id, pid=1, nonce=bytes(32))
            sock.sendall(protocol.encode(hello))
        decoder = protocol.Decoder()
        reply: list[protocol.Message] = []
        while not reply or reply[-1].TYPE == "challenge":
            reply += decoder.feed(sock.recv(65536))
    assert time.monotonic() - began >= 0.3
    assert [m.TYPE for m in reply] == (["challenge"] if says == "hello_only" else []) + ["error"]
    assert reply[-1].code == "handshake_required"
    assert "no completed handshake within 0.3 s" in reply[-1].message
    (tmp_path / f"gate-{job_id}").touch()
    assert sv.wait(job_id)["status"] == "completed"


def test_no_free_tcp_port_fails_the_attempt_with_a_clear_error(start, worker):
    """When every port of the range is taken, the attempt fails and says so."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        sv = start({"demo": worker(max_attempts=1)}, transport="tcp", tcp_port_range=[port, port])
        job = sv.wait(sv.enqueue("demo"))
    finally:
        taken.close()
    assert job["status"] == "failed"
    assert job["error"]["reason"] == "socket"
    assert f"no free TCP port in {port}-{port}" in job["error"]["message"]


def test_kinds_registered_and_jobs_scheduled_from_python(start, marker):
    """register() adds a kind at run time; schedule() runs a job at its run_at."""
    sv = start({})
    kind = JobKind(
        "py",
        command=sys.executable,
        args=(str(WORKERS / "scripted.py"),),
        env={TEST_RUN_VAR: marker},
    )
    sv.call(lambda: sv.sup.register(kind))
    run_at = time.time() + 0.5
    job_id = sv.call(lambda: sv.sup.schedule("py", {"actions": [["return", 5]]}, run_at).id)
    assert sv.job(job_id)["status"] == "scheduled"
    job = sv.wait(job_id)
    assert job["result"] == 5


def test_a_pending_job_whose_kind_is_removed_fails_without_an_attempt(start, worker, tmp_path):
    """A job waiting for a slot when its kind disappears fails, naming the kind."""
    gate = tmp_path / "gate"
    sv = start({"blocker": worker(), "doomed": worker()}, concurrency=1)
    blocker = sv.enqueue("blocker", {"actions": [["wait_file", str(gate)]]})
    doomed = sv.enqueue("doomed")
    wait_for(lambda: sv.job(blocker)["status"] == "running")
    sv.call(lambda: sv.sup.kinds.pop("doomed"))
    gate.touch()
    job = sv.wait(doomed)
    assert job["status"] == "failed"
    assert job["attempts"] == 0
    assert job["error"]["reason"] == "config"
    assert "no job kind named 'doomed'" in job["error"]["message"]


def _connect(address: str) -> socket.socket:
    if address.startswith("tcp://"):
        host, port = address.removeprefix("tcp://").rsplit(":", 1)
        return socket.create_connection((host, int(port)), timeout=10)
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(10)
    sock.connect(address)
    return sock


def _refusal(sock: socket.socket) -> protocol.Message:
    """The first frame the supervisor sends on ``sock`` (a refusal is one ``error``)."""
    decoder = protocol.Decoder()
    while True:
        data = sock.recv(65536)
        assert data, "connection closed without an error frame"
        frames = decoder.feed(data)
        if frames:
            return frames[0]


@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_a_connection_over_the_pending_handshake_cap_gets_an_error_frame(
    transport, start, worker, tmp_path
):
    """Past the cap of connections waiting for their hello, one more is told why."""
    gate = tmp_path / "gate-{job}"
    sv = start({"late": worker("late.py", env={"LATE_GATE": str(gate)})}, transport=transport)
    job_id = sv.enqueue("late")
    address = wait_for(lambda: sv.job(job_id)["socket"])
    silent = [_connect(address) for _ in range(channels.MAX_PENDING_HANDSHAKES)]
    try:
        with _connect(address) as extra:
            # Unread input must not turn into a reset; the refusal may come before we send.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                extra.sendall(b"\0\0\0\x05hello")
            reply = _refusal(extra)
        assert isinstance(reply, protocol.Error)
        assert reply.code == "unexpected_message"
        assert "too many connections without a hello" in reply.message
    finally:
        for sock in silent:
            sock.close()
    (tmp_path / f"gate-{job_id}").touch()
    assert sv.wait(job_id)["status"] == "completed"


def test_a_connection_refused_at_the_fd_limit_gets_an_error_frame(start, worker, tmp_path, caplog):
    """Out of descriptors, a worker's connection gets an error frame, warnings stay few."""
    gate = tmp_path / "gate-{job}"
    sv = start({"late": worker("late.py", env={"LATE_GATE": str(gate)})})
    job_id = sv.enqueue("late")
    address = wait_for(lambda: sv.job(job_id)["socket"])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    fillers: list[int] = []
    socks = [socket.socket(socket.AF_UNIX) for _ in range(20)]  # ours, before the limit
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 64, hard))
        with contextlib.suppress(OSError):
            while True:
                fillers.append(os.open(os.devnull, os.O_RDONLY))
        with caplog.at_level(logging.WARNING, logger="supervisor.channels"):
            replies = []
            for sock in socks:  # every connection at the limit is refused, not logged each
                sock.settimeout(10)
                sock.connect(address)
                replies.append(_refusal(sock))
    finally:
        for fd in fillers:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        for sock in socks:
            sock.close()
    reply = replies[0]
    assert isinstance(reply, protocol.Error)
    assert reply.code == "unexpected_message"
    assert "file descriptors" in reply.message
    accept_lines = [r for r in caplog.records if "accept failed" in r.getMessage()]
    assert 1 <= len(accept_lines) <= 5
    (tmp_path / f"gate-{job_id}").touch()
    assert sv.wait(job_id)["status"] == "completed"
