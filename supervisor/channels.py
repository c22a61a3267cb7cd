"""Worker sockets: per-job listeners and the connections they accept.

These classes do I/O and nothing else. A ``WorkerConn`` reads whatever the socket has
(one ``recv`` per readiness event, so a flooding worker cannot starve the others),
feeds the bytes to its sans-IO ``protocol.Decoder`` and passes the decoded messages, in
order, to its ``owner`` (the supervisor core), which decides what they mean. Output is
buffered; the loop flushes it after the iteration's commit. A protocol error gets an
``error`` frame and a closed connection; the job and every other connection carry on.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import socket
from typing import TYPE_CHECKING, Protocol

from protocol import Decoder, Error, ErrorCode, Message, encode
from supervisor.loop import Outgoing

if TYPE_CHECKING:
    from supervisor.attempts import Attempt
    from supervisor.loop import Loop
    from supervisor.metrics import Counters

log = logging.getLogger(__name__)

# One read per readiness event; with the loop's time budget this keeps every iteration
# short (HTTP, timers and commits are not starved by a flooding worker).
RECV_SIZE = 64 * 1024
# A worker that does not read what we send (acks, cancels: a few bytes each) is broken;
# cap what we hold for it rather than grow without bound.
MAX_OUTBUF = 1 << 20
MAX_PENDING_HANDSHAKES = 8
ACCEPT_BACKOFF = 0.1
_conn_ids = itertools.count(1)


class Owner(Protocol):
    counters: Counters

    def on_worker_messages(self, conn: WorkerConn, messages: list[Message]) -> None: ...
    def on_worker_closed(self, conn: WorkerConn) -> None: ...
    def on_worker_accepted(self, conn: WorkerConn) -> None: ...


class WorkerConn(Outgoing):
    __slots__ = (
        "attempt",
        "closed",
        "decoder",
        "id",
        "listener",
        "loop",
        "owner",
        "sock",
    )

    def __init__(
        self, loop: Loop, sock: socket.socket, listener: JobListener, owner: Owner, max_frame: int
    ) -> None:
        self.id = next(_conn_ids)
        self.loop = loop
        self.sock = sock
        self.listener = listener
        self.owner = owner
        self.decoder = Decoder(max_frame)
        self.attempt: Attempt | None = None  # set when a hello is accepted
        self.closed = False
        super().__init__()
        loop.add_reader(sock, self._on_io, bulk=True)

    @property
    def job_id(self) -> str:
        """The job whose socket this connection arrived on."""
        return self.listener.job_id

    def _on_io(self, mask: int) -> None:
        if mask & 2:  # EVENT_WRITE
            self.flush()
        if mask & 1 and not self.closed:  # EVENT_READ
            self._read()

    def _read(self) -> None:
        try:
            data = self.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.close(f"read failed: {exc}")
            return
        if not data:
            self.close("closed by the worker")
            return
        self.owner.counters.worker_bytes += len(data)
        self.receive(data)

    def receive(self, data: bytes) -> None:
        """Decode ``data`` and hand over the messages; reject on a protocol error."""
        messages, error = self.decoder.receive(data)
        if messages:
            self.owner.on_worker_messages(self, messages)
        if error is not None and not self.closed:
            self.reject(error.code, error.message)

    def drain(self) -> None:
        """Read everything already waiting (the worker exited: its last words count)."""
        while not self.closed:
            try:
                data = self.sock.recv(RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.close("read failed while draining")
                return
            if not data:
                self.close("closed by the worker")
                return
            self.receive(data)

    # --- output ---------------------------------------------------------------------------

    def send(self, message: Message) -> None:
        """Hold ``message``; it leaves after this loop iteration's commit succeeded."""
        if self.closed:
            return
        self._out += encode(message)
        if len(self._out) > MAX_OUTBUF:
            self.close("worker does not read what the supervisor sends")
            return
        self.loop.want_flush(self)

    def flush(self) -> None:
        if not self.closed:
            self.write_out()

    def reject(self, code: str, message: str) -> None:
        """Send an ``error`` frame now (it reports no state) and close.

        Only committed output goes before it; output still held for this iteration's
        commit is dropped (a worker that lost an ack resends its outcome).
        """
        self.owner.counters.protocol_errors += 1
        log.warning("job %s: closing worker connection: %s: %s", self.job_id, code, message)
        if not self.closed:
            with contextlib.suppress(OSError):
                error = encode(Error(code=str(code), message=message))
                self.sock.send(bytes(self._out.sendable) + error)
                self.sock.shutdown(socket.SHUT_WR)
        self.close(f"{code}: {message}")

    def close(self, reason: str = "closed") -> None:
        if self.closed:
            return
        self.closed = True
        self.loop.remove(self.sock)
        with contextlib.suppress(OSError):
            self.sock.close()
        self._out.clear()
        self.decoder = Decoder(1024)  # drop any large buffer at once
        self.listener.pending.discard(self)
        self.owner.on_worker_closed(self)


class JobListener:
    """The listening socket of one attempt (a Unix path or a loopback port)."""

    __slots__ = ("job_id", "loop", "max_frame", "owner", "pending", "sock")

    def __init__(
        self, loop: Loop, sock: socket.socket, job_id: str, owner: Owner, max_frame: int
    ) -> None:
        self.loop = loop
        self.sock = sock
        self.job_id = job_id
        self.owner = owner
        self.max_frame = max_frame
        self.pending: set[WorkerConn] = set()  # accepted, no hello accepted yet
        loop.add_reader(sock, self._on_accept)

    def _on_accept(self, mask: int) -> None:
        for _ in range(16):
            try:
                sock, _addr = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                # EMFILE/ENFILE/ENOBUFS: the connection waits in the backlog. Stop
                # listening for a moment instead of spinning on a readable socket.
                log.warning(
                    "job %s: accept failed: %s; retrying in %g s", self.job_id, exc, ACCEPT_BACKOFF
                )
                self.loop.remove(self.sock)
                self.loop.call_later(("accept", id(self)), ACCEPT_BACKOFF, self._resume)
                return
            sock.setblocking(False)
            conn = WorkerConn(self.loop, sock, self, self.owner, self.max_frame)
            if len(self.pending) >= MAX_PENDING_HANDSHAKES:
                conn.reject(ErrorCode.UNEXPECTED_MESSAGE, "too many connections without a hello")
                continue
            self.pending.add(conn)
            self.owner.on_worker_accepted(conn)

    def _resume(self) -> None:
        if self.sock.fileno() >= 0:
            self.loop.add_reader(self.sock, self._on_accept)

    def close(self) -> None:
        self.loop.cancel_timer(("accept", id(self)))
        self.loop.remove(self.sock)
        with contextlib.suppress(OSError):
            self.sock.close()
        for conn in list(self.pending):
            conn.close("listener closed")
