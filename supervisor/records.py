"""What the supervisor persists about a job, and how a job kind is defined.

``JobRecord`` is exactly the row a store keeps (docs/persistence.md); everything that only makes
sense while this supervisor process lives (sockets, timers, process handles) sits in
``live.Attempt`` instead, so a record can always be written and read back whole.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Final

from supervisor.states import ACTIVE, JobStatus, ProcessState

DEFAULT_HEARTBEAT_TIMEOUT: Final = 30.0
DEFAULT_MAX_ATTEMPTS: Final = 3


def new_job_id() -> str:
    """80 random bits as 20 hex digits: short enough to type, never guessed."""
    return secrets.token_hex(10)


@dataclass(slots=True, eq=False)  # identity, not field-by-field comparison
class JobRecord:
    id: str
    name: str
    data: Any
    status: JobStatus
    seq: int  # FIFO position among pending jobs (persisted so order survives restarts)
    created_at: float
    node: str
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    attempts: int = 0  # attempts started so far
    process_state: ProcessState | None = None
    pid: int | None = None
    pid_start_time: float | None = None  # psutil create_time: tells a recycled PID apart
    socket_path: str | None = None
    tcp_port: int | None = None
    token_hash: str | None = None  # sha256 of the current attempt's token, never the token
    last_heartbeat: float | None = None  # wall time of the last message from the worker
    # The same instant on the machine's boot clock, and that boot's id: "last heard from
    # N s ago" across a restart is judged on these, immune to wall-clock steps.
    heartbeat_boottime: float | None = None
    boot_id: str | None = None
    progress: float | None = None
    progress_message: str | None = None
    progress_data: Any = None
    result: Any = None
    error: dict[str, Any] | None = None  # {"message", "stack"?, "reason", "attempt"}
    run_at: float | None = None  # when a scheduled job (or a retry) becomes pending
    started_at: float | None = None  # start of the current (or last) attempt
    finished_at: float | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def copy(self) -> JobRecord:
        return replace(self)


RECORD_FIELDS: Final = tuple(f.name for f in fields(JobRecord))


@dataclass(frozen=True, slots=True)
class JobKind:
    """An external job kind: ``[jobs.NAME]`` in jobvisor.toml, or registered from Python."""

    name: str
    command: str
    args: tuple[str, ...] = ()
    cwd: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT
    timeout: float | None = None
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    concurrency: int | None = None
    retry_delay: float = 1.0  # backoff before the 2nd attempt
    retry_backoff: float = 2.0  # multiplier per further attempt
    retry_max_delay: float = 300.0
    # "jobvisor": the worker speaks the protocol; "none": a plain program, whose outcome
    # is its exit (supervisor.plainjobs, docs/worker-plain.md).
    protocol: str = "jobvisor"

    @property
    def plain(self) -> bool:
        return self.protocol == "none"

    @property
    def heartbeat_interval(self) -> float:
        """What workers are told: three beats per timeout, at most one every 5 s."""
        return min(5.0, self.heartbeat_timeout / 3)

    def backoff(self, failed_attempt: int) -> float:
        """Delay before the attempt after ``failed_attempt`` (1-based)."""
        delay = self.retry_delay * self.retry_backoff ** (failed_attempt - 1)
        return float(min(delay, self.retry_max_delay))
