"""The library's own log lines: format, and never an exception when stderr is broken."""

from __future__ import annotations

import os
import re

import pytest

from jobvisor_worker._stderr import say, timestamp


def test_line_format(tmp_path):
    """A line is an ISO-8601 UTC timestamp, the prefix and the message."""
    path = tmp_path / "log"
    with open(path, "wb") as f:
        say("hello there", fd=f.fileno())
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z jobvisor_worker: hello there\n",
        path.read_text(),
    )


@pytest.mark.parametrize(
    ("now", "text"),
    [
        (0.0, "1970-01-01T00:00:00.000Z"),
        (1714564800.123, "2024-05-01T12:00:00.123Z"),
        (1714564800.001, "2024-05-01T12:00:00.001Z"),
        (1714564799.9999, "2024-05-01T11:59:59.999Z"),
    ],
)
def test_timestamp_is_utc_with_exact_milliseconds(now: float, text: str):
    """Milliseconds are truncated from the value itself, without float subtraction error."""
    assert timestamp(now) == text


def test_full_disk_is_swallowed():
    """ENOSPC (/dev/full) does not raise."""
    with open("/dev/full", "wb") as f:
        say("lost", fd=f.fileno())


def test_closed_descriptor_is_swallowed():
    """EBADF does not raise."""
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    say("lost", fd=w)


def test_reader_gone_is_swallowed():
    """EPIPE does not raise (Python ignores SIGPIPE, so it arrives as an error)."""
    r, w = os.pipe()
    os.close(r)
    try:
        say("lost", fd=w)
    finally:
        os.close(w)
