"""The conversation with workers: what they say on their sockets, and what we answer.

``Conversation`` is the owner the socket layer (``channels``) reports to. It runs
the handshake (``supervisor/handshake.py``: hello -> challenge, auth -> welcome), welcomes
the worker, and turns its messages into changes of the job, all on the loop thread. The
hot path is ``on_worker_messages``: under load nearly every message is a heartbeat (only
liveness, recorded once per batch) or progress (only the latest of a batch matters).
What happens to processes (spawning, watching, stopping) is the ``Runner``'s business.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, TypeAlias

from protocol import (
    Ack,
    Auth,
    Cancel,
    Completed,
    ErrorCode,
    Failed,
    Heartbeat,
    Hello,
    Log,
    Message,
    Progress,
    Started,
    Welcome,
)
from supervisor import channels, faults, joblogs
from supervisor.attempts import Attempt
from supervisor.endpoints import remove_socket_file
from supervisor.handshake import Handshake
from supervisor.logevents import LogEventGate
from supervisor.logthrottle import LogThrottle
from supervisor.states import JobStatus, ProcessState

if TYPE_CHECKING:
    from supervisor.ports import AttemptControl

WorkerConn: TypeAlias = channels.WorkerConn[Attempt]

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT = 10.0  # from accept to welcome: hello, challenge and auth together
# A worker log line keeps the worker's own ``ts`` when it is sane: no older than the
# longest outage a worker survives (the give-up window) plus this slack, and no further
# ahead than the slack (docs/protocol.md, section 4).
LOG_TS_SLACK = 60.0


class Conversation:
    """The owner of every worker connection (``channels.Owner``); it reports to the
    runner through ``ports.AttemptControl`` and never imports it."""

    def __init__(self, runner: AttemptControl) -> None:
        self.runner = runner
        self.sup = runner.sup
        self.counters = runner.sup.counters
        self.loop = runner.sup.loop
        self.table = runner.sup.table
        self.settings = runner.sup.settings
        self.handshake = Handshake(runner)
        # "worker reconnected" job-log lines, per job: a worker welcomed and dropped over
        # and over must not fill its job's log (events and counters still see each one).
        self.reconnect_lines = LogThrottle(log, burst=5, interval=60.0)
        # Log lines become events at a bounded rate per job (supervisor/logevents.py).
        self.log_events = LogEventGate(self.settings.log_event_rate)

    def on_worker_accepted(self, conn: WorkerConn) -> None:
        self.counters.worker_connections += 1
        self.loop.call_later(
            ("hello", conn.id),
            HANDSHAKE_TIMEOUT,
            lambda: conn.reject(
                ErrorCode.HANDSHAKE_REQUIRED,
                f"no completed handshake within {HANDSHAKE_TIMEOUT:g} s",
            ),
        )

    def on_worker_messages(self, conn: WorkerConn, messages: list[Message]) -> None:
        """A batch of messages from one connection (one ``recv``), in order.

        The hot path: under load nearly all are heartbeats (liveness only, recorded once
        per batch) and progress (only the latest of a run of them matters, so it is
        applied once, before any other message and at the end of the batch).
        """
        self.counters.worker_messages += len(messages)
        attempt = conn.attempt
        progress: Progress | None = None
        for message in messages:
            kind = type(message)
            if attempt is None:
                attempt = self._on_handshake(conn, message)
                if conn.closed:
                    return
                continue
            if kind is Heartbeat:
                continue
            if kind is Progress:
                progress = message  # type: ignore[assignment]
                continue
            if progress is not None:
                self._apply_progress(attempt, progress)
                progress = None
            self._dispatch(attempt, conn, message)
            if conn.closed:
                return
        if attempt is None or attempt.conn is not conn:
            return
        if progress is not None:
            self._apply_progress(attempt, progress)
        attempt.last_seen = self.sup.clock.monotonic()
        attempt.stale = False
        if not attempt.greeted:  # from now on, silence is judged by heartbeat_timeout
            attempt.greeted = True
            if attempt.outcome is None and not attempt.stopping:
                self.runner.arm_watchdog(attempt)
        job = attempt.job
        clock = self.sup.clock
        job.last_heartbeat = clock.wall()
        job.heartbeat_boottime = clock.boottime()  # what a restart judges silence by
        job.boot_id = clock.boot_id
        self.table.touch(job)

    def _apply_progress(self, attempt: Attempt, message: Progress) -> None:
        if attempt.outcome is None:
            job = attempt.job
            job.progress = message.percent
            job.progress_message = message.message
            job.progress_data = message.data
            self.sup.progress_changed(job)

    def _on_handshake(self, conn: WorkerConn, message: Message) -> Attempt | None:
        """A message before the welcome: hello, then auth; anything else is refused."""
        if conn.handshake is None:
            if type(message) is not Hello:
                conn.reject(
                    ErrorCode.HANDSHAKE_REQUIRED,
                    f"the first message must be hello, got {message.TYPE}",
                )
                return None
            assert isinstance(message, Hello)
            self.handshake.challenge(conn, message)
            return None
        if type(message) is not Auth:
            conn.reject(
                ErrorCode.HANDSHAKE_REQUIRED,
                f"the answer to challenge must be auth, got {message.TYPE}",
            )
            return None
        assert isinstance(message, Auth)
        return self._on_auth(conn, message)

    def _on_auth(self, conn: WorkerConn, auth: Auth) -> Attempt | None:
        accepted = self.handshake.verify(conn, auth)
        if accepted is None:
            return None
        attempt, pid = accepted.attempt, accepted.pid
        self.loop.cancel_timer(("hello", conn.id))
        job = attempt.job
        old = attempt.conn
        if old is not None and old is not conn:
            old.attempt = None
            old.close("replaced by the worker's new connection")
        conn.attempt = attempt
        attempt.conn = conn
        conn.listener.pending.discard(conn)
        previous = job.process_state
        if previous is not ProcessState.RUNNING:
            self.table.set_process_state(job, ProcessState.RUNNING)
        self.loop.cancel_timer(("orphan", job.id))
        if previous in (ProcessState.ORPHANED, ProcessState.RECONNECTING):
            self.counters.reconnected += 1
            suppressed = self.reconnect_lines.allow(job.id, self.sup.clock.monotonic())
            if suppressed is not None:
                line = f"worker reconnected (pid {pid})"
                if suppressed:
                    line += f" ({suppressed} similar lines suppressed)"
                self.runner.log_line(job, line)
            self.sup.emit("job.reconnected", job, pid=pid)
        attempt.last_seen = self.sup.clock.monotonic()
        if attempt.outcome is None and ("watch", job.id) not in self.loop.timers:
            self.runner.arm_watchdog(attempt)
        conn.send(
            Welcome(
                job_id=job.id,
                name=job.name,
                data=job.data,
                attempt=attempt.number,
                heartbeat_interval=attempt.kind.heartbeat_interval,
                reconnect_interval=self.settings.worker_reconnect_interval,
                give_up_after=self.settings.worker_give_up,
            )
        )
        if attempt.outcome == "cancelled":
            conn.send(Cancel(reason=attempt.kill_reason))
        if attempt.endpoint.path is not None and attempt.listener is not None:
            # One fd per connected job instead of two; re-opened if the connection drops.
            attempt.listener.close()
            attempt.listener = None
            remove_socket_file(attempt.endpoint.path)
        return attempt

    def _dispatch(self, attempt: Attempt, conn: WorkerConn, message: Message) -> None:
        kind = type(message)
        if kind is Started:
            return  # heartbeats and progress are handled by the caller, in batches
        job = attempt.job
        if kind is Log:
            assert isinstance(message, Log)
            path = joblogs.log_path(self.settings.log_dir, job.id)
            wall = self._log_time(message.ts)
            joblogs.append(path, wall, message.level, message.message, message.data)
            if self.log_events.admit(job.id, self.sup.clock.monotonic()):
                self.sup.emit(
                    "job.external.log",
                    job,
                    level=message.level,
                    message=message.message,
                    data=message.data,
                )
            else:
                self._log_event_dropped(attempt)
        elif kind is Completed or kind is Failed:
            self._on_outcome(attempt, conn, message)
        elif kind is Hello or kind is Auth:
            conn.reject(
                ErrorCode.UNEXPECTED_MESSAGE,
                f"{message.TYPE} on a connection that already completed its handshake",
            )
        else:
            conn.reject(
                ErrorCode.UNEXPECTED_MESSAGE,
                f"{message.TYPE} is sent by the supervisor, not by workers",
            )

    def _log_event_dropped(self, attempt: Attempt) -> None:
        """A log line over the job's event rate: counted, and noted when its window ends."""
        self.counters.log_events_dropped += 1
        job = attempt.job
        key = ("log-events", job.id)
        end = self.log_events.window_end(job.id)
        if key not in self.loop.timers and end is not None:
            self.loop.call_at(key, end, lambda: self._note_dropped_logs(attempt))

    def _note_dropped_logs(self, attempt: Attempt) -> None:
        """One event saying how many log lines were not sent as events."""
        job = attempt.job
        self.loop.cancel_timer(("log-events", job.id))
        dropped = self.log_events.take_dropped(job.id)
        if dropped:
            self.sup.emit(
                "job.external.log",
                job,
                level="warning",
                message=f"{dropped} log lines were not sent as events (over "
                f"{self.log_events.rate} a second); the job's log has every line",
                data={"dropped": dropped},
            )

    def _log_time(self, ts: float | None) -> float:
        """The time a worker's log line is written with: the worker's ``ts`` when sane.

        A worker stamps each log when it is made, so lines buffered through an outage
        keep the time they happened instead of all showing the moment of the replay. A
        ``ts`` outside [now - give-up window - slack, now + slack] (a broken clock, a
        bogus value) gives way to our clock. Liveness and stored job times never use it.
        """
        now = self.sup.clock.wall()
        if ts is None:
            return now
        worker = ts / 1000.0
        oldest = now - self.settings.worker_give_up - LOG_TS_SLACK
        return worker if oldest <= worker <= now + LOG_TS_SLACK else now

    def _on_outcome(self, attempt: Attempt, conn: WorkerConn, message: Message) -> None:
        job = attempt.job
        if attempt.outcome is None and job.status is JobStatus.RUNNING:
            self._note_dropped_logs(attempt)  # before the outcome's events, not after
            if isinstance(message, Completed):
                attempt.outcome = "completed"
                self.sup.attempt_completed(job, message.result)
                self.runner.log_line(job, f"attempt {attempt.number} completed")
            else:
                assert isinstance(message, Failed)
                attempt.outcome = "failed"
                self.sup.attempt_failed(
                    job, {"message": message.error, "stack": message.stack, "reason": "failed"}
                )
                self.runner.log_line(job, f"attempt {attempt.number} failed: {message.error}")
            self.runner.outcome_decided(attempt)
            # A finished worker is expected to exit; one that lingers is stopped.
            self.loop.call_later(
                ("linger", job.id),
                self.settings.kill_grace,
                lambda: self.runner.stop(attempt, "finished but did not exit", "linger"),
            )
        # A duplicate (a resend after a reconnect) is acked again: idempotent.
        conn.send(Ack(of=message.TYPE))
        self.loop.after_commit(lambda: faults.reached("outcome"))

    def on_worker_closed(self, conn: WorkerConn) -> None:
        """A connection closed (reported from the loop's ready queue, so no caller of
        ours is on the stack: handling the exit here cannot run twice)."""
        self.loop.cancel_timer(("hello", conn.id))
        attempt = conn.attempt
        if attempt is None or attempt.conn is not conn or self.runner.detaching:
            return
        attempt.conn = None
        if attempt.proc is not None and attempt.proc.poll():
            self.runner.on_exit(attempt)
            return
        if attempt.outcome is not None:
            # A worker whose source reuses processes hangs up after the ack of its
            # (committed) outcome to take its next job: the runner hands it back and
            # ends the attempt now (``ports.ProcessSource.release``).
            if self.runner.hand_back(attempt):
                return
            # Finished (its ack sent) or cancelled: it hangs up to exit, not to come back;
            # the linger timer stops it if it does not. No listener to re-open.
            return
        if attempt.job.process_state is ProcessState.RUNNING:
            self.table.set_process_state(attempt.job, ProcessState.RECONNECTING)
        if attempt.listener is None and attempt.endpoint.path is not None:
            self.runner.reopen_listener(attempt)
