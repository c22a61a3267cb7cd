"""What a worker keeps for its supervisor while it cannot (or has not yet) sent it.

Bounded by design, because a supervisor may be away for a minute while the job runs on:

* progress: only the latest. A newer progress replaces an older unsent one, and the
  latest is sent again after every reconnect (a restarted supervisor batches progress
  writes and may have lost the last one).
* logs: at most ``max_logs`` unsent, oldest dropped first; the drops are counted so that
  the session can report them as one ``warn`` log once it can send again. A log handed
  to the transport is gone from here: logs are delivered at most once.
* the outcome (``completed``/``failed``): kept until acked, resent after every reconnect.

Everything is stored as encoded frames: encoding happens in the caller's thread, where a
value that cannot be encoded raises at the call that passed it, and a replay costs nothing.
"""

from __future__ import annotations

from collections import deque


class Outbox:
    __slots__ = (
        "_dropped",
        "_logs",
        "_outcome",
        "_outcome_pending",
        "_progress",
        "_progress_pending",
        "acked",
        "max_logs",
        "outcome_kind",
        "total_dropped",
    )

    def __init__(self, max_logs: int) -> None:
        self.max_logs = max_logs
        self._progress: bytes | None = None
        self._progress_pending = False
        self._logs: deque[bytes] = deque()
        self._dropped = 0
        self.total_dropped = 0
        self._outcome: bytes | None = None
        self._outcome_pending = False
        self.outcome_kind: str | None = None
        self.acked = False

    @property
    def pending(self) -> bool:
        """True when ``take`` would return something."""
        return bool(self._progress_pending or self._logs or self._outcome_pending)

    @property
    def buffered_logs(self) -> int:
        return len(self._logs)

    def put_progress(self, frame: bytes) -> None:
        self._progress = frame
        self._progress_pending = True

    def put_log(self, frame: bytes) -> None:
        logs = self._logs
        if len(logs) >= self.max_logs:
            logs.popleft()
            self._dropped += 1
            self.total_dropped += 1
        logs.append(frame)

    def put_outcome(self, kind: str, frame: bytes) -> None:
        self.outcome_kind = kind
        self._outcome = frame
        self._outcome_pending = True

    def ack(self, kind: str) -> bool:
        """Record an ack; False when it does not match our outcome (then it is ignored)."""
        if self._outcome is None or kind != self.outcome_kind:
            return False
        self.acked = True
        self._outcome_pending = False
        return True

    def rewind(self) -> None:
        """A new connection: the latest progress and an unacked outcome go out again."""
        self._progress_pending = self._progress is not None
        self._outcome_pending = self._outcome is not None and not self.acked

    def take_dropped(self) -> int:
        """How many logs were dropped since the last call (to be reported once)."""
        dropped, self._dropped = self._dropped, 0
        return dropped

    def take(self, out: list[bytes]) -> None:
        """Append every pending frame to ``out``: progress, logs oldest first, outcome."""
        if self._progress_pending and self._progress is not None:
            out.append(self._progress)
        self._progress_pending = False
        if self._logs:
            out.extend(self._logs)
            self._logs.clear()
        if self._outcome_pending and self._outcome is not None:
            out.append(self._outcome)
        self._outcome_pending = False
