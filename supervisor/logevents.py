"""How many of a worker's log lines become ``job.external.log`` events: a bounded rate per job.

Every line a worker logs goes to its job's log file; the event for it is what streams to
subscribers and every ``GET /events`` client. A worker that logs in a tight loop must
not turn into a flood of events (each is rendered, kept in the replay window and written
to every stream), so each job may send ``rate`` log events per one-second window. The
lines past that are counted, not sent, and the conversation reports the count in one
note event when the window ends, or before the outcome the worker reports (so the note
never follows it): ``level`` ``"warning"``, ``data`` ``{"dropped": N}``.

Time comes from the caller (the loop's monotonic clock), so tests need no sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass

WINDOW = 1.0
_MAX_KEYS = 4096  # jobs with a window open; more are pruned of finished windows


@dataclass(slots=True)
class _Window:
    start: float
    sent: int = 0
    dropped: int = 0


class LogEventGate:
    __slots__ = ("_rate", "_windows")

    def __init__(self, rate: int) -> None:
        self._rate = rate
        self._windows: dict[str, _Window] = {}

    @property
    def rate(self) -> int:
        return self._rate

    def admit(self, job_id: str, now: float) -> bool:
        """Whether this log line of ``job_id`` may become an event; counts it if not."""
        window = self._windows.get(job_id)
        if window is None or now - window.start >= WINDOW:
            if window is not None and window.dropped:
                # The note for the last window is still due: count this line there.
                window.dropped += 1
                return False
            if len(self._windows) >= _MAX_KEYS:
                self._prune(now)
            window = self._windows[job_id] = _Window(now)
        if window.sent < self._rate:
            window.sent += 1
            return True
        window.dropped += 1
        return False

    def window_end(self, job_id: str) -> float | None:
        """When the window that is dropping ``job_id``'s lines ends (``None``: none is)."""
        window = self._windows.get(job_id)
        return None if window is None or not window.dropped else window.start + WINDOW

    def take_dropped(self, job_id: str) -> int:
        """How many lines were held back since the last note; starts a fresh window."""
        window = self._windows.pop(job_id, None)
        return 0 if window is None else window.dropped

    def _prune(self, now: float) -> None:
        for job_id in [
            j for j, w in self._windows.items() if not w.dropped and now - w.start >= WINDOW
        ]:
            del self._windows[job_id]
