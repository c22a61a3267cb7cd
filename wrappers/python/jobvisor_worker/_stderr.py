"""The library's own output: timestamped lines on stderr, which is the job's log file.

Each line is written with a single ``os.write`` on file descriptor 2 rather than through
``sys.stderr``: there is no Python-level buffer that could hold a line we failed to write
(a failed flush of ``sys.stderr`` at interpreter exit turns exit status 0 into 120), and
lines from several threads do not interleave. Every error is swallowed: a full disk, a
closed descriptor or a reader that went away must never kill the worker.
"""

from __future__ import annotations

import os
import time
from typing import Final

PREFIX: Final = "jobvisor_worker:"
_STDERR_FD: Final = 2


def timestamp(now: float | None = None) -> str:
    """UTC ISO-8601 with milliseconds, e.g. ``2024-05-01T12:00:00.123Z``."""
    if now is None:
        now = time.time()
    # Split the millisecond count, not the float: now - int(now) carries binary error
    # (1714564800.123 - 1714564800 is 0.12299...), which truncation would show as .122.
    seconds, millis = divmod(int(now * 1000), 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def say(message: str, *, fd: int = _STDERR_FD) -> None:
    """Write ``message`` (one or more lines) to stderr; never raises."""
    try:
        text = f"{timestamp()} {PREFIX} {message}"
        if not text.endswith("\n"):
            text += "\n"
        data = text.encode("utf-8", "backslashreplace")
        while data:
            written = os.write(fd, data)
            if written <= 0:
                break
            data = data[written:]
    except (OSError, ValueError):
        # EPIPE, ENOSPC, EBADF, EIO ...: the log is gone, the job is not.
        pass
