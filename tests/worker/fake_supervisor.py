"""A scriptable fake supervisor for the worker library's tests.

It listens on a real Unix socket (in a short private directory) or a real loopback TCP
port, runs its own selectors loop in a thread, and speaks the protocol through the
``protocol`` package. By default it runs the handshake as the supervisor does (a hello
gets a challenge with a proof made from ``token``, a right auth gets a welcome, a wrong
one ``bad_token``) and records every message it receives (with the connection it came on
and the monotonic time). The test scripts the rest: refuse hellos or leave them
unanswered, play an impostor that does not know the token (``proof_token``), send
ack/cancel, drop connections, close the listener and reopen it on the same path/port to
play a supervisor restart.

Every scripting call runs on the fake's own thread (through a command queue and a
wakeup socketpair) and returns when it is done, so a test never races the loop.
"""

from __future__ import annotations

import contextlib
import os
import queue
import selectors
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import protocol
from protocol import Ack, Auth, Cancel, Challenge, Error, Hello, Message, Welcome, handshake

T = TypeVar("T")
M = TypeVar("M", bound=Message)


@dataclass
class Received:
    """One message the fake received."""

    conn: int  # index of the connection, in accept order
    message: Message
    at: float  # time.monotonic() when it was decoded

    @property
    def type(self) -> str:
        return self.message.TYPE


@dataclass
class FakeConnection:
    index: int
    sock: socket.socket
    decoder: protocol.Decoder = field(default_factory=protocol.Decoder)
    hello: Hello | None = None
    expected_proof: bytes | None = None  # the auth proof a challenged worker must send
    welcomed: bool = False
    closed_at: float | None = None


@dataclass
class _Scripted:
    """How to answer the next hellos instead of welcoming them."""

    code: str | None  # an error frame with this code; None: no answer at all
    message: str
    times: int | None  # None: every hello from now on


