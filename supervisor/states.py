"""Job and process states, and the one table of which changes are legal.

A job's ``status`` says where the job is in its life; its ``process_state`` says what
the supervisor knows about the worker process of the current attempt. Both change only
through ``JobTable.set_status`` / ``set_process_state``, which consult the tables here
and raise ``IllegalTransition`` naming the job, the state and the target. Tests and
docs/states.md read these same tables.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class JobStatus(StrEnum):
    PENDING = "pending"  # waiting for a concurrency slot, FIFO
    SCHEDULED = "scheduled"  # waiting for run_at (a scheduled job, or a retry's backoff)
    RUNNING = "running"  # an attempt is in progress
    COMPLETED = "completed"
    FAILED = "failed"  # the last attempt failed and no attempts remain
    CANCELLED = "cancelled"


class ProcessState(StrEnum):
    SPAWNING = "spawning"  # process started, no hello yet
    RUNNING = "running"  # connected and welcomed
    RECONNECTING = "reconnecting"  # connection lost, process alive, waiting for a new hello
    ORPHANED = "orphaned"  # adopted after a supervisor restart, waiting for its hello
    EXITED = "exited"  # the attempt's process is gone


TERMINAL: Final = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})
ACTIVE: Final = frozenset({JobStatus.PENDING, JobStatus.SCHEDULED, JobStatus.RUNNING})

# status -> statuses it may move to. A new job enters as PENDING or SCHEDULED.
STATUS_TRANSITIONS: Final[dict[JobStatus, frozenset[JobStatus]]] = {
    JobStatus.SCHEDULED: frozenset({JobStatus.PENDING, JobStatus.CANCELLED}),
    JobStatus.PENDING: frozenset(
        {
            JobStatus.RUNNING,
            JobStatus.CANCELLED,
            JobStatus.FAILED,  # its job kind is no longer configured: no attempt possible
        }
    ),
    JobStatus.RUNNING: frozenset(
        {
            JobStatus.COMPLETED,
            JobStatus.FAILED,
            JobStatus.SCHEDULED,  # a failed attempt with attempts left, after backoff
            JobStatus.CANCELLED,
        }
    ),
    JobStatus.COMPLETED: frozenset(),
    # Final, except that a manual retry (POST /jobs/{id}/retry) queues the job again.
    JobStatus.FAILED: frozenset({JobStatus.PENDING}),
    JobStatus.CANCELLED: frozenset({JobStatus.PENDING}),
}

# process state (None: no process yet) -> process states it may move to.
PROCESS_TRANSITIONS: Final[dict[ProcessState | None, frozenset[ProcessState]]] = {
    None: frozenset({ProcessState.SPAWNING}),
    ProcessState.SPAWNING: frozenset(
        {ProcessState.RUNNING, ProcessState.ORPHANED, ProcessState.EXITED}
    ),
    ProcessState.RUNNING: frozenset(
        {ProcessState.RECONNECTING, ProcessState.ORPHANED, ProcessState.EXITED}
    ),
    ProcessState.RECONNECTING: frozenset(
        {ProcessState.RUNNING, ProcessState.ORPHANED, ProcessState.EXITED}
    ),
    ProcessState.ORPHANED: frozenset(
        {ProcessState.RUNNING, ProcessState.ORPHANED, ProcessState.EXITED}
    ),
    ProcessState.EXITED: frozenset({ProcessState.SPAWNING}),  # the next attempt
}


def status_allowed(old: JobStatus, new: JobStatus) -> bool:
    return new in STATUS_TRANSITIONS[old]


def process_allowed(old: ProcessState | None, new: ProcessState) -> bool:
    return new in PROCESS_TRANSITIONS[old]


def markdown() -> str:
    """The transition tables as Markdown (docs/states.md embeds exactly this text)."""
    lines = ["| status | may become |", "|---|---|"]
    for old, targets in STATUS_TRANSITIONS.items():
        shown = ", ".join(f"`{t}`" for t in sorted(targets)) or "— (final)"
        lines.append(f"| `{old}` | {shown} |")
    lines += ["", "| process state | may become |", "|---|---|"]
    for pold, ptargets in PROCESS_TRANSITIONS.items():
        name = "(none)" if pold is None else f"`{pold}`"
        lines.append(f"| {name} | {', '.join(f'`{t}`' for t in sorted(ptargets))} |")
    return "\n".join(lines) + "\n"
