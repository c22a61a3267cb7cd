"""Per-job log files: the worker's stdout/stderr plus the supervisor's notes and the
worker's protocol ``log`` messages, one file per job under ``state_dir/logs``.

The worker writes its output straight into the file (never through a pipe to us, which
would break when the supervisor dies); we append our own lines with ``O_APPEND``, so
both writers' lines land whole. Reads take a byte offset so a client can follow a file
by asking again from where it stopped.

Logs hold whatever jobs print, secrets included: the folder is 0700 and each file 0600
(created so; ``O_CREAT`` modes and ``mkdir`` modes only lose bits to the umask).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from supervisor.privatedir import prepare_private_dir

log = logging.getLogger(__name__)

MAX_READ = 1 << 20


def prepare_dir(log_dir: Path, *, source: str) -> None:
    """Create the logs folder private (0700), or make an existing one of ours private."""
    prepare_private_dir(
        log_dir, key=f"{source}: state_dir", what="the job log folder", tighten=True
    )


def log_path(log_dir: Path, job_id: str) -> Path:
    return log_dir / f"{job_id}.log"


def stamp(wall: float) -> str:
    millis = int(wall * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(wall)) + f".{millis:03d}Z"


def open_log(path: Path) -> int:
    """A descriptor appending to the job's log (created 0600): ours, or the worker's
    stdout and stderr."""
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)


def write(fd: int, wall: float, tag: str, message: str, data: Any = None) -> None:
    """Write one line to an open log; a failure is logged, never raised (logs must not
    stop jobs)."""
    line = f"{stamp(wall)} [{tag}] {message}"
    if data is not None:
        line += " " + json.dumps(data, default=repr, ensure_ascii=False)
    try:
        os.write(fd, (line.replace("\n", "\n    ") + "\n").encode("utf-8", "replace"))
    except OSError as exc:
        log.warning("cannot write a job log line: %s", exc)


def append(path: Path, wall: float, tag: str, message: str, data: Any = None) -> None:
    """Append one line to the job's log at ``path``."""
    try:
        fd = open_log(path)
    except OSError as exc:
        log.warning("cannot open job log %s: %s", path, exc)
        return
    try:
        write(fd, wall, tag, message, data)
    finally:
        os.close(fd)


def read(path: Path, offset: int = 0, limit: int = MAX_READ) -> tuple[bytes, int]:
    """Bytes of the log from ``offset`` (at most ``limit``), and the offset after them."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, offset))
            data = f.read(max(0, min(limit, MAX_READ)))
    except FileNotFoundError:
        return b"", offset
    return data, offset + len(data)
