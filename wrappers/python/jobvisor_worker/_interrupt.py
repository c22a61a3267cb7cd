"""A cancel interrupts the job function: ``JobCancelled`` raised in the main thread.

Theory of operation. The cancel arrives on the I/O thread; the job function runs on the
main thread, often blocked in a system call (``time.sleep``, ``socket.recv``, waiting
for a child in ``subprocess.run``). ``_thread.interrupt_main`` only sets a flag that the
interpreter checks between bytecodes, so a blocked call would go on blocking. A real
signal sent to the main thread (``signal.pthread_kill``) makes the kernel end the
blocked call with EINTR; Python then runs the signal's handler before retrying the call
(PEP 475), and a handler that raises ends the call with that exception. So:

* ``Interrupter.armed()`` (on the main thread, around the job function) installs our
  handler for ``INTERRUPT_SIGNAL`` and restores the previous handler when the function
  is done. Handlers can only be installed from the main thread: elsewhere nothing is
  armed and the job polls ``job.cancelled`` as before.
* ``interrupt()`` (the I/O thread, when ``cancel`` arrives) sends the signal to the
  main thread, only while armed (checked under a lock that ``armed`` also takes when it
  disarms, so no signal is sent after the previous handler is back).
* The handler raises ``JobCancelled`` once per job; any other delivery of the signal
  (a stray one from another process) goes to the previous Python handler, if any.

The signal is SIGURG, for the reason the Go runtime uses it for goroutine preemption:
programs practically never use it (out-of-band socket data), and its default action is
to ignore it, so a signal that lands after the previous disposition is back is harmless.
A program that installs its own SIGURG handler while the job function runs takes the
signal away from us: the cancel then only sets ``job.cancelled`` (one line on stderr
says so).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any, Final

from jobvisor_worker._stderr import say
from jobvisor_worker.errors import JobCancelled

INTERRUPT_SIGNAL: Final = getattr(signal, "SIGURG", None)
_CAN_INTERRUPT: Final = INTERRUPT_SIGNAL is not None and hasattr(signal, "pthread_kill")

Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class Interrupter:
    """Turns one cancel into one ``JobCancelled`` in the main thread, while armed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._target: int | None = None  # the main thread's id while armed
        self._previous: Handler = None
        self._requested = False  # a cancel arrived (armed or not)
        self._raised = False  # JobCancelled was raised: never twice per job
        self._reason: str | None = None

    @contextlib.contextmanager
    def armed(self) -> Iterator[bool]:
        """Interrupt the body on cancel; yields whether it can (False off the main thread).

        A cancel that came before the body starts raises ``JobCancelled`` at once (once
        per job, as every interruption).
        """
        if not _CAN_INTERRUPT or threading.current_thread() is not threading.main_thread():
            yield False
            return
        assert INTERRUPT_SIGNAL is not None
        self._previous = signal.signal(INTERRUPT_SIGNAL, self._on_signal)
        try:
            with self._lock:
                self._target = threading.get_ident()
                early = self._requested and not self._raised
            if early:
                self._raise()
            yield True
        finally:
            try:
                self._disarm()
            except JobCancelled:
                # The signal landed as the body ended, before _target was cleared: the
                # handler raised in the middle of disarming. It raises once per job, so
                # this second pass cannot be interrupted by us.
                self._disarm()
                raise

    def _disarm(self) -> None:
        assert INTERRUPT_SIGNAL is not None
        with self._lock:
            self._target = None
        # None: the previous handler was not installed from Python; the default
        # (ignore) is what a C library would have had too.
        previous = signal.SIG_DFL if self._previous is None else self._previous
        signal.signal(INTERRUPT_SIGNAL, previous)

    def interrupt(self, reason: str | None) -> None:
        """Called from the I/O thread when the supervisor sends ``cancel``."""
        with self._lock:
            if self._requested:
                return
            self._requested = True
            self._reason = reason
            if self._target is None:
                return  # not armed (yet): armed() raises at its start
            assert INTERRUPT_SIGNAL is not None
            if signal.getsignal(INTERRUPT_SIGNAL) != self._on_signal:
                say(
                    f"cancel: the job replaced the {INTERRUPT_SIGNAL.name} handler the library "
                    "interrupts it with; the job function must watch job.cancelled"
                )
                return
            signal.pthread_kill(self._target, INTERRUPT_SIGNAL)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Runs on the main thread between two bytecodes: no lock here (the main thread
        # may hold it in armed()), only flags that the I/O thread sets before signalling.
        if self._requested and not self._raised and self._target is not None:
            self._raise()
        previous = self._previous
        if callable(previous):
            previous(signum, frame)

    def _raise(self) -> None:
        self._raised = True
        raise JobCancelled(self._reason)
