"""Worker sockets: per-job listeners and the connections they accept.

These classes do I/O and nothing else. A ``WorkerConn`` reads whatever the socket has
(one ``recv`` per readiness event, so a flooding worker cannot starve the others),
feeds the bytes to its sans-IO ``protocol.Decoder`` and passes the decoded messages, in
order, to its ``owner`` (the conversation), which decides what they mean. Output is
held until the iteration's commit (``loop.Outgoing``). A protocol error gets an
``error`` frame and a closed connection; the job and every other connection carry on.

Events travel one way, upward, and never into a caller still on the stack: the owner
hears of messages only from the loop's readiness callback, and of a closed connection
through the loop's ready queue, whoever closed it. A method the owner calls
(``drain``, ``send``, ``close``, ``reject``) therefore never calls the owner back; what
``drain`` reads it returns. This layer knows nothing of attempts: what the owner
attaches to a welcomed connection is the type parameter ``S``.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import os
import socket
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from protocol import Decoder, Error, ErrorCode, Message, encode
from supervisor.logthrottle import LogThrottle
from supervisor.loop import Outgoing

if TYPE_CHECKING:
    from supervisor.loop import Loop
    from supervisor.metrics import Counters

log = logging.getLogger(__name__)
_throttled = LogThrottle(log)

# One read per readiness event; with the loop's time budget this keeps every iteration
# short (HTTP, timers and commits are not starved by a flooding worker).
RECV_SIZE = 64 * 1024
# A worker that does not read what we send (acks, cancels: a few bytes each) is broken;
# cap what we hold for it rather than grow without bound.
MAX_OUTBUF = 1 << 20
MAX_PENDING_HANDSHAKES = 8
ACCEPT_BACKOFF = 0.1
_conn_ids = itertools.count(1)

S = TypeVar("S")


class Owner(Protocol[S]):
    counters: Counters

    def on_worker_messages(self, conn: WorkerConn[S], messages: list[Message]) -> None: ...
    def on_worker_closed(self, conn: WorkerConn[S]) -> None: ...
    def on_worker_accepted(self, conn: WorkerConn[S]) -> None: ...


class WorkerConn(Outgoing, Generic[S]):
    __slots__ = (
        "attempt",
        "closed",
        "decoder",
        "handshake",
        "id",
        "listener",
        "loop",
        "owner",
        "sock",
    )

    def __init__(
        self,
        loop: Loop,
        sock: socket.socket,
        listener: JobListener[S],
        owner: Owner[S],
        max_frame: int,
    ) -> None:
        self.id = next(_conn_ids)
        self.loop = loop
        self.sock = sock
        self.listener = listener
        self.owner = owner
        self.decoder = Decoder(max_frame)
        self.attempt: S | None = None  # what the owner attached when it welcomed the worker
        self.handshake: object = None  # the owner's state while a handshake is under way
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
        messages, error = self.decoder.receive(data)
        if messages:
            self.owner.on_worker_messages(self, messages)
        if error is not None and not self.closed:
            self.reject(error.code, error.message)

    def drain(self) -> list[Message]:
        """Read everything already waiting (the worker exited: its last words count) and
        return the messages; the caller, not this connection, hands them on. The end of
        the stream leaves the connection open: the caller closes it when it is done."""
        messages: list[Message] = []
        while not self.closed:
            try:
                data = self.sock.recv(RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.close("read failed while draining")
                break
            if not data:
                break
            self.owner.counters.worker_bytes += len(data)
            decoded, error = self.decoder.receive(data)
            messages += decoded
            if error is not None:
                self.reject(error.code, error.message)
        return messages

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
        """Close; the owner hears of it from the loop's ready queue, never from here."""
        if self.closed:
            return
        self.closed = True
        self.loop.remove(self.sock)
        with contextlib.suppress(OSError):
            self.sock.close()
        self._out.clear()
        self.decoder = Decoder(1024)  # drop any large buffer at once
        self.listener.pending.discard(self)
        self.loop.call_soon(lambda: self.owner.on_worker_closed(self))


class JobListener(Generic[S]):
    """The listening socket of one attempt (a Unix path or a loopback port)."""

    __slots__ = ("job_id", "loop", "max_frame", "owner", "pending", "sock")

    def __init__(
        self, loop: Loop, sock: socket.socket, job_id: str, owner: Owner[S], max_frame: int
    ) -> None:
        self.loop = loop
        self.sock = sock
        self.job_id = job_id
        self.owner = owner
        self.max_frame = max_frame
        self.pending: set[WorkerConn[S]] = set()  # accepted, no hello accepted yet
        _SPARE.reserve()
        loop.add_reader(sock, self._on_accept)

    def _on_accept(self, mask: int) -> None:
        for _ in range(16):
            try:
                sock, _addr = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._accept_failed(exc)
                return
            if len(self.pending) >= MAX_PENDING_HANDSHAKES:
                refuse(sock, "too many connections without a hello")
                self.owner.counters.protocol_errors += 1
                continue
            sock.setblocking(False)
            conn: WorkerConn[S] = WorkerConn(self.loop, sock, self, self.owner, self.max_frame)
            self.pending.add(conn)
            self.owner.on_worker_accepted(conn)

    def _accept_failed(self, exc: OSError) -> None:
        """EMFILE/ENFILE/ENOBUFS: the connection waits in the backlog. At the descriptor
        limit it is refused with an ``error`` frame (through the spare descriptor) rather
        than left to time out; then stop listening for a moment instead of spinning on a
        readable socket. The warning is rate-limited: under a descriptor shortage every
        listener fails at once, again and again."""
        if exc.errno in (errno.EMFILE, errno.ENFILE):
            _SPARE.refuse_one(self.sock, "the supervisor is out of file descriptors")
            self.owner.counters.protocol_errors += 1
        _throttled.log(
            logging.WARNING,
            ("accept", exc.errno),
            self.loop.clock.monotonic(),
            "job %s: accept failed: %s; retrying in %g s",
            self.job_id,
            exc,
            ACCEPT_BACKOFF,
        )
        self.loop.remove(self.sock)
        self.loop.call_later(("accept", id(self)), ACCEPT_BACKOFF, self._resume)

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


def refuse(sock: socket.socket, message: str) -> None:
    """Tell a connection we will not serve it why (``unexpected_message``), and close it.

    Input already waiting is read first: closing a socket with unread input resets the
    connection, which can cost the peer our frame.
    """
    frame = encode(Error(code=str(ErrorCode.UNEXPECTED_MESSAGE), message=message))
    with contextlib.suppress(OSError):
        sock.setblocking(False)
        sock.send(frame)
        sock.shutdown(socket.SHUT_WR)
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while sock.recv(RECV_SIZE):
                pass
    sock.close()


class _SpareDescriptor:
    """One descriptor held in reserve (as libev and nginx do): at the descriptor limit it
    is given up for a moment to accept a waiting connection, refuse it with an ``error``
    frame and close it, then taken back."""

    __slots__ = ("_fd",)

    def __init__(self) -> None:
        self._fd: int | None = None

    def reserve(self) -> None:
        if self._fd is None:
            with contextlib.suppress(OSError):
                self._fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)

    def refuse_one(self, listener: socket.socket, message: str) -> None:
        if self._fd is None:
            return
        os.close(self._fd)
        self._fd = None
        try:
            sock, _addr = listener.accept()
        except OSError:
            pass
        else:
            refuse(sock, message)
        self.reserve()


_SPARE = _SpareDescriptor()
