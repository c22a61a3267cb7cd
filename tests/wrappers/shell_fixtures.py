"""Fixtures for the shell worker's tests: a recording fake supervisor and script runs.

``RecordingSupervisor`` listens on a real Unix socket or loopback TCP port and keeps every
frame a worker sends as raw bytes, so tests compare them with ``protocol/vectors.json``
byte for byte. It answers with frames taken from the vectors too: the ``challenge`` (its
proof recomputed for the worker's nonce, from the handshake formula in docs/protocol.md),
a ``welcome`` chosen by the test, ``ack`` for outcomes unless told to hold them. After the
welcome it touches ``seen-N`` in its folder for the N-th frame that is not a heartbeat,
so a script can wait until its call reached the wire (``step`` in ``PRELUDE``): the
outbox keeps only the latest progress, and two quick calls could otherwise merge.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import shlex
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgpack

from supervisor.testing import TEST_RUN_VAR, short_socket_dir
from tests.protocol.wirejson import load_vectors

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "wrappers" / "shell" / "jobvisor-job.sh"
EXAMPLE = ROOT / "examples" / "shell" / "resize.sh"
VECTORS = load_vectors()
VALID = {case["name"]: case for case in VECTORS["valid"] if "hex" in case}
HANDSHAKE = VECTORS["handshake"][0]
TOKEN = HANDSHAKE["token"]

# Sourced by every test script: the library, and `step` to wait for the N-th frame.
PRELUDE = f"""
source {shlex.quote(str(LIBRARY))}
seen=0
step() {{
    seen=$((seen + 1))
    until [[ -e $SYNC/seen-$seen ]]; do sleep 0.01; done
}}
"""


def frame(name: str) -> bytes:
    """The vector's whole frame (header and body)."""
    return bytes.fromhex(VALID[name]["hex"])


def body(frame_bytes: bytes) -> dict[str, Any]:
    decoded = msgpack.unpackb(frame_bytes[4:], raw=False)
    assert isinstance(decoded, dict)
    return decoded


def without_ts(frame_bytes: bytes) -> bytes:
    """The frame with its trailing ``ts`` field cut out, bytes otherwise untouched.

    A worker stamps progress, logs and outcomes with the wall clock, which no vector can
    hold; canonical encoding puts ``ts`` last, so cutting it leaves the vector's bytes.
    """
    message = body(frame_bytes)
    if "ts" not in message:
        return frame_bytes
    assert list(message)[-1] == "ts", f"ts is not the last field: {list(message)}"
    assert isinstance(message["ts"], int) and message["ts"] > 1_600_000_000_000
    tail = b"\xa2ts" + msgpack.packb(message["ts"])
    raw = frame_bytes[4:]
    assert raw.endswith(tail) and 0x81 <= raw[0] <= 0x8F, raw.hex()
    cut = bytes([raw[0] - 1]) + raw[1 : -len(tail)]
    return len(cut).to_bytes(4, "big") + cut


def proof(label: bytes, job_id: str, first: bytes, second: bytes) -> bytes:
    """HMAC-SHA256 over the handshake input of docs/protocol.md, written out here
    independently of ``protocol.handshake``."""
    key = hashlib.sha256(TOKEN.encode()).digest()
    job = job_id.encode()
    data = label + b"\x00" + len(job).to_bytes(4, "big") + job + first + second
    return hmac.new(key, data, hashlib.sha256).digest()


class RecordingSupervisor:
    """See the module docstring. One worker connection at a time, on its own thread."""

    def __init__(self, folder: Path, transport: str, welcome: str) -> None:
        self.folder = folder
        self.welcome = frame(welcome)
        self.job_id = body(self.welcome)["job_id"]
        self.frames: list[bytes] = []  # everything the worker sent, in order
        self.hold_acks = False
        self.refuse_with: bytes | None = None
        self.errors: list[str] = []
        self._cond = threading.Condition()
        self._conn: socket.socket | None = None
        self._after_welcome = 0
        if transport == "tcp":
            self.listener = socket.create_server(("127.0.0.1", 0))
            self.address = f"tcp://127.0.0.1:{self.listener.getsockname()[1]}"
        else:
            path = os.path.join(short_socket_dir(), "job.sock")
            self.listener = socket.socket(socket.AF_UNIX)
            self.listener.bind(path)
            self.listener.listen()
            self.address = path
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def env(self, marker: str) -> dict[str, str]:
        return {
            **os.environ,
            "JOBVISOR_SOCKET": self.address,
            "JOBVISOR_JOB_ID": self.job_id,
            "JOBVISOR_TOKEN": TOKEN,
            "JOBVISOR_HEARTBEAT_INTERVAL": "5",
            "JOBVISOR_PYTHON": sys.executable,
            TEST_RUN_VAR: marker,
            "SYNC": str(self.folder),
        }

    def of_type(self, kind: str) -> list[bytes]:
        with self._cond:
            return [f for f in self.frames if body(f)["type"] == kind]

    def send(self, data: bytes) -> None:
        assert self._conn is not None, "no worker connected"
        self._conn.sendall(data)

    def close(self) -> None:
        self.listener.close()
        if self._conn is not None:
            self._conn.close()

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        self._conn = conn
        with conn:
            while (data := _read_frame(conn)) is not None:
                try:
                    self._on_frame(data)
                except Exception as exc:  # reported by the fixture, not lost on a thread
                    self.errors.append(repr(exc))
                    return

    def _on_frame(self, data: bytes) -> None:
        with self._cond:
            self.frames.append(data)
        message = body(data)
        kind = message["type"]
        if kind == "hello":
            if self.refuse_with is not None:
                self.send(self.refuse_with)
                return
            self._nonce = message["nonce"]
            challenge = frame("challenge")
            ours = proof(b"jobvisor/2 supervisor", self.job_id, self._nonce, _SUPERVISOR_NONCE)
            self.send(challenge.replace(_VECTOR_PROOF, ours))
        elif kind == "auth":
            self.send(self.welcome)
        elif kind != "heartbeat":
            self._after_welcome += 1
            (self.folder / f"seen-{self._after_welcome}").touch()
            if kind in ("completed", "failed") and not self.hold_acks:
                self.send(frame(f"ack_{kind}"))


_SUPERVISOR_NONCE = bytes.fromhex(HANDSHAKE["supervisor_nonce_hex"])
_VECTOR_PROOF = body(frame("challenge"))["proof"]


def _read_frame(sock: socket.socket) -> bytes | None:
    header = _read_exactly(sock, 4)
    if header is None:
        return None
    rest = _read_exactly(sock, int.from_bytes(header, "big"))
    return None if rest is None else header + rest


def _read_exactly(sock: socket.socket, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        try:
            chunk = sock.recv(n - len(data))
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
    return data


def run_script(
    tmp_path: Path, text: str, env: Mapping[str, str], name: str = "worker.sh"
) -> subprocess.Popen[str]:
    """Start ``bash`` on PRELUDE + ``text`` (stdout and stderr captured)."""
    script = tmp_path / name
    script.write_text(PRELUDE + text)
    return subprocess.Popen(
        ["bash", str(script)],
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # like the supervisor: the script leads its group
    )
