"""The supervisor: jobs, the queue, commits and events; the public Python API.

Theory of operation. Everything runs on the loop thread (``Loop``). A job enters the
``JobTable`` as pending or scheduled; ``_start_ready`` starts pending jobs in FIFO order
while global and per-kind slots are free; the ``Runner`` owns each attempt's worker
process, socket and timers and reports the attempt's end back through
``attempt_failed`` / ``attempt_completed``, the only places that decide between retry,
failure and completion.

Commits (``_commit``) run once per loop iteration: every hard change of the iteration in
one store transaction, plus the batched heartbeats/progress when the flush interval has
passed. Events are queued with the loop and released after the commit.

Threads other than the loop's use ``SupervisorThread`` (``supervisor.embedded``), which
runs each call on the loop and returns once the result is committed.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from protocol import limits, pack
from protocol.framing import DEFAULT_MAX_FRAME
from supervisor import joblogs
from supervisor.clock import Clock, SystemClock
from supervisor.config import Settings, check_commands
from supervisor.errors import (
    BadRequest,
    JobActive,
    JobFinished,
    JobNotFound,
    NotRetryable,
    StoreError,
    UnknownJobKind,
)
from supervisor.events import EventBus
from supervisor.loop import Loop
from supervisor.metrics import Counters, Metrics
from supervisor.records import JobKind, JobRecord, new_job_id
from supervisor.recovery import recover
from supervisor.retention import Retention, active_step_jobs, unlink_log
from supervisor.runner import Runner
from supervisor.statelock import StateLock
from supervisor.states import ACTIVE, JobStatus
from supervisor.stores import Store, make_store
from supervisor.stores.base import (
    DeleteUnsupported,
    instance_store,
    managed_store,
    managed_support_missing,
    require_instance_store,
)
from supervisor.table import JobTable
from supervisor.views import LATEST_TIME, iso
from supervisor.workflows.instances import InstanceTable

if TYPE_CHECKING:
    from supervisor.ports import WorkflowService

log = logging.getLogger(__name__)

# A job's data reaches its worker inside ``welcome``, whose frame a worker library refuses
# over ``DEFAULT_MAX_FRAME`` (1 MiB): the data keeps room for the welcome's other fields (a
# job id, a kind name of at most 200 characters, five numbers), so accepted data always fits.
WELCOME_HEADROOM = 4096
MAX_DATA_BYTES = DEFAULT_MAX_FRAME - WELCOME_HEADROOM


def _check_data(data: Any) -> None:
    """Refuse a payload the store, the wire or the API could not carry, before it is accepted.

    msgpack holds integers of at most 64 bits and no arbitrary Python objects; found
    only at commit time, such a payload would fail the commit of everything else too.
    Nesting is held to the limit every door shares (``protocol.limits``), so whatever is
    accepted here can be sent to the worker and shown over HTTP.
    """
    try:
        limits.check(data, "data")
    except limits.TooDeep as exc:
        raise BadRequest(str(exc)) from None
    try:
        size = len(pack(data))
    except (TypeError, ValueError, OverflowError) as exc:
        raise BadRequest(f"data cannot be stored as msgpack: {exc}") from None
    if size > MAX_DATA_BYTES:
        raise BadRequest(f"data is {size} bytes as msgpack; the limit is {MAX_DATA_BYTES}")


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        store: Store | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.loop = Loop(self.clock)
        self.store = store if store is not None else make_store(settings)
        self.table = JobTable()
        # Workflow instances, committed with the jobs (docs/workflows.md, "Persistence");
        # the engine that drives them lives in supervisor.workflows, on top of this.
        self.instances = InstanceTable()
        # The workflow engine, once attached (supervisor.workflows); None without it.
        self.workflows: WorkflowService | None = None
        # Called once, on the loop, when a job reaches a final status (completed, failed
        # after its last attempt, cancelled, failed at start), in the iteration that
        # decided it: what a listener changes commits with the job (the workflow engine).
        self.settled: list[Callable[[JobRecord], None]] = []
        # Called on the loop with a job whose latest progress is being published (at most
        # once per job per iteration, coalesced like its ``job.external.progress`` event):
        # the workflow engine turns a step's progress into ``workflow.progress``.
        self.progressed: list[Callable[[JobRecord], None]] = []
        self._instance_store = instance_store(self.store)  # None: a store from before them
        self.events = EventBus(
            settings.sse_replay_events,
            history_bytes=settings.sse_replay_bytes,
            epoch=int(self.clock.wall() * 1000),
        )
        self.kinds: dict[str, JobKind] = dict(settings.jobs)
        self.counters = Counters()
        # Histograms and restart-surviving totals for GET /metrics (supervisor/metrics.py).
        self.metrics = Metrics()
        self.settled.append(self.metrics.job_settled)
        self.runner = Runner(self, recover)
        self.loop.commit = self._commit
        self.loop.observe_iteration = self.metrics.iteration_time.observe
        self.loop.busy = lambda: self.table.has_hard_changes or self.instances.has_changes
        self.retention: Retention | None = None  # set by open()
        self._start_queued = False
        self._flush_due = False
        self._progress_changed: dict[str, JobRecord] = {}
        self.started_at = self.clock.wall()
        self._state_lock = StateLock()  # nothing held until open()

    # --- life of the supervisor -----------------------------------------------------------

    def open(self) -> None:
        """Lock the state, open the store, re-attach surviving workers, get ready to serve.

        The state lock comes first: a second supervisor on this state (or this store,
        or this socket folder) must refuse before it reads, cleans or recovers anything.
        """
        try:
            self._state_lock = StateLock.acquire(self.settings)
            check_commands(self.settings)  # after: a kind's cwd may be the state folder
            joblogs.prepare_dir(self.settings.log_dir, source=self.settings.source)
            self.store.open()
            managed = managed_store(self.store)
            if managed is not None:  # the settled totals go on from what the store holds
                self.metrics.seed(managed.settled_totals())
            self.retention = Retention(self)
            self.runner.prepare()
            jobs = self.store.load_active()
            self.table.advance_seq(self.store.max_seq())
            if self._instance_store is not None:
                for instance in self._instance_store.load_active_instances():
                    self.instances.load(instance)
                self.instances.advance_seq(self._instance_store.max_instance_seq())
            for job in jobs:
                self.table.load(job)
                if job.status is JobStatus.SCHEDULED:
                    self._arm_run_at(job)
            self.runner.recover(
                [job for job in jobs if job.status is JobStatus.RUNNING],
                self.store.load_finished_since(self.clock.wall() - self.runner.give_up_window()),
            )
            self.loop.call_later("flush", self.settings.flush_interval, self._flush_tick)
            self.retention.start()
            self._queue_start()
            self.loop.run_once(timeout=0)  # commit what recovery decided before serving
        except BaseException:
            # A locked state, a bad folder or store must not leak the store connection, the
            # loop's wakeup sockets or re-opened listeners (workers keep running).
            self.runner.detach_all()
            self.store.close()
            self.loop.close()
            self._state_lock.release()
            raise

    def close(self) -> None:
        """Graceful stop: flush state, close sockets, leave the workers running."""
        try:
            self._flush_due = True
            self._commit()
        finally:
            self.runner.detach_all()
            self.store.close()
            self.loop.close()
            self._state_lock.release()  # last: the state is no longer ours to guard

    def serve_forever(self) -> None:
        self.loop.run_forever()

    # --- the public API (loop thread) -----------------------------------------------------

    def register(self, kind: JobKind) -> None:
        """Register (or replace) an external job kind."""
        self.kinds[kind.name] = kind

    def enqueue(
        self,
        name: str,
        data: Any = None,
        *,
        max_attempts: int | None = None,
        run_at: float | None = None,
        socket_path: str | None = None,
        tcp_port: int | None = None,
    ) -> JobRecord:
        """Add a job; it is durable once this loop iteration commits."""
        kind = self.kinds.get(name)
        if kind is None:
            known = ", ".join(sorted(self.kinds)) or "none"
            raise UnknownJobKind(f"no job kind named {name!r} (registered: {known})")
        if max_attempts is not None and (
            type(max_attempts) is not int or not 1 <= max_attempts <= 1000
        ):
            raise BadRequest(
                f"max_attempts must be an integer from 1 to 1000, got {max_attempts!r}"
            )
        if run_at is not None and (
            type(run_at) not in (int, float) or not math.isfinite(run_at) or run_at > LATEST_TIME
        ):
            raise BadRequest(
                "run_at must be a time in seconds since the epoch up to "
                f"{LATEST_TIME} ({iso(LATEST_TIME)}), got {run_at!r}"
            )
        _check_data(data)
        self.runner.check_requested_endpoint(socket_path, tcp_port)
        now = self.clock.wall()
        scheduled = run_at is not None and run_at > now
        job = JobRecord(
            id=new_job_id(),
            name=name,
            data=data,
            status=JobStatus.SCHEDULED if scheduled else JobStatus.PENDING,
            seq=self.table.next_seq(),
            created_at=now,
            node=self.settings.node,
            max_attempts=max_attempts or kind.max_attempts,
            run_at=run_at if scheduled else None,
            socket_path=socket_path,
            tcp_port=tcp_port,
        )
        self.table.insert(job)
        if scheduled:
            self._arm_run_at(job)
        else:
            self.metrics.queued(job, now)
            self._queue_start()
        return job

    def schedule(self, name: str, data: Any, run_at: float, **options: Any) -> JobRecord:
        return self.enqueue(name, data, run_at=run_at, **options)

    def get(self, job_id: str) -> JobRecord | None:
        """The job as this supervisor sees it now (memory first, then the store)."""
        job = self.table.get(job_id)
        if job is not None:
            return job
        return self.store.get(job_id)

    def get_by_name(self, name: str, status: JobStatus | None = None) -> list[JobRecord]:
        return self.list(name=name, status=status, limit=1000)

    def get_running_external(self) -> list[JobRecord]:
        return [job for job in self.table if job.status is JobStatus.RUNNING]

    def list(
        self,
        *,
        name: str | None = None,
        status: JobStatus | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[JobRecord]:
        """Jobs newest first. Active jobs carry their live heartbeat and progress."""
        rows = self.store.query(name=name, status=status, limit=limit, offset=offset)
        return [self.table.get(row.id) or row for row in rows]

    def cancel(self, job_id: str, reason: str = "cancelled") -> JobRecord:
        job = self.table.get(job_id)
        if job is None or not job.active:
            stored = job or self.store.get(job_id)
            if stored is None:
                raise JobNotFound(f"no job with id {job_id!r}")
            raise JobFinished(f"job {job_id} is already {stored.status}")
        now = self.clock.wall()
        previous = job.status
        self.table.set_status(
            job,
            JobStatus.CANCELLED,
            finished_at=now,
            run_at=None,
            error={"message": reason, "reason": "cancelled", "attempt": job.attempts},
        )
        if previous is JobStatus.SCHEDULED:
            self.loop.cancel_timer(("run", job.id))
        if previous is JobStatus.RUNNING:
            self.runner.cancel(job, reason)
        self.counters.cancelled += 1
        self.emit("job.cancelled", job, reason=reason)
        self._forget_when_settled(job)
        self._settle(job)
        return job

    def retry(self, job_id: str, max_attempts: int | None = None) -> JobRecord:
        """Queue a failed or cancelled job again, under the same id (docs/http-api.md,
        "Managing jobs"): its ``attempts`` go on counting (attempt numbers never repeat),
        it may make ``max_attempts`` more (default: its kind's), and its log goes on.

        Its last worker may still be exiting: the job is pending at once, and starts
        once that process is gone (``Runner.winding_down``), as every retry does."""
        job = self.table.get(job_id)
        if job is None:
            job = self.store.get(job_id)
            if job is None:
                raise JobNotFound(f"no job with id {job_id!r}")
        if job.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
            raise NotRetryable(
                f"job {job_id} is {job.status}; only a failed or cancelled job can be retried"
            )
        kind = self.kinds.get(job.name)
        if kind is None:
            raise NotRetryable(f"job {job_id}: no job kind named {job.name!r} is registered")
        if job_id in active_step_jobs(self):
            raise NotRetryable(
                f"job {job_id} is a step of a workflow instance that is still active; "
                "the workflow retries its steps"
            )
        budget = kind.max_attempts if max_attempts is None else max_attempts
        if type(budget) is not int or not 1 <= budget <= 1000:
            raise BadRequest(f"max_attempts must be an integer from 1 to 1000, got {budget!r}")
        managed = managed_store(self.store)
        if managed is not None:  # the settled totals keep counting it where it was
            managed.tally_reopened(job.name, job.status)
        previous = job.status
        if self.table.get(job_id) is None:
            self.table.load(job)  # a finished row from the store: in memory again
        self.table.set_status(
            job,
            JobStatus.PENDING,
            max_attempts=job.attempts + budget,
            finished_at=None,
            run_at=None,
            result=None,
            error=None,
        )
        self.runner.log_line(
            job, f"retry requested ({previous} before): up to {budget} more attempt(s)"
        )
        self.metrics.queued(job, self.clock.wall())
        self.emit("job.requeued", job, previous_status=previous.value)
        self._queue_start()
        return job

    def delete(self, job_id: str) -> JobRecord:
        """Delete a finished job and its log file (docs/http-api.md, "Managing jobs")."""
        job = self.table.get(job_id) or self.store.get(job_id)
        if job is None:
            raise JobNotFound(f"no job with id {job_id!r}")
        if job.active:
            raise JobActive(f"job {job_id} is {job.status}; cancel it first, then delete it")
        if self.table.get(job_id) is not None or self.runner.has_attempt(job_id):
            # Its row would be written again by the commit that records the exit.
            raise JobActive(
                f"job {job_id} is {job.status} but its worker is still exiting "
                f"(process_state {job.process_state}); try again in a moment"
            )
        if job_id in active_step_jobs(self):
            raise JobActive(
                f"job {job_id} is a step of a workflow instance that is still active; "
                "delete it once the instance has finished"
            )
        managed = managed_store(self.store)
        if managed is None:
            cls = type(self.store)
            missing = ", ".join(managed_support_missing(self.store))
            raise DeleteUnsupported(
                f"the store {cls.__module__}:{cls.__qualname__} cannot delete jobs "
                f"(missing: {missing}); see docs/persistence.md"
            )
        if not managed.delete_finished([job_id]):
            raise JobNotFound(f"no finished job with id {job_id!r} in the store")
        unlink_log(self, job_id)
        self.emit("job.deleted", job)
        return job

    def on(self, pattern: str, callback: Callable[..., Any]) -> Callable[[], None]:
        return self.events.on(pattern, callback)

    # --- outcomes (called by the runner) --------------------------------------------------

    def attempt_completed(self, job: JobRecord, result: Any) -> None:
        self.table.set_status(
            job, JobStatus.COMPLETED, result=result, error=None, finished_at=self.clock.wall()
        )
        self.counters.completed += 1
        self.emit("job.completed", job, result=result)
        self.emit(f"job.{job.name}.completed", job, result=result)
        self._settle(job)

    def attempt_failed(self, job: JobRecord, error: dict[str, Any]) -> None:
        """Record a failed attempt: retry after backoff while attempts remain, else fail."""
        error = {**error, "attempt": job.attempts}
        kind = self.kinds.get(job.name)
        if kind is not None and job.attempts < job.max_attempts:
            delay = kind.backoff(job.attempts)
            run_at = self.clock.wall() + delay
            self.table.set_status(job, JobStatus.SCHEDULED, run_at=run_at, error=error)
            self._arm_run_at(job)
            self.counters.retried += 1
            self.emit("job.retrying", job, error=error, run_at=run_at)
        else:
            self.table.set_status(job, JobStatus.FAILED, error=error, finished_at=self.clock.wall())
            self.counters.failed += 1
            self.emit("job.failed", job, error=error)
            self.emit(f"job.{job.name}.failed", job, error=error)
            self._settle(job)

    def attempt_ended(self, job: JobRecord) -> None:
        """The attempt's process is gone: its slot is free; finished jobs leave memory."""
        self.metrics.attempt_ended(job, self.clock.wall())
        self._forget_when_settled(job)
        self._queue_start()

    def _settle(self, job: JobRecord) -> None:
        """Tell the ``settled`` listeners that ``job`` reached its final status."""
        for listener in list(self.settled):
            listener(job)

    def progress_changed(self, job: JobRecord) -> None:
        self._progress_changed[job.id] = job
        self.table.touch(job)

    # --- events ---------------------------------------------------------------------------

    def emit(self, name: str, job: JobRecord | None = None, **data: Any) -> None:
        """Queue an event; it reaches subscribers after this iteration's commit.

        A job's events reach subscribers in the order they happened: progress waiting to
        be coalesced is queued before any other event of its job.
        """
        if job is not None and job.id in self._progress_changed:
            self._emit_progress(self._progress_changed.pop(job.id))
        self._queue_event(name, job, data)

    def _emit_progress(self, job: JobRecord) -> None:
        self._queue_event(
            "job.external.progress",
            job,
            {"percent": job.progress, "message": job.progress_message, "data": job.progress_data},
        )
        for listener in self.progressed:
            listener(job)

    def _queue_event(self, name: str, job: JobRecord | None, data: dict[str, Any]) -> None:
        payload: dict[str, Any] = {}
        channels: tuple[str, ...] = ()
        if job is not None:
            payload = {
                "id": job.id,
                "name": job.name,
                "status": job.status.value,
                "attempt": job.attempts,
            }
            channels = (f"job:{job.id}", f"kind:{job.name}")
        payload.update(data)
        wall = self.clock.wall()
        self.loop.after_commit(
            lambda: self.events.emit(name, payload, time=wall, channels=channels)
        )

    # --- starting jobs --------------------------------------------------------------------

    def _queue_start(self) -> None:
        if not self._start_queued:
            self._start_queued = True
            self.loop.call_soon(self._start_ready)

    def _start_ready(self) -> None:
        """Start pending jobs, oldest first, while global and per-kind slots are free."""
        self._start_queued = False
        busy: Counter[str] = self.runner.busy_by_kind()
        free = self.settings.concurrency - sum(busy.values())
        kind_limits = {name: kind.concurrency for name, kind in self.kinds.items()}
        skip = self.runner.winding_down()
        batch: list[JobRecord] = []
        while free > 0:
            job = self.table.next_startable(free, kind_limits, busy, skip)
            if job is None:
                break
            self.table.dequeue(job)
            problem = self._unstartable(job)
            if problem is not None:
                error = {**problem, "attempt": job.attempts}
                self.table.set_status(
                    job, JobStatus.FAILED, error=error, finished_at=self.clock.wall()
                )
                self.counters.failed += 1
                self.emit("job.failed", job, error=error)
                self._forget_when_settled(job)
                self._settle(job)
                continue
            batch.append(job)
            busy[job.name] += 1
            free -= 1
        if batch:
            self.runner.start(batch)

    def _unstartable(self, job: JobRecord) -> dict[str, Any] | None:
        """Why no attempt of ``job`` can ever run (it then fails at once, without retries)."""
        if job.name not in self.kinds:  # its [jobs.NAME] was removed while it waited
            return {
                "message": f"no job kind named {job.name!r} is registered any more",
                "reason": "config",
            }
        if limits.depth_exceeds(job.data):  # let in by an older build: no welcome carries it
            return {
                "message": f"its data nests deeper than {limits.MAX_DEPTH} levels, "
                "so no worker can be sent it",
                "reason": "data",
            }
        return None

    def _arm_run_at(self, job: JobRecord) -> None:
        assert job.run_at is not None
        delay = max(0.0, job.run_at - self.clock.wall())
        self.loop.call_later(("run", job.id), delay, lambda: self._run_at_reached(job))

    def _run_at_reached(self, job: JobRecord) -> None:
        if job.status is JobStatus.SCHEDULED:
            self.table.set_status(job, JobStatus.PENDING, run_at=None)
            self.metrics.queued(job, self.clock.wall())
            self._queue_start()

    def _forget_when_settled(self, job: JobRecord) -> None:
        """Drop a finished job from memory after its commit, once no attempt is live."""

        def forget() -> None:
            settled = job.status not in ACTIVE and not self.runner.has_attempt(job.id)
            if settled and not self.table.has_pending_changes(job.id):
                self.table.forget(job.id)

        self.loop.after_commit(forget)

    # --- committing -----------------------------------------------------------------------

    def commit(self) -> None:
        """Commit now (mid-iteration): used before spawning, so a crash never loses a PID."""
        self._commit()

    def _commit(self) -> None:
        if self._progress_changed:
            # Coalesced: one event per job per iteration, with the latest progress.
            changed, self._progress_changed = self._progress_changed, {}
            for job in changed.values():
                self._emit_progress(job)
        table = self.table
        if (
            not table.has_hard_changes
            and not self.instances.has_changes
            and not (self._flush_due and table.has_soft_changes)
        ):
            return
        hard = table.take_hard()
        soft = table.take_soft() if self._flush_due else []
        instances = self.instances.take_changes()
        try:
            began = time.perf_counter()
            if instances:  # one transaction for both; a store from before instances refuses
                store = self._instance_store or require_instance_store(self.store)
                store.write(hard, soft, instances)
            else:  # two arguments: what every store, old custom ones too, accepts
                self.store.write(hard, soft)
            self.metrics.commit_time.observe(time.perf_counter() - began)
            self.counters.commits += 1
        except StoreError:
            table.restore(hard, soft)
            self.instances.restore(instances)
            log.critical(
                "the store failed to commit; stopping so that nothing is promised "
                "that is not durable (workers keep running and re-attach on restart)"
            )
            raise
        self._flush_due = False

    def _flush_tick(self) -> None:
        self._flush_due = True
        self.loop.call_later("flush", self.settings.flush_interval, self._flush_tick)
