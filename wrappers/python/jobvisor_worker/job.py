"""``Job``: what a job function sees, and ``connect``, which makes one.

Every method may be called from any thread. Reporting methods (``progress``, the log
levels) queue into the sans-IO ``Session`` under one lock and wake the I/O thread; when
nothing was written for a while they write what is queued themselves, non-blocking
(``Transport.nudge``); they never wait for the network. ``complete`` and ``fail`` wait
until the supervisor acks the outcome, because only then is it durable
(docs/protocol.md, "Outcome and ack"): a worker that exits earlier could lose its result
to a supervisor restart.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING, Any

from jobvisor_worker._interrupt import Interrupter
from jobvisor_worker._stderr import say
from jobvisor_worker.errors import JobClosed, WorkerError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Unpack

    from jobvisor_worker._events import Event
    from jobvisor_worker._options import ConnectOptions, Options

    CancelCallback = Callable[[], object]


def connect(**options: Unpack[ConnectOptions]) -> Job:
    """Connect to the supervisor named by the environment; returns once welcomed.

    Retries like a reconnect does. Does not return if the supervisor refuses the job
    (exit 77) or cannot be reached for the whole give-up window (exit 75).
    """
    from jobvisor_worker._options import resolve_options  # noqa: PLC0415 - see Job

    job = Job(resolve_options(options))
    job._open()
    return job


class Job:
    """A running job, connected to its supervisor. Made by ``connect`` or ``run_job``."""

    def __init__(self, options: Options) -> None:
        # The wire layer (the protocol package, the handshake's hmac) loads here, at the
        # first connect, not at ``import jobvisor_worker`` (docs/worker-python.md,
        # "Start-up cost").
        from jobvisor_worker._session import Session  # noqa: PLC0415
        from jobvisor_worker._transport import Transport  # noqa: PLC0415

        self._options = options
        self._cond = threading.Condition()
        self._session = Session(
            options.job_id,
            options.token,
            heartbeat_interval=options.heartbeat_interval,
            heartbeat_interval_fixed=options.heartbeat_interval_fixed,
            max_buffered_logs=options.max_buffered_logs,
            pid=options.pid,
        )
        self._transport = Transport(self._session, options, self._cond, self._handle_event)
        self._closed = False
        self._name = ""
        self._data: Any = None
        self._attempt = 0
        self._cancel_callbacks: list[CancelCallback] = []
        self._interrupter = Interrupter()
        self.cancel_event = threading.Event()
        """Set when the supervisor asked the job to stop."""

    # --- identity (from the first welcome) ----------------------------------------------

    @property
    def id(self) -> str:
        return self._options.job_id

    @property
    def name(self) -> str:
        return self._name

    @property
    def data(self) -> Any:
        """The job's payload, as submitted."""
        return self._data

    @property
    def attempt(self) -> int:
        """1 for the first run, 2 for the first retry, ..."""
        return self._attempt

    @property
    def outcome(self) -> str | None:
        """``"completed"`` or ``"failed"`` once reported, else ``None``."""
        with self._cond:
            return self._session.outcome

    # --- reporting --------------------------------------------------------------------

    def progress(self, percent: float, message: str | None = None, **data: Any) -> None:
        """Report progress (0..100); only the latest unsent report is kept."""
        with self._cond:
            queued = not self._closed and self._session.progress(percent, message, data)
        if queued:
            self._transport.nudge()

    def log(self, level: str, message: str, **data: Any) -> None:
        """Send a log line at ``level`` (debug, info, warn, error)."""
        with self._cond:
            queued = not self._closed and self._session.log(level, message, data)
        if queued:
            self._transport.nudge()

    def debug(self, message: str, **data: Any) -> None:
        self.log("debug", message, **data)

    def info(self, message: str, **data: Any) -> None:
        self.log("info", message, **data)

    def warn(self, message: str, **data: Any) -> None:
        self.log("warn", message, **data)

    def error(self, message: str, **data: Any) -> None:
        self.log("error", message, **data)

    def complete(self, result: Any = None, *, timeout: float | None = None) -> None:
        """Report success and block until the supervisor has stored it (its ack)."""
        with self._cond:
            self._check_open()
            self._session.complete(result)
        self._wait_for_ack(timeout)

    def fail(self, error: str, stack: str | None = None, *, timeout: float | None = None) -> None:
        """Report failure and block until the supervisor has stored it (its ack)."""
        with self._cond:
            self._check_open()
            self._session.fail(error, stack)
        self._wait_for_ack(timeout)

    def _check_open(self) -> None:
        if self._closed or self._transport.stopped:
            raise JobClosed("the job's connection is closed")

    def _wait_for_ack(self, timeout: float | None) -> None:
        self._transport.wake()
        session = self._session
        with self._cond:
            done = self._cond.wait_for(
                lambda: session.outcome_acked or self._closed or self._transport.stopped,
                timeout,
            )
            if not done:
                raise TimeoutError(f"the supervisor did not ack {session.outcome} in {timeout} s")
            if not session.outcome_acked:
                raise JobClosed(f"the job was closed before {session.outcome} was acked")

    # --- cancellation -----------------------------------------------------------------

    @property
    def cancelled(self) -> bool:
        """True once the supervisor asked the job to stop."""
        return self.cancel_event.is_set()

    @property
    def cancel_reason(self) -> str | None:
        with self._cond:
            return self._session.cancel_reason

    def on_cancel(self, callback: CancelCallback) -> None:
        """Call ``callback()`` when the supervisor cancels (at once if it already did).

        Callbacks run on a separate thread so that a slow one cannot delay heartbeats;
        an exception in one is written to stderr and the next one still runs.
        """
        with self._cond:
            already = self.cancel_event.is_set()
            if not already:
                self._cancel_callbacks.append(callback)
        if already:
            _run_callbacks([callback])

    @contextlib.contextmanager
    def interruptible(self) -> Iterator[bool]:
        """Raise ``JobCancelled`` in the body when the supervisor cancels the job.

        The body runs on the main thread; a cancel interrupts it wherever it is, blocking
        calls included (``time.sleep``, ``socket.recv``, ``subprocess.run``), once. A cancel
        that came before the body starts raises at once. Yields False (nothing will be
        interrupted; watch ``job.cancelled``) off the main thread. ``run_job`` wraps the
        job function in this unless ``interrupt_on_cancel=False``.
        """
        with self._interrupter.armed() as armed:
            yield armed

    # --- lifecycle --------------------------------------------------------------------

    def close(self) -> None:
        """Hand queued messages over for up to a second, then disconnect. Idempotent."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        self._transport.close()

    def __enter__(self) -> Job:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Job {self.id} {self._name!r} attempt={self._attempt}>"

    def _open(self) -> None:
        self._transport.start()
        session = self._session
        with self._cond:
            self._cond.wait_for(lambda: session.welcome is not None or self._transport.stopped)
            if session.welcome is None:
                raise WorkerError("the connection to the supervisor stopped before a welcome")

    def _handle_event(self, event: Event) -> None:
        """Called by the I/O thread with ``_cond`` held."""
        from jobvisor_worker._events import (  # noqa: PLC0415 - loaded by the session
            Acked,
            CancelRequested,
            Welcomed,
        )

        if isinstance(event, Welcomed):
            if event.first:
                welcome = event.welcome
                self._name = welcome.name
                self._data = welcome.data
                self._attempt = welcome.attempt
            self._cond.notify_all()
        elif isinstance(event, Acked):
            self._cond.notify_all()
        elif isinstance(event, CancelRequested) and not self.cancel_event.is_set():
            self.cancel_event.set()
            self._interrupter.interrupt(event.reason)
            callbacks, self._cancel_callbacks = self._cancel_callbacks, []
            if callbacks:
                threading.Thread(
                    target=_run_callbacks, args=(callbacks,), name="jobvisor-cancel", daemon=True
                ).start()


def _run_callbacks(callbacks: list[CancelCallback]) -> None:
    import traceback  # noqa: PLC0415 - only for a failing callback

    for callback in callbacks:
        try:
            callback()
        except Exception as exc:
            say(f"on_cancel callback {callback!r} raised {exc!r}\n{traceback.format_exc()}")
