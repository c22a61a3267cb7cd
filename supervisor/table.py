"""The in-memory job table: the one place where a job's state changes.

Theory of operation: the table holds every active job (pending, scheduled, running) and
finished jobs whose worker process is still winding down. Every change goes through a
method here, which checks the transition tables of ``states`` and records the job as
dirty. Dirt comes in two grades:

* hard: status, process state, attempts, result, error ... A hard change must be
  committed before anybody outside the loop may learn of it (an ack, an HTTP response,
  an event). The loop commits all hard dirt once per iteration, then releases outputs.
* soft: heartbeat time and progress. Kept in memory (the API shows it at once) and
  written in one batch per flush interval, so N heartbeating jobs cost O(1)
  transactions per interval.

The pending queue is one deque per job kind, ordered by ``seq``; the next job to start
is the smallest head among kinds that have a free slot, which is FIFO overall without
letting a saturated kind block the others. Cancelled jobs are skipped lazily.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Container, Iterator
from typing import Any

from supervisor.errors import IllegalTransition
from supervisor.records import JobRecord
from supervisor.states import (
    JobStatus,
    ProcessState,
    process_allowed,
    status_allowed,
)


class JobTable:
    def __init__(self) -> None:
        self._jobs: dict[str, JobRecord] = {}
        self._hard: dict[str, JobRecord] = {}
        self._soft: dict[str, JobRecord] = {}
        self._pending: dict[str, deque[JobRecord]] = {}
        self._next_seq = 1

    # --- reading -----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._jobs)

    def __iter__(self) -> Iterator[JobRecord]:
        return iter(self._jobs.values())

    def get(self, job_id: str) -> JobRecord | None:
        return self._jobs.get(job_id)

    @property
    def has_hard_changes(self) -> bool:
        return bool(self._hard)

    @property
    def has_soft_changes(self) -> bool:
        return bool(self._soft)

    def has_pending_changes(self, job_id: str) -> bool:
        return job_id in self._hard or job_id in self._soft

    # --- entering and leaving -------------------------------------------------------------

    def next_seq(self) -> int:
        seq = self._next_seq
        self._next_seq += 1
        return seq

    def advance_seq(self, seq: int) -> None:
        """Make every later ``next_seq`` larger than ``seq`` (the store's largest at start:
        a new job never reuses the seq of a finished one, so listings keep their order)."""
        self._next_seq = max(self._next_seq, seq + 1)

    def add(self, job: JobRecord) -> None:
        """Insert a new job (PENDING or SCHEDULED), or a job loaded from the store."""
        if job.id in self._jobs:
            raise IllegalTransition(f"job {job.id} is already in the table")
        self._jobs[job.id] = job
        self._next_seq = max(self._next_seq, job.seq + 1)
        if job.status is JobStatus.PENDING:
            self._enqueue(job)

    def load(self, job: JobRecord) -> None:
        """Insert a job read back from the store at startup: nothing to write."""
        self.add(job)

    def insert(self, job: JobRecord) -> None:
        """Insert a brand-new job; it is written at the next commit."""
        if job.status not in (JobStatus.PENDING, JobStatus.SCHEDULED):
            raise IllegalTransition(f"job {job.id} cannot enter as {job.status}")
        self.add(job)
        self._hard[job.id] = job

    def forget(self, job_id: str) -> None:
        """Drop a finished job from memory once it is committed and its process is gone."""
        job = self._jobs.get(job_id)
        if job is None:
            return
        if job.active:
            raise IllegalTransition(f"job {job_id} is {job.status}; only finished jobs leave")
        if job_id in self._hard or job_id in self._soft:
            raise IllegalTransition(f"job {job_id} has uncommitted changes")
        del self._jobs[job_id]

    # --- changing -------------------------------------------------------------------------

    def set_status(self, job: JobRecord, new: JobStatus, **changes: Any) -> None:
        """Move ``job`` to ``new`` (checked) and apply ``changes`` to its fields."""
        old = job.status
        if not status_allowed(old, new):
            raise IllegalTransition(f"job {job.id}: illegal status change {old} -> {new}")
        for name, value in changes.items():
            setattr(job, name, value)
        job.status = new
        if new is JobStatus.PENDING:
            job.seq = self.next_seq()
            self._enqueue(job)
        self._hard[job.id] = job

    def set_process_state(self, job: JobRecord, new: ProcessState, **changes: Any) -> None:
        old = job.process_state
        if not process_allowed(old, new):  # self-moves too: only where the table lists them
            raise IllegalTransition(f"job {job.id}: illegal process state change {old} -> {new}")
        for name, value in changes.items():
            setattr(job, name, value)
        job.process_state = new
        self._hard[job.id] = job

    def update(self, job: JobRecord, **changes: Any) -> None:
        """Change fields other than the states (written with the next commit)."""
        if "status" in changes or "process_state" in changes:
            raise IllegalTransition("states change through set_status / set_process_state")
        for name, value in changes.items():
            setattr(job, name, value)
        self._hard[job.id] = job

    def touch(self, job: JobRecord) -> None:
        """Mark a heartbeat/progress change, written with the next periodic flush."""
        self._soft[job.id] = job

    # --- committing -----------------------------------------------------------------------

    def take_hard(self) -> list[JobRecord]:
        """Hand over the jobs with hard changes; their soft changes ride along."""
        jobs = list(self._hard.values())
        self._hard.clear()
        for job in jobs:
            self._soft.pop(job.id, None)
        return jobs

    def take_soft(self) -> list[JobRecord]:
        jobs = list(self._soft.values())
        self._soft.clear()
        return jobs

    def restore(self, hard: list[JobRecord], soft: list[JobRecord]) -> None:
        """Put dirt back after a failed commit, so the next attempt writes it again."""
        for job in hard:
            self._hard.setdefault(job.id, job)
        for job in soft:
            self._soft.setdefault(job.id, job)

    # --- the pending queue ----------------------------------------------------------------

    def _enqueue(self, job: JobRecord) -> None:
        queue = self._pending.setdefault(job.name, deque())
        if queue and queue[-1].seq > job.seq:  # loaded out of order: keep the deque sorted
            items = sorted([*queue, job], key=lambda j: j.seq)
            queue.clear()
            queue.extend(items)
        else:
            queue.append(job)

    def next_startable(
        self,
        free: int,
        kind_limit: dict[str, int | None],
        kind_busy: Counter[str],
        skip: Container[str],
    ) -> JobRecord | None:
        """The oldest pending job whose kind has a free slot; ``None`` if there is none.

        ``free`` is the number of global slots left, ``kind_busy`` the slots each kind
        uses; ``skip`` holds job ids that may not start yet (the previous attempt's
        process is still exiting).
        """
        if free <= 0:
            return None
        best: JobRecord | None = None
        for name, queue in self._pending.items():
            limit = kind_limit.get(name)
            if limit is not None and kind_busy[name] >= limit:
                continue
            for job in queue:
                if job.status is not JobStatus.PENDING:
                    continue  # cancelled or already started: dropped when at the head
                if job.id in skip:
                    continue
                if best is None or job.seq < best.seq:
                    best = job
                break
        return best

    def dequeue(self, job: JobRecord) -> None:
        """Remove ``job`` from its kind's queue (it is starting), with stale heads."""
        queue = self._pending.get(job.name)
        if not queue:
            return
        try:
            queue.remove(job)
        except ValueError:
            pass
        while queue and queue[0].status is not JobStatus.PENDING:
            queue.popleft()
        if not queue:
            del self._pending[job.name]
