"""Time, injected: a monotonic clock for deadlines, wall time only for stored timestamps.

The loop and every timer read ``clock.monotonic()``; nothing compares wall-clock times
for liveness, so a clock step (NTP, a VM resume) never fires or starves a deadline.
Tests use ``ManualClock`` and jump hours in microseconds instead of sleeping.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards; only differences mean anything."""
        ...

    def wall(self) -> float:
        """Seconds since the epoch (UTC), for timestamps that are stored or shown."""
        ...


class SystemClock:
    """The real clocks."""

    monotonic = staticmethod(time.monotonic)
    wall = staticmethod(time.time)


class ManualClock:
    """A clock that moves only when told to; both readings advance together."""

    def __init__(self, monotonic: float = 1000.0, wall: float = 1_700_000_000.0) -> None:
        self._mono = monotonic
        self._wall = wall

    def monotonic(self) -> float:
        return self._mono

    def wall(self) -> float:
        return self._wall

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"a clock cannot go back ({seconds} s)")
        self._mono += seconds
        self._wall += seconds
