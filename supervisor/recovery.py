"""Surviving a restart (docs/restarts.md): decide, for every attempt a previous
supervisor left running, whether its worker is still out there, and re-attach it or
declare it lost.

A worker is alive when (1) its PID exists *and* started at the stored time (a recycled
PID is somebody else), and (2) it was last heard from less than the workers' give-up
window ago: a worker that reached no supervisor for that long has stopped itself.
Alive workers get their endpoint back (reserved, re-opened on the same path or port),
state ``orphaned``, and the orphan window (``attempts.reconnect_window``) from now to
say hello;
``job.reconnected`` is emitted on that hello. Everything else is ``job.lost``: the
attempt fails and is retried if attempts remain; a process that still exists is
stopped first, so the retry never runs beside it.

Both waits are measured on clocks a wall-clock step cannot move. "Last heard from N s
ago" compares the boot-clock reading stored with each heartbeat (``CLOCK_BOOTTIME``)
with the boot clock now, when both belong to the same boot (``boot_id``); only across
a reboot, or for rows written before boot readings were stored, is it wall time. The
orphan window is a monotonic timer. It fits the workers' own reconnect schedule: a
disconnected worker tries again at most ``worker_reconnect_interval`` apart (the
schedule the supervisor hands it in ``welcome``), so the window is at least two such
intervals (one try may land just before our listener is back, the next must not be
missed) plus a margin for the start-up work between arming the window and serving, and
never less than two heartbeat timeouts. A freshly spawned worker gets the same window
for its first hello (``Runner``'s watchdog).

Two rarer cases are handled too. A job marked running whose PID was never committed
(the supervisor died between committing the start and committing the spawn) is looked
up by its JOBVISOR_JOB_ID environment variable: found, it is adopted like any other;
not found, it never started and is lost. A job whose outcome was committed but whose
worker may never have got the ack is re-opened as well, so the worker can resend its
outcome, get its ack and exit.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import TYPE_CHECKING

import psutil

from supervisor import plainjobs
from supervisor.attempts import Attempt, reconnect_window
from supervisor.endpoints import clean_stale_sockets
from supervisor.procs import ProcessHandle
from supervisor.records import JobKind, JobRecord
from supervisor.states import JobStatus, ProcessState

if TYPE_CHECKING:
    from supervisor.clock import Clock
    from supervisor.runner import Runner

log = logging.getLogger(__name__)


def recover(runner: Runner, running: list[JobRecord], finished: list[JobRecord]) -> None:
    adopt = _Adopter()
    for job in running:
        _recover_running(runner, job, adopt)
    for job in finished:
        _recover_finished(runner, job, adopt)
    plainjobs.sweep(runner.settings.state_dir, {job.id for job in running} | set(runner.attempts))
    if runner.settings.transport == "unix":
        keep = [a.endpoint.path for a in runner.attempts.values() if a.endpoint and a.endpoint.path]
        for path in clean_stale_sockets(runner.settings.job_socket_dir, keep):
            log.info("removed stale socket %s", path)


def _stub_kind(runner: Runner, job: JobRecord) -> JobKind:
    return JobKind(
        job.name, command="", heartbeat_timeout=runner.settings.default_heartbeat_timeout
    )


class _Adopter:
    """``ProcessHandle.adopt``, asked once per (pid, start time): one process may serve
    many jobs (a load generator), and each check reads /proc and opens a pidfd."""

    def __init__(self) -> None:
        self._seen: dict[tuple[int, float | None], ProcessHandle | None] = {}

    def __call__(self, pid: int, start: float | None) -> ProcessHandle | None:
        key = (pid, start)
        if key not in self._seen:
            self._seen[key] = ProcessHandle.adopt(pid, start)
        return self._seen[key]


def _recover_running(runner: Runner, job: JobRecord, adopt: _Adopter) -> None:
    sup = runner.sup
    kind = runner.sup.kinds.get(job.name)
    proc: ProcessHandle | None = None
    if job.pid is not None:
        proc = adopt(job.pid, job.pid_start_time)
    else:
        proc = find_worker(job.id)
        if proc is not None:
            runner.table.update(job, pid=proc.pid, pid_start_time=proc.start_time)
    age = silence(sup.clock, job)
    window = runner.give_up_window()
    has_endpoint = job.socket_path is not None or job.tcp_port is not None
    # A plain job's attempt has neither endpoint nor token (supervisor.plainjobs).
    plain = job.token_hash is None and not has_endpoint
    reason: str | None = None
    if kind is None:
        reason = f"no job kind named {job.name!r} is configured any more"
    elif kind.plain and not plain:
        reason = 'its job kind was changed to protocol = "none" while it ran'
    elif not kind.plain and (job.token_hash is None or not has_endpoint):
        reason = "the stored attempt has no endpoint or token"
    elif job.pid is not None and proc is None:
        reason = f"worker process {job.pid} is gone"
    elif proc is None:
        reason = "its worker never started (the supervisor stopped while starting it)"
    elif age >= window and not plain:  # a plain program is never heard from: it lives
        reason = f"last heard from {age:.0f} s ago, beyond the workers' {window:g} s give-up window"
    if plain and kind is not None and kind.plain:
        if reason is None:
            assert proc is not None
            _readopt_plain(runner, runner.adopt(job, kind, proc))
            return
        # It ended while no supervisor ran (its PID perhaps never committed: a wrapper
        # that wrote its exit file did start).
        state_dir = runner.settings.state_dir
        if proc is None and (
            job.pid is not None or plainjobs.has_report(state_dir, job.id, job.attempts)
        ):
            _plain_ended(runner, job)
            return
    if reason is None:
        assert kind is not None and proc is not None
        attempt = runner.adopt(job, kind, proc)
        if attempt.listener is not None:
            runner.table.set_process_state(job, ProcessState.ORPHANED)
            _arm_orphan_window(runner, attempt)
            runner.arm_timeout(attempt)  # the job's timeout counts from its start, not ours
            runner.log_line(
                job,
                f"supervisor restarted: waiting for worker {job.pid} on {attempt.endpoint}",
            )
            return
        reason = f"cannot re-open {attempt.endpoint} for the worker"
        _lose(runner, attempt, reason)
        return
    _declare_lost(runner, job, kind, proc, reason)


def _readopt_plain(runner: Runner, attempt: Attempt) -> None:
    """A plain program's wrapper is alive: it carries on, and its ``exit.json`` will say
    how the program ended; nothing to wait for but its exit, no window to lose it in."""
    job = attempt.job
    if job.process_state is not ProcessState.RUNNING:  # found by its environment
        runner.table.set_process_state(job, ProcessState.RUNNING)
    runner.arm_timeout(attempt)  # the job's timeout counts from its start, not ours
    runner.log_line(job, f"supervisor restarted: re-adopted the program's wrapper {job.pid}")


def _plain_ended(runner: Runner, job: JobRecord) -> None:
    """A plain program's wrapper exited while no supervisor ran: its ``exit.json`` still
    says how the program ended (or, if the wrapper was killed, that nobody knows)."""
    if job.process_state is not ProcessState.EXITED:
        runner.table.set_process_state(job, ProcessState.EXITED)
    pid = "" if job.pid is None else f" {job.pid}"
    runner.log_line(job, f"supervisor restarted: the program's wrapper{pid} has exited")
    if runner.plain_outcome(job, job.attempts, None) == "failed":
        # Killed itself, it may have left the program running: a retry must not run
        # beside it (for a wrapper we watch, the runner's group kill does this).
        killed = plainjobs.stop_leftovers(job)
        if killed:
            runner.log_line(job, f"stopped {killed} process(es) the program left running")


def _declare_lost(
    runner: Runner, job: JobRecord, kind: JobKind | None, proc: ProcessHandle | None, reason: str
) -> None:
    if proc is not None:  # it exists but is not coming back
        attempt = runner.adopt(job, kind or _stub_kind(runner, job), proc)
        _lose(runner, attempt, reason)
        return
    _announce_lost(runner, job, reason)
    if job.process_state is not ProcessState.EXITED:
        runner.table.set_process_state(job, ProcessState.EXITED)
    runner.sup.attempt_failed(job, {"message": f"worker lost: {reason}", "reason": "lost"})


def _lose(runner: Runner, attempt: Attempt, reason: str) -> None:
    """Lost, but its process exists: stop it; its exit fails the attempt."""
    _announce_lost(runner, attempt.job, reason)
    runner.stop(attempt, f"worker lost: {reason}", "lost")


def _announce_lost(runner: Runner, job: JobRecord, reason: str) -> None:
    runner.sup.counters.lost += 1
    runner.sup.emit("job.lost", job, reason=reason)
    runner.log_line(job, f"worker lost: {reason}")


def silence(clock: Clock, job: JobRecord) -> float:
    """Seconds since the job's worker was last heard from (see the module docstring)."""
    if (
        job.heartbeat_boottime is not None
        and job.boot_id is not None
        and job.boot_id == clock.boot_id
    ):
        return clock.boottime() - job.heartbeat_boottime
    seen = job.last_heartbeat or job.started_at or job.created_at
    return clock.wall() - seen


