"""The live part of an attempt: what exists only while this supervisor process runs.

An ``Attempt`` lives from the moment a job's worker is spawned (or adopted after a
restart) until its process is confirmed gone; then its endpoint is released. It may
outlive the job's active life: after a committed outcome the worker is still there
waiting for its ack, or being stopped after a cancel.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from supervisor.endpoints import Endpoint
from supervisor.records import JobKind, JobRecord

if TYPE_CHECKING:
    from supervisor.channels import JobListener, WorkerConn
    from supervisor.procs import ProcessHandle


@dataclass(slots=True, eq=False)
class Attempt:
    job: JobRecord
    kind: JobKind
    number: int
    endpoint: Endpoint | None  # None for a plain job: its program never connects
    token_hash: str  # "" for a plain job
    proc: ProcessHandle | None = None  # None only until the worker is spawned
    listener: JobListener[Attempt] | None = None
    conn: WorkerConn[Attempt] | None = None  # the welcomed connection, if any
    last_seen: float = 0.0  # monotonic time of the last message from the worker
    stale: bool = False  # job.stale was emitted for the current silence
    outcome: str | None = None  # "completed" | "failed" | "cancelled" once committed
    kill_reason: str | None = None  # why we are stopping it (first reason wins)
    kill_code: str = ""  # machine-readable reason: timeout, stale, cancelled, lost, linger
    greeted: bool = False  # its worker has said hello (at least once)

    @property
    def job_id(self) -> str:
        return self.job.id

    @property
    def stopping(self) -> bool:
        return self.kill_reason is not None


# Seconds added to two reconnect intervals: start-up work (recovering many jobs, the first
# commit) can separate the arming of a window from the moment we serve.
RECONNECT_MARGIN = 1.0


def reconnect_window(heartbeat_timeout: float, reconnect_interval: float) -> float:
    """How long a worker that is not connected may take to say hello before it is given
    up: a worker starting, or one whose supervisor restarted (docs/restarts.md).

    It connects on the workers' own schedule: quick tries at first, then at most
    ``reconnect_interval`` apart. One try may land just before our listener is ready,
    so two intervals, plus the margin; never less than two heartbeat timeouts, the
    silence that stops a connected worker.
    """
    return max(2 * heartbeat_timeout, 2 * reconnect_interval + RECONNECT_MARGIN)


def hash_token(token: str) -> str:
    """What is stored of an attempt's token: its SHA-256, never the token itself."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
