"""The challenge-response handshake against an impostor holding a job's TCP port.

The scenario: while the supervisor is down, another local program binds the port of a
running job. It must learn nothing that lets it act as the worker (the token never
crosses the wire), the worker must give it nothing (no outcome, no logs, no auth), and
what it captured must not get it past the restarted supervisor.
"""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import psutil

import protocol
from protocol import handshake
from supervisor.testing import ServerProcess, kill_workers, raw_handshake, wait_for
from tests.supervisor.serverconfig import write_config


def _read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def _bind(port: int) -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(8)
    listener.settimeout(20)
    return listener


def test_an_impostor_on_the_tcp_port_can_neither_learn_nor_forge_a_result(
    tmp_path: Path, marker: str
):
    """The impostor gets a hello without the token and nothing else, and cannot complete."""
    config = write_config(tmp_path, marker, transport="tcp")
    ready, gate = tmp_path / "ready", tmp_path / "gate"
    server = ServerProcess(config).start()
    worker_pid = 0
    try:
        job_id = server.client.submit(
            "demo",
            {
                "actions": [
                    ["touch", str(ready)],
                    ["wait_file", str(gate)],
                    ["log", "info", "finished while the supervisor was away"],
                    ["return", "the real result"],
                ]
            },
        )
        wait_for(ready.exists, timeout=30)
        job = server.client.get(job_id)
        worker_pid = job["pid"]
        token = psutil.Process(worker_pid).environ()["JOBVISOR_TOKEN"]
        port = int(job["socket"].rsplit(":", 1)[1])

        server.kill()  # kill -9: the port is free until a supervisor comes back
        impostor = _bind(port)
        gate.touch()  # the worker finishes now: its outcome and a log wait in its outbox
        conn, _ = impostor.accept()
        with conn:
            conn.settimeout(20)
            decoder = protocol.Decoder()
            first, captured = b"", []
            while not captured:
                chunk = conn.recv(65536)
                assert chunk, "the worker hung up before its hello"
                first += chunk
                captured = decoder.feed(chunk)
            (hello,) = captured
            assert isinstance(hello, protocol.Hello)
            assert token.encode() not in first
            assert hello.nonce is not None and hello.job_id == job_id
            # The impostor cannot prove the token: any proof it sends is wrong.
            forged = protocol.Challenge(nonce=os.urandom(32), proof=os.urandom(32))
            conn.sendall(protocol.encode(forged))
            after = _read_until_closed(conn)  # the worker hangs up on it...
        assert after == b""  # ...without an auth, a started, a log or its completed
        impostor.close()

        os.kill(worker_pid, signal.SIGSTOP)  # the impostor gets to the supervisor first
        server = ServerProcess(config).start()
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            sock.sendall(protocol.encode(hello))  # replay what it captured
            decoder = protocol.Decoder()
            (challenge,) = decoder.feed(sock.recv(65536))
            assert isinstance(challenge, protocol.Challenge)
            # Its best guess: the supervisor's own proof reflected back (it has no
            # worker proof for these nonces: the worker never sent it one).
            sock.sendall(protocol.encode(protocol.Auth(proof=challenge.proof)))
            sock.sendall(protocol.encode(protocol.Completed(result="forged")))
            replies = decoder.feed(_read_until_closed(sock))
        assert [(m.TYPE, getattr(m, "code", None)) for m in replies] == [("error", "bad_token")]
        assert server.client.get(job_id)["status"] == "running"
        assert challenge.proof != handshake.worker_proof(
            handshake.token_key(token), job_id, challenge.nonce, hello.nonce
        )

        os.kill(worker_pid, signal.SIGCONT)
        done = server.client.wait(job_id, timeout=30)
        assert done["status"] == "completed"
        assert done["result"] == "the real result"
        assert done["attempts"] == 1
        log = (tmp_path / "state" / "logs" / f"{job_id}.log").read_text()
        assert "challenge proof is wrong" in log  # the worker's own account (stderr)
        assert "finished while the supervisor was away" in log
    finally:
        if worker_pid:
            try:
                os.kill(worker_pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        server.kill()
        kill_workers(marker)


def test_welcome_carries_the_supervisors_reconnect_schedule(start, worker, tmp_path: Path):
    """welcome tells the worker worker_reconnect_interval and worker_give_up from the config."""
    hold_file = tmp_path / "held"
    sv = start(
        {"held": worker("hold.sh", env={"HOLD_FILE": str(hold_file)})},
        worker_reconnect_interval=0.75,
        worker_give_up=12.5,
    )
    job_id = sv.enqueue("held")
    line = wait_for(lambda: hold_file.exists() and hold_file.read_text().strip())
    path, held_job, token = line.split()
    assert held_job == job_id
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(path)
        welcome, _decoder = raw_handshake(sock, job_id, token)
    assert isinstance(welcome, protocol.Welcome)
    assert (welcome.reconnect_interval, welcome.give_up_after) == (0.75, 12.5)
