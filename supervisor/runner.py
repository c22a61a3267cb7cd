"""The runner: each attempt's worker process, endpoint and timers, from spawn to exit.

Theory of operation. ``start`` takes a batch of pending jobs and, for each, reserves an
endpoint, opens its listener, mints a token and marks the job running *and commits*;
only then does it spawn the workers and record their PIDs. A supervisor killed between
the two steps therefore finds, on restart, a running job with a known endpoint and
token: it waits for that worker to say hello instead of starting a second one.

An attempt ends in exactly one place, ``_end``, when its process is confirmed gone
(pidfd readable, or the process table says so). Before that, the attempt's outcome may
already be decided: a ``completed``/``failed`` message (committed, then acked), a cancel,
or a kill we started (timeout, two heartbeat timeouts of silence, lost after a restart).
If the process exits with no outcome, its exit decides: code, signal, or "exited
without reporting a result". The job's slot stays busy until ``_end``, so a retry never
runs beside the previous attempt's process.

Liveness uses the monotonic clock only: every batch of messages moves ``last_seen``;
one watchdog timer per attempt re-arms itself from ``last_seen`` when it fires
(``job.stale`` at one ``heartbeat_timeout`` of silence, kill at two). Until its first
hello a worker has the reconnect window instead (``attempts.reconnect_window``): it
connects on the workers' reconnect schedule, and may still be starting.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable, Container
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from protocol import (
    Cancel,
)
from supervisor import faults, joblogs, plainjobs
from supervisor.attempts import Attempt, hash_token, reconnect_window
from supervisor.channels import JobListener
from supervisor.conversation import Conversation
from supervisor.endpoints import (
    Endpoint,
    Reservations,
    listen_free_tcp,
    listen_tcp,
    listen_unix,
    prepare_socket_dir,
    remove_socket_file,
    unix_endpoint,
)
from supervisor.errors import ReservationError
from supervisor.procs import ProcessHandle, describe_exit, spawn
from supervisor.records import JobKind, JobRecord
from supervisor.states import JobStatus, ProcessState

if TYPE_CHECKING:
    from supervisor.ports import Core, ProcessSource

Recover = Callable[["Runner", list[JobRecord], list[JobRecord]], None]

log = logging.getLogger(__name__)

# How often to look at a process we cannot watch with a pidfd.
POLL_INTERVAL = 0.5


@dataclass(slots=True, eq=False)
class _Watch:
    """One watched process and the attempts it serves."""

    handle: ProcessHandle
    attempts: set[Attempt]


class Runner:
    def __init__(self, sup: Core, recover: Recover) -> None:
        self.sup = sup
        self._recover = recover  # recovery.recover: the restart policy sits above us
        self.counters = sup.counters
        self.loop = sup.loop
        self.table = sup.table
        self.settings = sup.settings
        self.attempts: dict[str, Attempt] = {}
        self._watches: dict[int, _Watch] = {}  # by PID
        self.reservations = Reservations()
        self._busy: Counter[str] = Counter()
        self.detaching = False  # a graceful stop: connections close, nothing changes
        self.conversation = Conversation(self)
        # Job kinds whose processes come from elsewhere than ``spawn`` (a warm pool
        # registers itself here): by kind name (``ports.ProcessSource``).
        self.sources: dict[str, ProcessSource] = {}

    # --- bookkeeping ----------------------------------------------------------------------

    def prepare(self) -> None:
        self.settings.log_dir.mkdir(parents=True, exist_ok=True)
        if self.settings.transport == "unix":
            assert self.settings.socket_dir is not None
            prepare_socket_dir(self.settings.socket_dir)
            prepare_socket_dir(self.settings.job_socket_dir)

    def give_up_window(self) -> float:
        """How long after its last stored heartbeat a disconnected worker may still be
        trying: its give-up time, counted from its last contact, which the stored
        heartbeat (written once per flush interval) can precede by one interval."""
        return self.settings.worker_give_up + self.settings.flush_interval

    def busy_by_kind(self) -> Counter[str]:
        return Counter(self._busy)

    def winding_down(self) -> Container[str]:
        return self.attempts

    def has_attempt(self, job_id: str) -> bool:
        return job_id in self.attempts

    def _add(self, attempt: Attempt) -> None:
        self.attempts[attempt.job_id] = attempt
        self._busy[attempt.kind.name] += 1

    def listener(self, job_id: str, sock: socket.socket) -> JobListener[Attempt]:
        """Serve ``sock`` (bound and listening) as the endpoint of ``job_id``."""
        return JobListener(self.loop, sock, job_id, self.conversation, self.settings.max_frame_size)

    def reopen_listener(self, attempt: Attempt) -> None:
        """The worker's connection dropped: listen again where it will reconnect."""
        assert attempt.endpoint is not None and attempt.endpoint.path is not None
        try:
            attempt.listener = self.listener(attempt.job_id, listen_unix(attempt.endpoint.path))
        except OSError as exc:
            log.error("job %s: cannot re-open %s: %s", attempt.job_id, attempt.endpoint, exc)

    def log_line(self, job: JobRecord, message: str) -> None:
        """A ``[jobvisor]`` line in the job's log, written once this iteration has
        committed: lines such as "attempt 2 completed" claim an outcome, and like
        acks and events they must not reach anyone before the store holds it."""
        path = joblogs.log_path(self.settings.log_dir, job.id)
        wall = self.sup.clock.wall()
        self.loop.after_commit(lambda: joblogs.append(path, wall, "jobvisor", message))

    def check_requested_endpoint(self, socket_path: str | None, tcp_port: int | None) -> None:
        """Refuse an explicit request for an endpoint some attempt holds."""
        if socket_path is not None:
            holder = self.reservations.holder(Endpoint(path=socket_path))
            if holder is not None:
                raise ReservationError(f"socket path {socket_path} is reserved for job {holder}")
        if tcp_port is not None:
            holder = self.reservations.holder(Endpoint(port=tcp_port))
            if holder is not None:
                raise ReservationError(f"TCP port {tcp_port} is reserved for job {holder}")

    # --- starting -------------------------------------------------------------------------

    def start(self, jobs: list[JobRecord]) -> None:
        """Start a batch: mark running and commit, then spawn (see module docstring)."""
        ready: list[tuple[Attempt, str]] = []
        for job in jobs:
            kind = self.sup.kinds[job.name]
            number = job.attempts + 1
            endpoint: Endpoint | None = None
            token = token_hash = ""  # a plain program has neither endpoint nor token
            if not kind.plain:
                token = secrets.token_urlsafe(32)
                try:
                    endpoint, sock = self._open_endpoint(job)
                except (OSError, ReservationError) as exc:
                    self.table.set_status(job, JobStatus.RUNNING, attempts=number)
                    self.sup.attempt_failed(
                        job,
                        {
                            "message": f"cannot open a socket for the worker: {exc}",
                            "reason": "socket",
                        },
                    )
                    continue
                token_hash = hash_token(token)
            wall = self.sup.clock.wall()
            self.table.set_status(
                job,
                JobStatus.RUNNING,
                attempts=number,
                started_at=wall,
                finished_at=None,
                run_at=None,
                socket_path=endpoint.path if endpoint else None,
                tcp_port=endpoint.port if endpoint else None,
                token_hash=token_hash or None,
                last_heartbeat=wall,
                heartbeat_boottime=self.sup.clock.boottime(),
                boot_id=self.sup.clock.boot_id,
                progress=None,
                progress_message=None,
                progress_data=None,
            )
            self.table.set_process_state(job, ProcessState.SPAWNING, pid=None, pid_start_time=None)
            self.sup.metrics.started(job, wall)
            attempt = Attempt(job, kind, number, endpoint, token_hash)
            if endpoint is not None:
                attempt.listener = self.listener(job.id, sock)
            attempt.last_seen = self.sup.clock.monotonic()
            self._add(attempt)
            ready.append((attempt, token))
        if not ready:
            return
        self.sup.commit()  # the intent is durable before any process exists
        faults.reached("start")
        for attempt, token in ready:
            self._spawn(attempt, token)

    def _open_endpoint(self, job: JobRecord) -> tuple[Endpoint, Any]:
        reservations = self.reservations
        if self.settings.transport == "unix":
            endpoint = unix_endpoint(self.settings.job_socket_dir, job.id)
            if job.socket_path is not None:
                wanted = Endpoint(path=job.socket_path)
                if reservations.holder(wanted) in (None, job.id):
                    endpoint = wanted
            reservations.reserve(endpoint, job.id)
            assert endpoint.path is not None
            try:
                return endpoint, listen_unix(endpoint.path)
            except OSError:
                reservations.release(endpoint, job.id)
                raise
        if job.tcp_port is not None and reservations.holder(Endpoint(port=job.tcp_port)) in (
            None,
            job.id,
        ):
            with contextlib.suppress(OSError):
                sock = listen_tcp(job.tcp_port)
                endpoint = Endpoint(port=job.tcp_port)
                reservations.reserve(endpoint, job.id)
                return endpoint, sock
        sock, port = listen_free_tcp(self.settings.tcp_port_range, reservations)
        endpoint = Endpoint(port=port)
        reservations.reserve(endpoint, job.id)
        return endpoint, sock

    def _spawn(self, attempt: Attempt, token: str) -> None:
        job, kind = attempt.job, attempt.kind
        env = dict(os.environ)
        env["JOBVISOR_PYTHON"] = sys.executable  # jobvisor-job.sh's helper (a kind may override)
        env.update(kind.env)
        program = argv = [kind.command, *kind.args]
        path = joblogs.log_path(self.settings.log_dir, job.id)
        if attempt.endpoint is not None:
            env.update(
                JOBVISOR_SOCKET=attempt.endpoint.address,
                JOBVISOR_JOB_ID=job.id,
                JOBVISOR_TOKEN=token,
                JOBVISOR_HEARTBEAT_INTERVAL=f"{kind.heartbeat_interval:g}",
            )
        source = self.sources.get(kind.name)
        try:
            if kind.plain:  # run under the wrapper that records its exit (plainjobs)
                folder = plainjobs.prepare(self.settings.state_dir, job, attempt.number)
                env = plainjobs.environment(env, job, attempt.number, folder)
                argv = plainjobs.shim_argv(kind, folder, path)
            # One descriptor for our line and the worker's stdout/stderr: this runs on the
            # loop for every job, and opening the file is the costly part.
            log_fd = joblogs.open_log(path)
            try:
                starting = f"attempt {attempt.number}/{job.max_attempts}: starting {program!r}"
                joblogs.write(log_fd, self.sup.clock.wall(), "jobvisor", starting)
                began = time.perf_counter()
                if source is None:
                    proc = spawn(argv, cwd=kind.cwd, env=env, log_fd=log_fd)
                else:  # e.g. a warm pool: the process exists already, or is made there
                    proc = source.start(argv, kind.cwd, env, path)
                self.sup.metrics.spawn_latency.observe(kind.name, time.perf_counter() - began)
            finally:
                os.close(log_fd)
        except (OSError, ValueError) as exc:
            strerror = exc.strerror if isinstance(exc, OSError) else None
            message = f"cannot start worker {kind.command!r}: {strerror or exc}"
            self.log_line(job, message)
            self.sup.attempt_failed(job, {"message": message, "reason": "spawn"})
            attempt.outcome = "failed"
            self._end(attempt)
            return
        faults.reached("spawn")
        attempt.proc = proc
        self.table.update(job, pid=proc.pid, pid_start_time=proc.start_time)
        if kind.plain:  # nothing to wait for: running is all it will ever say
            self.table.set_process_state(job, ProcessState.RUNNING)
        self._watch_process(attempt)
        self.arm_watchdog(attempt)
        self.arm_timeout(attempt)
        self.counters.spawned += 1
        address = attempt.endpoint.address if attempt.endpoint is not None else None
        self.sup.emit("job.external.spawned", job, pid=proc.pid, socket=address)

    def _watch_process(self, attempt: Attempt) -> None:
        """Notice the exit of the attempt's process: one pidfd per process, however many
        attempts it serves (a load generator can hold thousands of jobs in one process)."""
        proc = attempt.proc
        assert proc is not None
        watch = self._watches.get(proc.pid)
        if watch is not None and watch.handle.start_time == proc.start_time:
            if proc is not watch.handle:
                proc.close()
                attempt.proc = watch.handle
            watch.attempts.add(attempt)
            return
        watch = _Watch(proc, {attempt})
        self._watches[proc.pid] = watch
        if proc.pidfd is not None:
            self.loop.add_reader(proc.pidfd, lambda _mask: self._process_exited(watch))
        else:
            self._poll(watch)

    def _poll(self, watch: _Watch) -> None:
        if self._watches.get(watch.handle.pid) is not watch:
            return
        if watch.handle.poll():
            self._process_exited(watch)
        else:
            self.loop.call_later(
                ("poll", watch.handle.pid), POLL_INTERVAL, lambda: self._poll(watch)
            )

    def _process_exited(self, watch: _Watch) -> None:
        for attempt in list(watch.attempts):
            self.on_exit(attempt)

    def _unwatch(self, attempt: Attempt) -> None:
        proc = attempt.proc
        if proc is None:
            return
        watch = self._watches.get(proc.pid)
        if watch is None or attempt not in watch.attempts:
            proc.close()
            return
        watch.attempts.discard(attempt)
        if not watch.attempts:
            del self._watches[proc.pid]
            self.loop.cancel_timer(("poll", proc.pid))
            if proc.pidfd is not None:
                self.loop.remove(proc.pidfd)
            proc.close()

    # --- liveness and stopping ------------------------------------------------------------

    def _hello_window(self, attempt: Attempt) -> float | None:
        """For a worker that has not said hello yet, how long it may take (it connects on
        the workers' reconnect schedule, and starting an interpreter on a busy machine
        can take longer than two heartbeat timeouts); ``None`` once it has."""
        if attempt.greeted or attempt.conn is not None:
            return None
        return reconnect_window(
            attempt.kind.heartbeat_timeout, self.settings.worker_reconnect_interval
        )

    def arm_watchdog(self, attempt: Attempt) -> None:
        if attempt.kind.plain:  # its liveness is its process, watched by pidfd
            return
        timeout = self._hello_window(attempt)
        if timeout is None:
            timeout = attempt.kind.heartbeat_timeout * (2 if attempt.stale else 1)
        self.loop.call_at(
            ("watch", attempt.job_id), attempt.last_seen + timeout, lambda: self._watchdog(attempt)
        )

    def _watchdog(self, attempt: Attempt) -> None:
        if attempt.outcome is not None or attempt.stopping:
            return
        silent = self.sup.clock.monotonic() - attempt.last_seen
        window = self._hello_window(attempt)
        if window is not None:
            if silent >= window:
                self.stop(attempt, f"the worker did not connect within {window:g} s", "stale")
            else:
                self.arm_watchdog(attempt)
            return
        timeout = attempt.kind.heartbeat_timeout
        if silent >= 2 * timeout:
            self.stop(
                attempt,
                f"no message from the worker for {silent:.1f} s "
                f"(heartbeat_timeout {timeout:g} s; killed at twice that)",
                "stale",
            )
            return
        if silent >= timeout and not attempt.stale:
            attempt.stale = True
            self.log_line(attempt.job, f"worker silent for {silent:.1f} s: stale")
            self.sup.emit("job.stale", attempt.job, silent_for=round(silent, 3))
        self.arm_watchdog(attempt)

    def arm_timeout(self, attempt: Attempt) -> None:
        """Kill the attempt ``timeout`` seconds after it started (also after a restart)."""
        timeout, started = attempt.kind.timeout, attempt.job.started_at
        if timeout is None or started is None:
            return
        remaining = max(0.0, started + timeout - self.sup.clock.wall())
        self.loop.call_later(
            ("timeout", attempt.job_id), remaining, lambda: self._timed_out(attempt)
        )

    def _timed_out(self, attempt: Attempt) -> None:
        if attempt.outcome is None:
            self.stop(attempt, f"timed out after {attempt.kind.timeout:g} s", "timeout")

    def cancel(self, job: JobRecord, reason: str) -> None:
        attempt = self.attempts.get(job.id)
        if attempt is None:
            return
        attempt.outcome = "cancelled"
        self.outcome_decided(attempt)
        self.log_line(job, f"cancel requested: {reason}")
        self.stop(attempt, reason, "cancelled", polite=True)

    def outcome_decided(self, attempt: Attempt) -> None:
        """Silence and running time no longer matter for an attempt whose outcome is set."""
        self.loop.cancel_timer(("watch", attempt.job_id))
        self.loop.cancel_timer(("timeout", attempt.job_id))

    def stop(self, attempt: Attempt, reason: str, code: str, *, polite: bool = False) -> None:
        """Stop the worker: ask (cancel frame), then TERM, then KILL, a grace apart."""
        if attempt.kill_reason is None:
            attempt.kill_reason = reason
            attempt.kill_code = code
            self.log_line(attempt.job, f"stopping worker: {reason}")
        grace = self.settings.kill_grace
        key = ("kill", attempt.job_id)
        if polite and attempt.conn is not None:
            attempt.conn.send(Cancel(reason=reason))
            self.loop.call_later(key, grace, lambda: self._signal(attempt, signal.SIGTERM))
        else:
            self._signal(attempt, signal.SIGTERM)

    def _signal(self, attempt: Attempt, sig: int) -> None:
        if attempt.proc is None:  # not spawned yet: nothing to signal
            return
        attempt.proc.signal_group(sig)
        if sig == signal.SIGTERM:
            self.loop.call_later(
                ("kill", attempt.job_id),
                self.settings.kill_grace,
                lambda: self._signal(attempt, signal.SIGKILL),
            )

    # --- the end of an attempt ------------------------------------------------------------

    def on_exit(self, attempt: Attempt) -> None:
        proc = attempt.proc
        if proc is None or self.attempts.get(attempt.job_id) is not attempt:
            return
        if not proc.poll():
            return  # spurious wakeup: not gone yet
        conn = attempt.conn
        if conn is not None:
            last_words = conn.drain()  # whatever it wrote before exiting still counts
            if last_words:
                self.conversation.on_worker_messages(conn, last_words)
        job = attempt.job
        running = attempt.outcome is None and job.status is JobStatus.RUNNING
        if running and attempt.kind.plain and attempt.kill_reason is None:
            # Its exit file decides; a stop we started decides below, as for every worker.
            attempt.outcome = self.plain_outcome(job, attempt.number, proc.returncode)
        if attempt.outcome is None and job.status is JobStatus.RUNNING:
            code = proc.returncode
            if attempt.kill_reason is not None:
                message, reason = attempt.kill_reason, attempt.kill_code
            elif code == 0:
                message, reason = "exited without reporting a result (exit code 0)", "exit"
                log.warning("job %s: worker %s", job.id, message)
            else:
                message, reason = describe_exit(code), "exit"
            attempt.outcome = "failed"
            self.sup.attempt_failed(job, {"message": message, "reason": reason, "exit_code": code})
        proc.kill_leftovers()  # ours or adopted: its children must not outlive it
        source = self.sources.get(attempt.kind.name)
        if source is not None:
            source.forget(proc)
        self.log_line(job, f"attempt {attempt.number}: worker {describe_exit(proc.returncode)}")
        self._end(attempt)

    def plain_outcome(self, job: JobRecord, number: int, returncode: int | None) -> str:
        """A plain program's wrapper has exited (``returncode``: ``None`` unless we spawned
        it): record what its ``exit.json`` says (``plainjobs.judge``); the outcome."""
        folder = plainjobs.attempt_folder(self.settings.state_dir, job.id, number)
        verdict = plainjobs.judge(folder, returncode)
        if verdict.note is not None:
            self.log_line(job, verdict.note)
        if verdict.completed:
            self.sup.attempt_completed(job, verdict.result)
            self.log_line(job, f"attempt {number} completed")
        else:
            assert verdict.error is not None
            self.sup.attempt_failed(job, verdict.error)
            self.log_line(job, f"attempt {number} failed: {verdict.error['message']}")
        # Its files go once the outcome is committed: a crash before that finds them.
        self.loop.after_commit(lambda: plainjobs.discard(self.settings.state_dir, job.id, number))
        return "completed" if verdict.completed else "failed"

    def hand_back(self, attempt: Attempt) -> bool:
        """The worker hung up after its outcome was acked: if its process source reuses
        processes, give the live process back to it and end the attempt now; ``False``
        (nothing changed) when it is not reusable, so the attempt ends at the exit.

        Only a completed or failed attempt that nobody is stopping qualifies: a cancel,
        timeout or stale kill goes on to kill the process as always. The outcome is
        committed (the ack left after the commit and the worker read it before hanging
        up), so ending here loses nothing. The runner's watch is dropped first (pidfd
        reader removed, handle kept open), so no group kill and no exit report follow.
        """
        proc = attempt.proc
        source = self.sources.get(attempt.kind.name)
        if (
            source is None
            or proc is None
            or attempt.outcome not in ("completed", "failed")
            or attempt.kill_reason is not None
            or self.attempts.get(attempt.job_id) is not attempt
            or proc.poll()
        ):
            return False
        watch = self._watches.get(proc.pid)
        if watch is None or watch.attempts != {attempt} or watch.handle is not proc:
            return False  # shared or unknown: not a pool worker of ours
        del self._watches[proc.pid]
        self.loop.cancel_timer(("poll", proc.pid))
        if proc.pidfd is not None:
            self.loop.remove(proc.pidfd)
        if not source.release(proc):
            self._watches[proc.pid] = watch  # not its to take back: watch on as before
            if proc.pidfd is not None:
                self.loop.add_reader(proc.pidfd, lambda _mask: self._process_exited(watch))
            else:
                self._poll(watch)
            return False
        attempt.proc = None  # the source's now: _end must not close it
        self.log_line(attempt.job, f"attempt {attempt.number}: worker {proc.pid} released")
        self._end(attempt)
        return True

    def _end(self, attempt: Attempt) -> None:
        """The attempt's process is gone: release everything it held."""
        job = attempt.job
        if self.attempts.get(job.id) is not attempt:
            return
        for timer in ("watch", "timeout", "kill", "linger", "orphan"):
            self.loop.cancel_timer((timer, job.id))
        self._release(attempt)
        if job.process_state is not ProcessState.EXITED:
            self.table.set_process_state(job, ProcessState.EXITED)
        del self.attempts[job.id]
        self._busy[attempt.kind.name] -= 1
        if self._busy[attempt.kind.name] <= 0:
            del self._busy[attempt.kind.name]
        self.sup.attempt_ended(job)

    def _release(self, attempt: Attempt) -> None:
        """Close the attempt's sockets and pidfd; free its endpoint."""
        self._close(attempt, "attempt ended")
        if attempt.endpoint is None:  # plain (its files go with its outcome's commit)
            return
        if attempt.endpoint.path is not None:
            remove_socket_file(attempt.endpoint.path)
        self.reservations.release(attempt.endpoint, attempt.job_id)

    def _close(self, attempt: Attempt, why: str) -> None:
        """Our side of the attempt: listener, connection (pending output first), pidfd."""
        if attempt.listener is not None:
            attempt.listener.close()
            attempt.listener = None
        if attempt.conn is not None:
            conn, attempt.conn = attempt.conn, None
            conn.attempt = None
            conn.flush()  # a pending ack still goes out
            conn.close(why)
        self._unwatch(attempt)

    def detach_all(self) -> None:
        """Graceful stop: close our side of everything, leave the workers running."""
        self.detaching = True
        for attempt in list(self.attempts.values()):
            self._close(attempt, "supervisor stopping")
        self.attempts.clear()

    # --- restarts -------------------------------------------------------------------------

    def recover(self, running: list[JobRecord], finished: list[JobRecord]) -> None:
        self._recover(self, running, finished)

    def adopt(self, job: JobRecord, kind: JobKind, proc: ProcessHandle) -> Attempt:
        """Re-attach an attempt that a previous supervisor started (see ``recovery``);
        a plain job's (no stored endpoint) gets no listener."""
        endpoint: Endpoint | None = None
        if job.socket_path is not None:
            endpoint = Endpoint(path=job.socket_path)
        elif job.tcp_port is not None:
            endpoint = Endpoint(port=job.tcp_port)
        attempt = Attempt(job, kind, job.attempts, endpoint, job.token_hash or "", proc=proc)
        attempt.last_seen = self.sup.clock.monotonic()
        self._add(attempt)
        if endpoint is None:
            self._watch_process(attempt)
            return attempt
        self.reservations.reserve(endpoint, job.id)
        try:
            sock = (
                listen_unix(endpoint.path)
                if endpoint.path is not None
                else listen_tcp(endpoint.port or 0)
            )
        except OSError as exc:
            log.error("job %s: cannot re-open %s for its worker: %s", job.id, endpoint, exc)
            sock = None
        if sock is not None:
            attempt.listener = self.listener(job.id, sock)
        self._watch_process(attempt)
        return attempt
