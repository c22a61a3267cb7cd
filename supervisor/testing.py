"""Test harnesses that ship with the package: a supervisor on a thread, one in a process.

``SupervisorThread`` (from ``supervisor.embedded``) runs a real ``Supervisor`` (real
sockets, real workers, a real store) on a background thread; ``ServerProcess`` runs
``jobvisor serve`` as a child process, for tests that kill it with SIGKILL. Both are used
by jobvisor's own tests and are meant for applications' tests too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import psutil

import protocol
from protocol import handshake
from supervisor.client import Client
from supervisor.config import Settings, load_config, settings_from_mapping
from supervisor.embedded import SupervisorThread, wait_for
from supervisor.records import JobRecord
from supervisor.stores import SqliteStore

__all__ = [
    "TEST_RUN_VAR",
    "ServerProcess",
    "SupervisorThread",
    "kill_workers",
    "live_workers",
    "make_settings",
    "process_gone",
    "raw_handshake",
    "short_socket_dir",
    "wait_for",
]
TEST_RUN_VAR = "JOBVISOR_TEST_RUN"


SOCKET_BASE_VAR = "JOBVISOR_TEST_SOCKET_BASE"


def short_socket_dir() -> str:
    """A fresh private folder with a short path (Unix socket paths max out at 107 bytes).

    Made under ``$JOBVISOR_TEST_SOCKET_BASE`` when set (jobvisor's test session points it
    at a folder it removes at the end), else under /tmp.
    """
    base = os.environ.get(SOCKET_BASE_VAR) or "/tmp"  # noqa: S108 - mkdtemp: private, unique
    return tempfile.mkdtemp(prefix="jv-", dir=base)


def make_settings(
    state_dir: Path, jobs: Mapping[str, Mapping[str, Any]] | None = None, **options: Any
) -> Settings:
    """Settings for a test: state in ``state_dir``, HTTP on an ephemeral port."""
    data: dict[str, Any] = {
        "state_dir": str(state_dir),
        "http": "127.0.0.1:0",
        "socket_dir": short_socket_dir(),
        "flush_interval": 0.2,
        "kill_grace": 1.0,
        "jobs": {name: dict(kind) for name, kind in (jobs or {}).items()},
    }
    data.update(options)
    return settings_from_mapping(data, base_dir=state_dir, source="<test>")


class ServerProcess:
    """``jobvisor serve --config FILE`` in a child process."""

    def __init__(
        self, config: Path, *, log: Path | None = None, env: Mapping[str, str] | None = None
    ) -> None:
        self.config = config
        self.log = log or config.with_suffix(".log")
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.line = ""  # the whole "jobvisor listening on ..." line
        self.started_at = 0.0  # time.time() just before the process was started
        self.listening_at = 0.0  # time.time() when the "listening" line was read

    def start(self, timeout: float = 30.0) -> ServerProcess:
        log = open(self.log, "a")  # noqa: SIM115 - handed to the child, closed below
        self.started_at = time.time()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "supervisor", "--config", str(self.config), "serve"],
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
                text=True,
                env=self.env,
            )
        finally:
            log.close()
        assert self.proc.stdout is not None
        line = _readline(self.proc, timeout)
        self.listening_at = time.time()
        prefix = "jobvisor listening on "
        if not line.startswith(prefix):
            self.kill()
            raise RuntimeError(f"supervisor did not start: {line!r}; see {self.log}")
        # "jobvisor listening on URL (open URL/?token=...)": the first word is the URL.
        self.line = line.strip()
        self.url = line[len(prefix) :].split()[0]
        return self

    @property
    def client(self) -> Client:
        """A client as the CLI would make one: the token is read from the config."""
        return Client.for_config(load_config(self.config), url=self.url)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)


def _readline(proc: subprocess.Popen[str], timeout: float) -> str:
    result: list[str] = []
    reader = threading.Thread(
        target=lambda: result.append(proc.stdout.readline()),  # type: ignore[union-attr]
        daemon=True,
    )
    reader.start()
    reader.join(timeout)
    return result[0] if result else ""


def stored_job(db_path: Path, job_id: str) -> JobRecord | None:
    """``job_id`` as a SQLite store holds it, read once its supervisor is gone (while one
    runs, the store is its alone: docs/persistence.md)."""
    store = SqliteStore(path=db_path)
    store.open()
    try:
        return store.get(job_id)
    finally:
        store.close()


def kill_workers(marker: str) -> int:
    """SIGKILL every process whose environment has ``JOBVISOR_TEST_RUN=marker``."""
    killed = 0
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if process.environ().get(TEST_RUN_VAR) == marker:
                process.kill()
                killed += 1
    return killed


def process_gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie not yet reaped by its parent counts)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def live_workers(marker: str) -> Iterable[psutil.Process]:
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if process.environ().get(TEST_RUN_VAR) == marker and process.status() != "zombie":
                yield process


def raw_handshake(
    sock: socket.socket,
    job_id: str,
    token: str,
    *,
    pid: int | None = None,
    check_proof: bool = True,
) -> tuple[protocol.Message, protocol.Decoder]:
    """The worker's side of the handshake by hand, on a connected blocking socket.

    For tests and raw-protocol workers that speak the protocol without the library:
    hello (with a fresh nonce), then auth answering the supervisor's challenge. Returns
    the supervisor's last answer (a ``Welcome``, or the ``Error`` refusing us) and the
    decoder, which keeps whatever arrived after it. Raises ``AssertionError`` when the
    challenge's proof is wrong, unless ``check_proof`` is False (then the auth is sent
    anyway, to test the supervisor's own check).
    """
    decoder = protocol.Decoder()
    nonce = os.urandom(handshake.NONCE_SIZE)
    hello = protocol.Hello(
        v=protocol.PROTOCOL_VERSION,
        job_id=job_id,
        pid=os.getpid() if pid is None else pid,
        nonce=nonce,
    )
    sock.sendall(protocol.encode(hello))
    answer = _next_message(sock, decoder)
    if not isinstance(answer, protocol.Challenge):
        return answer, decoder
    key = handshake.token_key(token)
    expected = handshake.supervisor_proof(key, job_id, nonce, answer.nonce)
    if check_proof and not handshake.proofs_match(expected, answer.proof):
        raise AssertionError(f"the challenge for job {job_id} does not prove the token")
    proof = handshake.worker_proof(key, job_id, answer.nonce, nonce)
    sock.sendall(protocol.encode(protocol.Auth(proof=proof)))
    return _next_message(sock, decoder), decoder


def _next_message(sock: socket.socket, decoder: protocol.Decoder) -> protocol.Message:
    while (message := decoder.next_message()) is None:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("the supervisor closed the connection during the handshake")
        decoder.receive_data(data)
    return message
