"""Rate-limited log lines: a fault that repeats (accept at the fd limit, a worker that
reconnects in a tight loop) must not turn into megabytes of identical log lines.

``LogThrottle`` lets ``burst`` lines per key through in each ``interval`` and counts the
rest; the next line it lets through says how many were suppressed. Time comes from the
caller (the loop's monotonic clock), so tests need no sleeping.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import Any


class LogThrottle:
    __slots__ = ("_burst", "_interval", "_keys", "_logger")

    def __init__(self, logger: logging.Logger, *, burst: int = 5, interval: float = 60.0) -> None:
        self._logger = logger
        self._burst = burst
        self._interval = interval
        # key -> [window start, lines let through in this window, lines suppressed]
        self._keys: dict[Hashable, list[float]] = {}

    def allow(self, key: Hashable, now: float) -> int | None:
        """``None`` to stay silent, else how many lines of ``key`` were suppressed before."""
        state = self._keys.get(key)
        if state is None or now - state[0] >= self._interval:
            suppressed = 0 if state is None else int(state[2])
            self._keys[key] = [now, 1.0, 0.0]
            if len(self._keys) > 4096:  # keys are few in practice; never grow without bound
                self._forget_old(now)
            return suppressed
        if state[1] < self._burst:
            state[1] += 1
            suppressed, state[2] = int(state[2]), 0.0
            return suppressed
        state[2] += 1
        return None

    def log(self, level: int, key: Hashable, now: float, message: str, *args: Any) -> None:
        """Log ``message % args`` unless ``key`` is over its budget for now."""
        suppressed = self.allow(key, now)
        if suppressed is None:
            return
        if suppressed:
            message += " (%d similar lines suppressed)"
            args = (*args, suppressed)
        self._logger.log(level, message, *args)

    def _forget_old(self, now: float) -> None:
        for key in [k for k, s in self._keys.items() if now - s[0] >= self._interval]:
            del self._keys[key]