def _arm_orphan_window(runner: Runner, attempt: Attempt) -> None:
    window = reconnect_window(
        attempt.kind.heartbeat_timeout, runner.settings.worker_reconnect_interval
    )

    def expired() -> None:
        if runner.attempts.get(attempt.job_id) is not attempt or attempt.conn is not None:
            return
        if attempt.outcome is None and attempt.job.status is JobStatus.RUNNING:
            _lose(runner, attempt, f"did not reconnect within {window:g} s of the restart")
        else:
            runner.stop(attempt, "finished, and did not come back for its ack", "linger")

    runner.loop.call_later(("orphan", attempt.job_id), window, expired)


def _recover_finished(runner: Runner, job: JobRecord, adopt: _Adopter) -> None:
    """A finished job whose worker may still wait for its ack (see module docstring)."""
    if job.process_state in (None, ProcessState.EXITED):
        return
    proc = adopt(job.pid, job.pid_start_time) if job.pid is not None else None
    if proc is None:
        runner.table.set_process_state(job, ProcessState.EXITED)
        return
    attempt = runner.adopt(job, runner.sup.kinds.get(job.name) or _stub_kind(runner, job), proc)
    attempt.outcome = job.status.value
    # No listener: nothing will come back for an ack (a plain program never does).
    if job.status is JobStatus.CANCELLED or attempt.listener is None:
        runner.stop(attempt, f"job is {job.status}", "linger")
    else:
        runner.table.set_process_state(job, ProcessState.ORPHANED)
        _arm_orphan_window(runner, attempt)


def find_worker(job_id: str) -> ProcessHandle | None:
    """The process group leader whose environment names ``job_id``, if any."""
    uid = os.getuid()
    for process in psutil.process_iter(["uids"]):
        with contextlib.suppress(psutil.Error, OSError):
            uids = process.info.get("uids")
            if uids is not None and uids.real != uid:
                continue
            if process.environ().get("JOBVISOR_JOB_ID") != job_id:
                continue
            if os.getpgid(process.pid) != process.pid:
                continue
            return ProcessHandle.adopt(process.pid, process.create_time())
    return None
