"""The event loop: one thread, one selector, every socket, timer and state change.

Principles (curio's kernel states its own at the top; these are ours):

1. The loop owns all I/O. Handlers registered here read bytes and hand them to sans-IO
   objects; the state table changes only through the supervisor core.
2. Time is read from an injected clock once per phase; deadlines live in ``Timers``.
   The select timeout is the nearest deadline, so an idle supervisor sleeps.
3. Nothing leaves the process before it is durable. Each iteration runs in phases:

       poll I/O  ->  expire timers  ->  run ready callbacks  ->  COMMIT  ->  release outputs

   Handlers may write to connections and emit events freely; the bytes are buffered
   and the events queued, and both are released only after the commit phase has
   written every hard state change of the iteration in one transaction. An ack, an HTTP
   response or an event therefore never reports something the store could still lose.
4. A failing handler closes its own connection; the loop logs what escapes and goes on.
   Only a store failure stops it: without durability the promises above are void, and
   a supervisor that stops loses nothing (workers keep running and re-attach later).
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Any, Protocol

from supervisor.clock import Clock
from supervisor.errors import StoreError
from supervisor.timers import Timers

log = logging.getLogger(__name__)

Handler = Callable[[int], None]
EVENT_READ = selectors.EVENT_READ
EVENT_WRITE = selectors.EVENT_WRITE
# Even with nothing scheduled, wake up now and then: it bounds the damage of a missed
# wakeup (a bug) to a delay instead of a hang. Deadlines, not this, drive all work.
MAX_SLEEP = 30.0
# How long worker connections may be served in one iteration before timers, commits,
# outputs and HTTP get their turn (the real clock: it bounds CPU time, it is no deadline).
IO_BUDGET = 0.02


class Flushable(Protocol):
    def release(self) -> None: ...
    def drop_held(self) -> None: ...
    def flush(self) -> None: ...


class OutBuffer:
    """A connection's output in two parts: bytes *held* until the iteration's commit,
    and bytes *released* (committed) that may be sent.

    Handlers append (``buf += data``) to the held part; only the loop moves held bytes
    across, with ``release``, once the commit has succeeded, and drops them with
    ``drop_held`` when it failed. ``sendable`` is all a socket ever sees, so no close
    path (a flush before closing, an error frame sent at once) can send a byte whose
    state the store does not hold. ``len`` counts both parts: a connection with held
    output still has something to say.
    """

    __slots__ = ("_held", "sendable")

    def __init__(self) -> None:
        self._held = bytearray()
        self.sendable = bytearray()

    def __iadd__(self, data: bytes | bytearray) -> OutBuffer:
        self._held += data
        return self

    def __len__(self) -> int:
        return len(self._held) + len(self.sendable)

    @property
    def held(self) -> int:
        return len(self._held)

    def release(self) -> None:
        if self._held:
            self.sendable += self._held
            self._held.clear()

    def drop_held(self) -> None:
        self._held.clear()

    def clear(self) -> None:
        self._held.clear()
        self.sendable.clear()


class Outgoing:
    """The output side of a connection (asyncio's selector transports do the same):
    write optimistically, and watch EVENT_WRITE only while bytes are left over.

    What a handler writes waits in ``_out`` (an ``OutBuffer``) until the loop has
    committed the iteration that wrote it (see ``Loop.commit_and_release``).
    """

    __slots__ = ("_out", "_writing")
    loop: Loop
    sock: socket.socket

    def __init__(self) -> None:
        self._out = OutBuffer()
        self._writing = False

    def _on_io(self, mask: int) -> None: ...

    def close(self, reason: str = "closed") -> None: ...

    def release(self) -> None:
        """The iteration's commit succeeded: what was held may leave (loop only)."""
        self._out.release()

    def drop_held(self) -> None:
        """The iteration's commit failed: what was held must never leave (loop only)."""
        self._out.drop_held()

    def write_out(self) -> bool:
        """Send what is released; ``False`` if the connection broke (it is then closed)."""
        out = self._out.sendable
        if out:
            try:
                sent = self.sock.send(out)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                self.close(f"write failed: {exc}")
                return False
            del out[:sent]
        want = bool(out)
        if want != self._writing:
            self._writing = want
            self.loop.set_events(self.sock, EVENT_READ | (EVENT_WRITE if want else 0), self._on_io)
        return True


class Loop:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.selector = selectors.DefaultSelector()
        self.timers = Timers()
        self._ready: deque[Callable[[], Any]] = deque()
        self._inbox: deque[Callable[[], Any]] = deque()
        self._after_commit: list[Callable[[], Any]] = []
        self._writers: dict[int, Flushable] = {}
        self.commit: Callable[[], None] = lambda: None
        self.busy: Callable[[], bool] = lambda: False  # uncommitted work: do not sleep
        # Told the seconds of work of each iteration, its idle wait excluded (GET /metrics).
        self.observe_iteration: Callable[[float], None] = lambda seconds: None
        self.thread: threading.Thread | None = None
        self._stop = False
        self._bulk: set[int] = set()
        self._cursor = 0  # where the last iteration's budget ran out among bulk sources
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.selector.register(self._wake_r, EVENT_READ, self._drain_wakeup)

    # --- registration ---------------------------------------------------------------------

    def add_reader(self, fileobj: Any, handler: Handler, *, bulk: bool = False) -> None:
        """Call ``handler(mask)`` when ``fileobj`` is readable.

        ``bulk`` sources (worker connections) share a time budget per iteration; the
        others (listeners, HTTP, pidfds, the wakeup) are always served at once.
        """
        key = self.selector.register(fileobj, EVENT_READ, handler)
        if bulk:
            self._bulk.add(key.fd)

    def set_events(self, fileobj: Any, events: int, handler: Handler) -> None:
        self.selector.modify(fileobj, events, handler)

    def remove(self, fileobj: Any) -> None:
        with contextlib.suppress(KeyError, ValueError):
            key = self.selector.unregister(fileobj)
            self._bulk.discard(key.fd)

    def call_soon(self, callback: Callable[[], Any]) -> None:
        self._ready.append(callback)

    def call_later(self, key: Hashable, delay: float, callback: Callable[[], Any]) -> None:
        self.timers.set(key, self.clock.monotonic() + delay, callback)

    def call_at(self, key: Hashable, deadline: float, callback: Callable[[], Any]) -> None:
        self.timers.set(key, deadline, callback)

    def cancel_timer(self, key: Hashable) -> None:
        self.timers.cancel(key)

    def call_threadsafe(self, callback: Callable[[], Any]) -> None:
        """Run ``callback`` on the loop thread soon; callable from any thread."""
        self._inbox.append(callback)
        self.wakeup()

    def after_commit(self, callback: Callable[[], Any]) -> None:
        """Run ``callback`` after this iteration's commit (events, acks, responses)."""
        self._after_commit.append(callback)

    def want_flush(self, writer: Flushable) -> None:
        """Release and flush ``writer``'s held output after this iteration's commit."""
        self._writers[id(writer)] = writer

    def wakeup(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            self._wake_w.send(b"\0")

    def _drain_wakeup(self, mask: int) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            while self._wake_r.recv(4096):
                pass

    def install_signal_wakeup(self) -> None:
        """Make signals interrupt select() (call from the main thread only)."""
        signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)

    # --- running --------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop = True
        self.wakeup()

    @property
    def stopping(self) -> bool:
        return self._stop

    def _timeout(self) -> float:
        if self._ready or self._inbox or self.busy():
            return 0.0
        deadline = self.timers.next_deadline()
        if deadline is None:
            return MAX_SLEEP
        return min(MAX_SLEEP, max(0.0, deadline - self.clock.monotonic()))

    def run_once(self, timeout: float | None = None) -> None:
        """One iteration: poll, timers, ready work, commit, release outputs."""
        wait = self._timeout() if timeout is None else min(timeout, self._timeout())
        events = self.selector.select(wait)
        began = time.perf_counter()
        bulk: list[tuple[selectors.SelectorKey, int]] = []
        for key, mask in events:
            if key.fd in self._bulk:
                bulk.append((key, mask))
            else:
                self._run(key.data, mask)
        if bulk:
            self._serve_bulk(bulk)
        now = self.clock.monotonic()
        while (callback := self.timers.pop_due(now)) is not None:
            self._run(callback)
        while self._inbox:
            self._run(self._inbox.popleft())
        for _ in range(len(self._ready)):  # work queued now waits for the next round
            self._run(self._ready.popleft())
        self.commit_and_release()
        self.observe_iteration(time.perf_counter() - began)

    def _serve_bulk(self, ready: list[tuple[selectors.SelectorKey, int]]) -> None:
        """Serve ready worker connections for at most IO_BUDGET seconds.

        Sockets left over stay readable and come back next time (level-triggered), and
        the next iteration starts where this one stopped: epoll reports ready sockets in a
        stable order, so this is round-robin and no flooding worker starves the others,
        nor the timers, commits and HTTP requests that run between iterations.
        """
        count = len(ready)
        start = self._cursor % count
        stop_at = time.perf_counter() + IO_BUDGET
        served = 0
        for i in range(count):
            key, mask = ready[(start + i) % count]
            self._run(key.data, mask)
            served += 1
            if time.perf_counter() > stop_at:
                break
        self._cursor = start + served

    def commit_and_release(self) -> None:
        """Commit, then release what the iteration produced: events and callbacks, then bytes.

        Callbacks run after a commit may change state again (a subscriber cancels a job);
        that is committed too before any held byte is released. When a commit fails,
        everything the iteration held back (callbacks, events, bytes) is dropped before
        the ``StoreError`` propagates: whatever closes the connections afterwards finds
        only bytes that were committed.
        """
        try:
            self.commit()
            while self._after_commit:
                callbacks, self._after_commit = self._after_commit, []
                for callback in callbacks:
                    self._run(callback)
                self.commit()
        except StoreError:
            self._drop_held()
            raise
        if self._writers:
            writers, self._writers = self._writers, {}
            for writer in writers.values():
                writer.release()
                self._run(writer.flush)

    def _drop_held(self) -> None:
        self._after_commit.clear()
        writers, self._writers = self._writers, {}
        for writer in writers.values():
            writer.drop_held()

    def run_forever(self) -> None:
        self.thread = threading.current_thread()
        self._stop = False
        while not self._stop:
            self.run_once()

    def _run(self, callback: Callable[..., Any], *args: Any) -> None:
        try:
            callback(*args)
        except StoreError:
            raise
        except Exception:
            log.exception("unhandled error in %r; carrying on", callback)

    def close(self) -> None:
        self.remove(self._wake_r)
        self._wake_r.close()
        self._wake_w.close()
        self.selector.close()
