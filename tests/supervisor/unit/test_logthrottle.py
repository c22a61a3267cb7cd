"""LogThrottle: a repeating fault logs a few lines, then one summary per interval."""

from __future__ import annotations

import logging

import pytest

from supervisor.logthrottle import LogThrottle


def test_burst_passes_then_lines_are_counted_and_reported(caplog: pytest.LogCaptureFixture) -> None:
    """Past the burst, lines are suppressed; the first line of the next window says how many."""
    throttle = LogThrottle(logging.getLogger("t"), burst=2, interval=10.0)
    with caplog.at_level(logging.INFO, logger="t"):
        for i in range(50):
            throttle.log(logging.INFO, "accept", 100.0 + i * 0.01, "accept failed %d", i)
        throttle.log(logging.INFO, "accept", 111.0, "accept failed %d", 99)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "accept failed 0",
        "accept failed 1",
        "accept failed 99 (48 similar lines suppressed)",
    ]


def test_keys_are_throttled_separately() -> None:
    """One noisy key does not silence another."""
    throttle = LogThrottle(logging.getLogger("t"), burst=1, interval=10.0)
    assert throttle.allow("a", 0.0) == 0
    assert throttle.allow("a", 0.1) is None
    assert throttle.allow("b", 0.2) == 0
