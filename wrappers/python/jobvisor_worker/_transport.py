"""The I/O thread: the one place where the worker touches its socket.

Theory of operation. The job's code runs on its own thread(s) and only queues into the
``Session`` (under ``cond``, a ``threading.Condition``) and then calls ``wake``, which
writes one byte into a socketpair. This thread sleeps in ``selectors`` on that socketpair
and the supervisor socket, with a timeout that is the nearest deadline of: the next
connection attempt (while disconnected), the end of the handshake, the next heartbeat.
Each pass of the loop has three phases, in this order:

1. connect when disconnected and the retry policy says it is time (``_retry.py``);
2. write: when the previous write went out completely, take ``data_to_send`` from the
   session and write it optimistically; ``EVENT_WRITE`` is watched only while some bytes
   are left over (a slow supervisor). The session keeps coalescing progress meanwhile;
3. wait, then read: bytes go to the session, events come back and are handled here
   (fatal refusal -> stop the job, welcome/ack/cancel -> the ``Job`` via ``on_event``).

A busy caller. The I/O thread needs the GIL to run: woken while the job's main thread
spins in Python code, it waits for a switch interval (``sys.getswitchinterval()``, 5 ms
unless the program changed it) and for the OS to schedule it, and a caller that calls
``progress()`` in a loop also holds ``cond`` most of the time. So the caller helps
(``nudge``): after queueing, if the session was not asked for bytes for
``CALLER_FLUSH_AFTER``, the caller's own thread takes them and writes them, non-blocking,
when it can take ``_send_lock`` at once; what the socket does not take goes to
``_outbuf`` for the I/O thread. ``_send_lock`` is held by whoever takes bytes from the
session until they are written (frames leave in the order they were taken) and by every
change of ``_sock``/``_outbuf``. Lock order: ``_send_lock``, then ``cond``; the I/O thread,
which may wait long for ``cond`` while the caller loops, only ever tries ``_send_lock``
once it holds ``cond`` and gives up if the caller has it (see ``_take_send_lock``). The caller
never connects, reads, reconnects or waits: a failed write is left to the I/O thread,
which sees the broken connection on its next read, as if it had written itself. A C
extension that holds the GIL stops both threads: nothing can send then
(docs/worker-python.md, "A busy main thread").

Reading before the next write means a connection the supervisor closed is noticed before
more queued messages are handed to it. Messages handed to a connection that then breaks
are not sent again, except the latest progress and the unacked outcome (docs/protocol.md,
"Reconnect").

Connection loss never stops the job: the session keeps queueing, the policy schedules
attempts (every ~20 ms first, then backing off), and when the give-up window passes
without a welcome the job is stopped with exit code 75 (``_terminate.py``). A connection
that ends before its welcome (refused, no answer, a peer whose challenge proof is wrong)
is one failed try. Each welcome brings the supervisor's reconnect schedule
(``reconnect_interval``, ``give_up_after``), which replaces the options from then on.

A welcomed connection that is lost within ``STABLE_CONNECTION`` seconds does not open a
fresh outage with its own fast window: the outage goes on and backs off
(``RetryPolicy.resume``), and only the first such loss of a run is written to stderr, so
a supervisor that drops us on every replay cannot make us reconnect (and log) in a tight
loop.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time
from collections.abc import Callable
from typing import Final

from jobvisor_worker._events import Event, ProtocolViolation, Refused, Welcomed
from jobvisor_worker._options import Options
from jobvisor_worker._retry import RetryPolicy
from jobvisor_worker._session import Session
from jobvisor_worker._stderr import say
from jobvisor_worker._terminate import EXIT_REFUSED, EXIT_UNREACHABLE, terminate

CONNECT_TIMEOUT: Final = 1.0
# A supervisor that accepts but never answers hello is as good as absent.
HANDSHAKE_TIMEOUT: Final = 10.0
# A welcomed connection lost sooner than this was "dropped right away" (see above).
STABLE_CONNECTION: Final = 1.0
# How long close() keeps trying to hand queued messages to a connected supervisor.
CLOSE_LINGER: Final = 1.0
RECV_SIZE: Final = 65536
# The caller's thread writes itself when nothing was written for this long (see above):
# well under the 100 ms within which a busy worker's latest progress should be seen, and
# long enough that a worker whose I/O thread keeps up makes no extra syscalls.
CALLER_FLUSH_AFTER: Final = 0.02
_SEND_FLAGS: Final = getattr(socket, "MSG_NOSIGNAL", 0)  # EPIPE, not SIGPIPE


class Transport:
    """Owns the socket and the I/O thread of one ``Job``."""

    def __init__(
        self,
        session: Session,
        options: Options,
        cond: threading.Condition,
        on_event: Callable[[Event], None],
        *,
        clock: Callable[[], float] = time.monotonic,
        stop: Callable[[int, str], object] = terminate,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
    ) -> None:
        self._session = session
        self._address = options.address
        self._cond = cond
        self._on_event = on_event  # called with ``cond`` held
        self._clock = clock
        self._stop = stop
        self._handshake_timeout = handshake_timeout
        self._policy = RetryPolicy(
            cap=options.reconnect_interval,
            give_up_after=options.give_up_after,
            fast_window=options.fast_reconnect_window,
        )
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._wake_pending = False
        self._sock: socket.socket | None = None
        self._outbuf = bytearray()
        self._send_lock = threading.Lock()  # see "A busy caller" above
        self._last_flush = 0.0  # when the session was last asked for bytes
        self._welcomed_here = False  # the current connection got a welcome
        self._welcomed_at = 0.0
        self._short_drops = 0  # welcomed connections lost at once, in a row
        self._handshake_deadline = 0.0
        self._next_attempt = 0.0
        self._told_backing_off = False
        self._told_violation = False
        self._closing = False
        self.stopped = False  # the thread has ended (set under ``cond``)
        self._thread = threading.Thread(target=self._run, name="jobvisor-io", daemon=True)

    # --- called from other threads ----------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """Make the I/O thread look at the session now (something was queued)."""
        # The flag spares a syscall per message in a burst; it is cleared (after the
        # bytes are drained) before the session is read, so a message queued after the
        # clearing always gets its byte.
        if self._wake_pending:
            return
        self._wake_pending = True
        with contextlib.suppress(OSError):  # full (a wakeup is pending) or closed
            self._wake_w.send(b"\0")

    def nudge(self) -> None:
        """After the job queued something: wake the I/O thread, and write from this thread
        too when the I/O thread has not written for ``CALLER_FLUSH_AFTER`` (never blocks)."""
        if self._clock() - self._last_flush >= CALLER_FLUSH_AFTER and self._send_lock.acquire(
            blocking=False
        ):
            try:
                self._flush_from_caller()
            finally:
                self._send_lock.release()
        self.wake()

    def _flush_from_caller(self) -> None:
        sock = self._sock
        if sock is None or self._outbuf or self._closing:
            return  # not connected, or the I/O thread has a write in progress
        now = self._clock()
        with self._cond:
            data = self._session.data_to_send(now)  # b"" unless welcomed
        self._last_flush = now
        if not data:
            return
        try:
            sent = sock.send(data, _SEND_FLAGS)  # the socket is non-blocking
        except OSError:
            sent = 0  # full (the rest waits in _outbuf) or broken (the I/O thread will see)
        if sent < len(data):
            self._outbuf += data[sent:]
            self._wake_pending = False  # nudge's wake must reach the I/O thread: EVENT_WRITE

    def close(self, timeout: float = CLOSE_LINGER + 1.0) -> None:
        """Flush briefly, close the connection and stop the thread."""
        self._closing = True
        self._wake_pending = False
        self.wake()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    # --- the I/O thread -----------------------------------------------------------------

    def _run(self) -> None:
        now = self._clock()
        self._policy.start(now)
        self._next_attempt = now
        try:
            while not self._closing:
                try:
                    self._step()
                except Exception as exc:  # a bug here must not silence the job for good
                    import traceback  # noqa: PLC0415 - only for this bug

                    say(f"internal error in the I/O thread: {exc!r}\n{traceback.format_exc()}")
                    self._drop(self._clock(), f"internal error {exc!r}")
            self._linger()
        finally:
            self._shutdown()

    def _step(self) -> None:
        now = self._clock()
        if self._sock is None and now >= self._next_attempt:
            self._try_connect(now)
        if self._sock is not None:
            self._write(now)
        timeout = self._timeout(self._clock())
        readable = False
        for key, _mask in self._selector.select(timeout):
            if key.fileobj is self._wake_r:
                self._drain_wakeups()
            else:
                readable = True  # EVENT_WRITE needs no action: phase 2 writes next pass
        now = self._clock()
        if readable and self._sock is not None:
            self._read(now)
        if self._sock is not None and not self._welcomed_here and now >= self._handshake_deadline:
            self._drop(now, f"no answer to hello within {self._handshake_timeout:g} s")

    def _timeout(self, now: float) -> float | None:
        if self._closing:
            return 0.0
        if self._sock is None:
            deadline: float | None = self._next_attempt
        elif self._outbuf:
            return None  # EVENT_WRITE wakes us
        elif not self._welcomed_here:
            with self._cond:
                if self._session.wants_to_send:  # the auth answering a valid challenge
                    return 0.0
            deadline = self._handshake_deadline
        else:
            with self._cond:
                if self._session.wants_to_send:
                    return 0.0
                deadline = self._session.next_deadline()
        if deadline is None:
            return None
        return max(0.0, deadline - now)

    def _drain_wakeups(self) -> None:
        # Drain first, then clear: cleared first, a wake() between the two would see the
        # flag down, send its byte, have it drained here and leave the flag up with the
        # socketpair empty; every later wake() would then be skipped and the I/O thread
        # would sleep to its next heartbeat, leaving a busy worker's progress seconds late.
        with contextlib.suppress(OSError):
            while self._wake_r.recv(4096):
                pass
        self._wake_pending = False

    def _try_connect(self, now: float) -> None:
        try:
            sock = self._address.connect(CONNECT_TIMEOUT)
        except OSError as exc:
            self._attempt_failed(now, exc)
            return
        with self._send_lock, self._cond:
            hello = self._session.connection_made()
            self._sock = sock
            self._outbuf = bytearray(hello)
        self._welcomed_here = False
        self._handshake_deadline = now + self._handshake_timeout
        self._selector.register(sock, selectors.EVENT_READ)

    def _attempt_failed(self, now: float, reason: object) -> None:
        delay = self._policy.next_delay(now)
        if delay is None:
            self._give_up(reason)
            return
        if not self._told_backing_off and not self._policy.in_fast_window(now):
            self._told_backing_off = True
            left = self._policy.deadline() - now
            say(
                f"supervisor at {self._address} still unreachable ({reason}); retrying "
                f"every {self._policy.cap:g} s at most, giving up in {left:.1f} s"
            )
        self._next_attempt = now + delay

    def _give_up(self, reason: object) -> None:
        self._closing = True
        self._stop(
            EXIT_UNREACHABLE,
            f"no supervisor accepted this job at {self._address} for "
            f"{self._policy.give_up_after:g} s (last error: {reason})",
        )

    def _write(self, now: float) -> None:
        if not self._take_send_lock(now):
            return  # the job's thread is writing; it wakes us if it leaves bytes over
        try:
            sock = self._sock
            assert sock is not None
            error: OSError | None = None
            try:
                sent = sock.send(self._outbuf, _SEND_FLAGS)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                sent, error = 0, exc
            del self._outbuf[:sent]
        finally:
            self._send_lock.release()
        if error is not None:  # dropped outside _send_lock: _drop takes it
            self._drop(now, error)
            return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if self._outbuf else 0)
        self._selector.modify(sock, events)

    def _take_send_lock(self, now: float) -> bool:
        """Hold ``_send_lock`` with bytes in ``_outbuf`` (True), or hold nothing (False).

        Never waits for ``_send_lock`` while waiting for, or holding, ``cond``: a busy
        caller holds ``cond`` nearly all the time and this thread may wait long for it,
        and holding ``_send_lock`` meanwhile would stop the caller from writing too.
        """
        if self._outbuf:
            return self._send_lock.acquire(blocking=False)
        with self._cond:
            if not self._send_lock.acquire(blocking=False):
                return False
            data = self._session.data_to_send(now)
        self._last_flush = now
        if not data:
            self._send_lock.release()
            return False
        self._outbuf += data
        return True

    def _read(self, now: float) -> None:
        sock = self._sock
        assert sock is not None
        try:
            data = sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._drop(now, exc)
            return
        if not data:
            self._drop(now, "closed by the supervisor")
            return
        with self._cond:
            events = self._session.receive_data(data)
            for event in events:
                self._on_event(event)
        for event in events:
            self._handle(now, event)

    def _handle(self, now: float, event: Event) -> None:
        if isinstance(event, Welcomed):
            self._welcomed_here = True
            self._welcomed_at = now
            welcome = event.welcome
            self._policy.adopt(welcome.reconnect_interval, welcome.give_up_after)
            if not event.first and self._short_drops <= 1:
                took = now - self._policy.outage_start
                say(f"reconnected to the supervisor at {self._address} after {took:.3f} s")
            self._told_backing_off = False
            self._told_violation = False
        elif isinstance(event, Refused):
            if event.fatal:
                self._closing = True
                self._stop(
                    EXIT_REFUSED,
                    f"the supervisor refused this job: {event.code}: {event.message}",
                )
                return
            self._drop(now, f"the supervisor answered {event.code}: {event.message}")
        elif isinstance(event, ProtocolViolation):
            if not self._welcomed_here and not self._told_violation:
                # Once per outage: a peer that fails the handshake may be an impostor
                # holding our port, and the job's log should say so.
                self._told_violation = True
                say(
                    f"the peer at {self._address} broke the handshake ({event.reason}); "
                    "it was sent nothing, and it counts as a failed try"
                )
            self._drop(now, f"protocol violation: {event.reason}")

    def _drop(self, now: float, reason: object) -> None:
        """Close the current connection; a welcomed one starts a new outage."""
        sock = self._sock
        if sock is None:
            return
        with self._send_lock:
            self._sock = None
            self._outbuf = bytearray()
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(sock)
            sock.close()
            with self._cond:
                self._session.connection_lost()
        if self._closing:
            return
        if not self._welcomed_here:
            self._attempt_failed(now, reason)
            return
        self._welcomed_here = False
        if now - self._welcomed_at >= STABLE_CONNECTION:
            self._short_drops = 0
            self._policy.start(now)
        else:
            self._short_drops += 1
            self._policy.resume(now)
        if self._short_drops <= 1:
            say(f"connection to the supervisor lost ({reason}); reconnecting to {self._address}")
        elif self._short_drops == 2:
            say(
                "connections to the supervisor keep dropping right after their welcome "
                f"({reason}); backing off up to {self._policy.cap:g} s between tries, and not "
                f"logging them until one lasts {STABLE_CONNECTION:g} s"
            )
        if self._short_drops == 0:
            self._next_attempt = now  # first retry at once: most losses are brief
            return
        delay = self._policy.next_delay(now)
        self._next_attempt = now + (delay if delay is not None else 0.0)

    def _linger(self) -> None:
        """On close: hand what is queued to a welcomed connection, for a short while."""
        deadline = self._clock() + CLOSE_LINGER
        while self._sock is not None and self._welcomed_here:
            now = self._clock()
            if now >= deadline:
                break
            with self._cond:
                pending = self._session.wants_to_send
            if not self._outbuf and not pending:
                break
            self._write(now)
            if self._outbuf:
                self._selector.select(deadline - now)
                self._drain_wakeups()  # else a pending wakeup byte would make this spin

    def _shutdown(self) -> None:
        self._closing = True
        self._drop(self._clock(), "closing")
        with self._cond:
            self.stopped = True
            self._cond.notify_all()  # nobody may wait for a welcome or an ack any more
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()