class FakeSupervisor:
    """See the module docstring. Use as a context manager, or call start() and stop()."""

    def __init__(
        self,
        *,
        tcp: bool = False,
        job_id: str = "job-1",
        token: str = "s3cret",
        name: str = "test-job",
        data: Any = None,
        attempt: int = 1,
        heartbeat_interval: float = 0.1,
        reconnect_interval: float = 2.0,
        give_up_after: float = 60.0,
        auto_ack: bool = False,
    ) -> None:
        self.tcp = tcp
        self.job_id = job_id
        self.token = token
        self.name = name
        self.data = data
        self.attempt = attempt
        self.heartbeat_interval = heartbeat_interval
        self.reconnect_interval = reconnect_interval  # the schedule sent in welcome
        self.give_up_after = give_up_after
        self.proof_token = token  # the token our challenge proofs are made with
        self.drop_after_welcome = False  # hang up right after each welcome (a flapping peer)
        self.auto_ack = auto_ack
        self.received: list[Received] = []
        self.connections: list[FakeConnection] = []
        self.errors: list[str] = []  # protocol errors in what workers sent
        self._lock = threading.Lock()
        self._scripted: list[_Scripted] = []
        self._dir = tempfile.mkdtemp(prefix="jvw-")  # short: sun_path holds 108 bytes
        self.path = os.path.join(self._dir, "s")
        self.port = 0
        self._listener: socket.socket | None = None
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._commands: queue.Queue[tuple[Callable[[], Any], list[Any], threading.Event]] = (
            queue.Queue()
        )
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="fake-supervisor", daemon=True)

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> FakeSupervisor:
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._open_listener()
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._call(self._shutdown)
            self._thread.join(5)
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> FakeSupervisor:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def address(self) -> str:
        """The value of JOBVISOR_SOCKET for workers."""
        return f"tcp://127.0.0.1:{self.port}" if self.tcp else self.path

    def env(self, **extra: str) -> dict[str, str]:
        """An environment for a worker process pointed at this fake."""
        env = dict(os.environ)
        env.update(
            JOBVISOR_SOCKET=self.address,
            JOBVISOR_JOB_ID=self.job_id,
            JOBVISOR_TOKEN=self.token,
            JOBVISOR_HEARTBEAT_INTERVAL=str(self.heartbeat_interval),
        )
        env.update(extra)
        return env

    # --- scripting (runs on the fake's thread) ------------------------------------------

    def refuse(self, code: str, message: str = "refused by the test", times: int | None = None):
        """Answer the next ``times`` hellos (every one if None) with an error frame."""
        self._call(lambda: self._scripted.append(_Scripted(code, message, times)))

    def ignore_hellos(self, times: int | None = None) -> None:
        """Accept the next ``times`` connections (every one if None) but never answer hello."""
        self._call(lambda: self._scripted.append(_Scripted(None, "", times)))

    def send(self, message: Message, conn: int | None = None) -> None:
        """Send ``message`` on connection ``conn`` (default: the newest open one)."""
        self._call(lambda: self._send(self._pick(conn), message))

    def send_ack(self, of: str = "completed", conn: int | None = None) -> None:
        self.send(Ack(of=of), conn)

    def send_cancel(self, reason: str | None = "cancelled by the test") -> None:
        self.send(Cancel(reason=reason))

    def send_raw(self, data: bytes, conn: int | None = None) -> None:
        self._call(lambda: self._pick(conn).sock.sendall(data))

    def drop_connections(self) -> None:
        """Close every open connection (the listener stays)."""
        self._call(self._drop_all)

    def close_listener(self) -> None:
        """Stop listening; the Unix path disappears, the TCP port is free."""
        self._call(self._close_listener)

    def reopen_listener(self) -> float:
        """Listen again on the same path/port; returns when (monotonic) it listens."""
        return self._call(self._open_listener)

    def go_down(self) -> None:
        """What a supervisor crash looks like: every connection and the listener vanish."""

        def down() -> None:
            self._drop_all()
            self._close_listener()

        self._call(down)

    # --- observation ------------------------------------------------------------------

    def messages(self, type_: str | None = None, conn: int | None = None) -> list[Received]:
        with self._lock:
            return [
                r
                for r in self.received
                if (type_ is None or r.type == type_) and (conn is None or r.conn == conn)
            ]

    def messages_of(self, cls: type[M], conn: int | None = None) -> list[M]:
        """The received messages of class ``cls`` (on connection ``conn`` if given), in order."""
        return [r.message for r in self.messages(cls.TYPE, conn) if isinstance(r.message, cls)]

    def wait_for(self, predicate: Callable[[], T], timeout: float = 10.0, what: str = "") -> T:
        """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                seen = [(r.conn, r.type) for r in self.messages()]
                raise AssertionError(
                    f"timed out after {timeout} s waiting for {what or predicate}; received {seen}"
                )
            time.sleep(0.01)

    def wait_message(
        self, type_: str, conn: int | None = None, count: int = 1, timeout: float = 10.0
    ) -> Received:
        """Wait until ``count`` messages of ``type_`` arrived; returns the last of them."""
        found = self.wait_for(
            lambda: (m := self.messages(type_, conn)) and len(m) >= count and m,
            timeout,
            f"{count} x {type_!r} on connection {conn}",
        )
        return found[count - 1]

    # --- the loop ---------------------------------------------------------------------

    def _call(self, fn: Callable[[], T]) -> T:
        result: list[Any] = []
        done = threading.Event()
        self._commands.put((fn, result, done))
        self._wake_w.send(b"\0")
        if not done.wait(10):
            raise AssertionError("the fake supervisor's loop did not run a command")
        if isinstance(result[0], BaseException):
            raise result[0]
        return result[0]  # type: ignore[no-any-return]

    def _run(self) -> None:
        while not self._stopping:
            for key, _mask in self._selector.select():
                if key.data == "wake":
                    self._run_commands()
                elif key.data == "listener":
                    self._accept()
                else:
                    self._read(key.data)

    def _run_commands(self) -> None:
        with contextlib.suppress(BlockingIOError):
            self._wake_r.recv(4096)
        while True:
            try:
                fn, result, done = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                result.append(fn())
            except BaseException as exc:
                result.append(exc)
            done.set()

    def _open_listener(self) -> float:
        assert self._listener is None, "already listening"
        if self.tcp:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            # Connections we closed leave TIME_WAIT on this port; a restart must rebind it.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", self.port))
            self.port = sock.getsockname()[1]
        else:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind(self.path)
        sock.listen(64)
        sock.setblocking(False)
        self._listener = sock
        self._selector.register(sock, selectors.EVENT_READ, "listener")
        return time.monotonic()

    def _close_listener(self) -> None:
        sock, self._listener = self._listener, None
        if sock is None:
            return
        self._selector.unregister(sock)
        sock.close()
        if not self.tcp:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)

    def _accept(self) -> None:
        assert self._listener is not None
        try:
            sock, _ = self._listener.accept()
        except BlockingIOError:
            return
        sock.setblocking(True)  # small frames to a live peer: sendall is fine in a test
        conn = FakeConnection(len(self.connections), sock)
        with self._lock:
            self.connections.append(conn)
        self._selector.register(sock, selectors.EVENT_READ, conn)

    def _read(self, conn: FakeConnection) -> None:
        try:
            data = conn.sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._close(conn)
            return
        try:
            messages = conn.decoder.feed(data)
        except protocol.ProtocolError as exc:
            self.errors.append(f"connection {conn.index}: {exc}")
            self._close(conn)
            return
        for message in messages:
            with self._lock:
                self.received.append(Received(conn.index, message, time.monotonic()))
            if conn.closed_at is None:
                self._answer(conn, message)

    def _answer(self, conn: FakeConnection, message: Message) -> None:
        if isinstance(message, Hello):
            conn.hello = message
            scripted = self._next_scripted()
            if scripted is not None:
                if scripted.code is not None:
                    self._refuse(conn, scripted.code, scripted.message)
            elif message.job_id != self.job_id:
                self._refuse(conn, "wrong_job", f"this socket is for job {self.job_id}")
            elif message.nonce is None:
                self._refuse(conn, "invalid_message", "hello without a nonce")
            else:
                self._challenge(conn, message.nonce)
        elif conn.hello is None:
            self.errors.append(f"connection {conn.index}: {message.TYPE} before hello")
        elif not conn.welcomed:
            if not isinstance(message, Auth) or conn.expected_proof is None:
                self.errors.append(f"connection {conn.index}: {message.TYPE} before welcome")
            elif not handshake.proofs_match(conn.expected_proof, message.proof):
                self._refuse(conn, "bad_token", "bad token")
            else:
                conn.welcomed = True
                self._send(
                    conn,
                    Welcome(
                        job_id=self.job_id,
                        name=self.name,
                        data=self.data,
                        attempt=self.attempt,
                        heartbeat_interval=self.heartbeat_interval,
                        reconnect_interval=self.reconnect_interval,
                        give_up_after=self.give_up_after,
                    ),
                )
                if self.drop_after_welcome:
                    self._close(conn)
        elif message.TYPE in ("completed", "failed") and self.auto_ack:
            self._send(conn, Ack(of=message.TYPE))

    def _challenge(self, conn: FakeConnection, worker_nonce: bytes) -> None:
        nonce = os.urandom(handshake.NONCE_SIZE)
        key = handshake.token_key(self.token)
        conn.expected_proof = handshake.worker_proof(key, self.job_id, nonce, worker_nonce)
        proof_key = handshake.token_key(self.proof_token)
        proof = handshake.supervisor_proof(proof_key, self.job_id, worker_nonce, nonce)
        self._send(conn, Challenge(nonce=nonce, proof=proof))

    def _next_scripted(self) -> _Scripted | None:
        if not self._scripted:
            return None
        scripted = self._scripted[0]
        if scripted.times is not None:
            scripted.times -= 1
            if scripted.times <= 0:
                self._scripted.pop(0)
        return scripted

    def _refuse(self, conn: FakeConnection, code: str, message: str) -> None:
        self._send(conn, Error(code=code, message=message))
        self._close(conn)

    def _send(self, conn: FakeConnection, message: Message) -> None:
        try:
            conn.sock.sendall(protocol.encode(message))
        except OSError as exc:
            self.errors.append(f"connection {conn.index}: send failed: {exc}")
            self._close(conn)

    def _pick(self, index: int | None) -> FakeConnection:
        if index is not None:
            return self.connections[index]
        open_ = [c for c in self.connections if c.closed_at is None]
        if not open_:
            raise AssertionError("the fake supervisor has no open connection")
        return open_[-1]

    def _close(self, conn: FakeConnection) -> None:
        if conn.closed_at is not None:
            return
        conn.closed_at = time.monotonic()
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(conn.sock)
        conn.sock.close()

    def _drop_all(self) -> None:
        for conn in list(self.connections):
            self._close(conn)

    def _shutdown(self) -> None:
        self._drop_all()
        self._close_listener()
        self._stopping = True
