"""What the lower layers of the supervisor see of the layers above them.

The supervisor's modules form one direction of dependencies:

    core  ->  recovery  ->  runner  ->  conversation  ->  attempts  ->  channels  ->  loop

Each imports only modules to its right (``tests/supervisor/unit/test_imports.py`` checks
it, TYPE_CHECKING imports included). Where a lower layer must reach the decisions of a
higher one (the conversation records an outcome, the runner frees a slot), it does so
through one of the interfaces below, which the higher layer satisfies structurally,
never by importing it. Upward calls are reports ("this attempt completed"); the layer
above decides what follows, and no layer calls back into a caller still on the stack:
the socket layer reports a closed connection through the loop's ready queue, and what
it reads while draining a dead worker's socket it returns to the caller.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from supervisor.attempts import Attempt
    from supervisor.clock import Clock
    from supervisor.config import Settings
    from supervisor.loop import Loop
    from supervisor.metrics import Counters, Metrics
    from supervisor.procs import ProcessHandle
    from supervisor.records import JobKind, JobRecord
    from supervisor.table import JobTable
    from supervisor.workflows.records import InstanceRecord, InstanceStatus


class Core(Protocol):
    """The supervisor core (``core.Supervisor``) as the runner, conversation and
    recovery see it: shared services, and the decisions about a job."""

    settings: Settings
    clock: Clock
    loop: Loop
    table: JobTable
    counters: Counters
    metrics: Metrics
    kinds: dict[str, JobKind]

    def attempt_completed(self, job: JobRecord, result: Any) -> None: ...
    def attempt_failed(self, job: JobRecord, error: dict[str, Any]) -> None: ...
    def attempt_ended(self, job: JobRecord) -> None: ...
    def progress_changed(self, job: JobRecord) -> None: ...
    def emit(self, name: str, job: JobRecord | None = None, **data: Any) -> None: ...
    def commit(self) -> None: ...


class AttemptControl(Protocol):
    """The runner as the conversation sees it: the live attempts and what can be done
    to their processes and timers."""

    sup: Core
    attempts: dict[str, Attempt]
    detaching: bool

    def log_line(self, job: JobRecord, message: str) -> None: ...
    def arm_watchdog(self, attempt: Attempt) -> None: ...
    def outcome_decided(self, attempt: Attempt) -> None: ...
    def stop(self, attempt: Attempt, reason: str, code: str, *, polite: bool = False) -> None: ...
    def reopen_listener(self, attempt: Attempt) -> None: ...
    def on_exit(self, attempt: Attempt) -> None: ...
    def hand_back(self, attempt: Attempt) -> bool: ...


class ProcessSource(Protocol):
    """Where a job kind's worker processes come from when not from ``procs.spawn``
    (``Runner.sources``, keyed by kind name; e.g. the workflows' warm pool, which
    registers itself there).

    ``start`` gets what a spawn would get: the kind's argv and cwd, the worker's whole
    environment (``JOBVISOR_SOCKET``, ``JOBVISOR_JOB_ID``, ``JOBVISOR_TOKEN``, ...) and the
    job's log file, to which the process must write its stdout and stderr. It returns
    a handle on a process that leads its own session (``ProcessHandle.leads_group``),
    whose pidfd and start time are known: from there on the runner treats it exactly
    like a spawned worker (watch, watchdog, timeout, stop, restart adoption). It may
    finish handing the process its job after the current loop iteration commits; it
    raises ``OSError`` when no process can be had.

    A source may take its processes back to serve further attempts (``release``): when
    an attempt's outcome is committed and acked and the worker then hangs up while still
    alive, the runner offers the process back instead of waiting for it to exit. If the
    source takes it, the runner stops watching it (no pidfd, no group kill) and ends the
    attempt; else the attempt ends as always, when the process exits. A process that
    exits or is stopped (cancel, timeout, silence) is never offered: ``forget`` tells the
    source it is gone (``docs/workflows.md``, "Where code runs").
    """

    def start(
        self, argv: Sequence[str], cwd: str | None, env: Mapping[str, str], log_path: Path
    ) -> ProcessHandle: ...

    def release(self, proc: ProcessHandle) -> bool:
        """Take back ``proc``, alive and done with its attempt; ``False`` (and nothing
        changes) when it is not one of this source's reusable processes. On ``True`` the
        handle is the source's."""
        ...

    def forget(self, proc: ProcessHandle) -> None:
        """``proc`` has exited (or was killed): drop what the source holds for it."""
        ...


class WorkflowService(Protocol):
    """The workflow engine (``supervisor.workflows``) as the HTTP API, the CLI's server side
    and the embedded API see it: ``Supervisor.workflows`` once the engine is attached.

    Every method runs on the loop thread; what it changes is committed by the loop's
    next commit (an HTTP answer leaves after it, like every answer). Errors are the
    ``supervisor.workflows.errors`` classes (each carries its HTTP status).
    """

    def definitions(self) -> list[dict[str, Any]]:
        """Every registered workflow: ``{"name", "start", "timeout", "steps": graph}``."""
        ...

    def start(self, name: str, input: Any) -> InstanceRecord:
        """A new running instance (``UnknownWorkflow``; ``BadRequest`` for an input that
        cannot be stored: the same door as a job's data)."""
        ...

    def get(self, instance_id: str) -> InstanceRecord | None: ...

    def children(self, instance_id: str) -> list[InstanceRecord]:
        """The branch instances of a parallel step of ``instance_id``, oldest first."""
        ...

    def list(
        self,
        *,
        workflow: str | None = None,
        status: InstanceStatus | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[InstanceRecord]:
        """Top-level instances, newest first."""
        ...

    def cancel(self, instance_id: str, reason: str = "cancelled") -> InstanceRecord:
        """Cancel it and stop its running steps' workers (``InstanceNotFound``,
        ``InstanceFinished``)."""
        ...

    def resume(self, instance_id: str) -> InstanceRecord:
        """A failed or cancelled instance continues from the step that did not complete;
        completed steps are not re-run (``InstanceNotFound``, ``InstanceNotResumable``)."""
        ...
