"""Retention: finished jobs and their logs older than ``retention`` are purged.

Theory of operation. Purging runs on the loop, so it is cut into small pieces that
never hold the loop for long, whatever the backlog (a first start with a year of
history, say):

* one timer, ``"retention"``: a sweep every ``IDLE_INTERVAL`` seconds while nothing is
  due, every ``CATCH_UP_INTERVAL`` while a backlog remains (a sweep that found a full
  batch), so the loop serves workers and HTTP between batches;
* a sweep deletes at most ``BATCH`` jobs: one indexed read (``finished_at``, oldest
  first) and one delete transaction, then unlinks at most ``BATCH`` log files;
* nothing here runs per job event or per commit: the hot path does not know retention
  exists.

What is never purged (``protected``): a job in the job table (active, or finished with
its worker still winding down), a job with a live attempt, and the job of any step of
a workflow instance that is still active (``steps[...].job_id``: the current or last
attempt of each step). The store deletes only rows that are finished *in the store*
too, so a job retried in the same iteration is safe either way.

A store without the ``ManagedStore`` methods (a custom store from before them) cannot
delete: retention is then off, with one warning at start.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol

from supervisor import joblogs
from supervisor.errors import StoreError
from supervisor.stores.base import ManagedStore, managed_store, managed_support_missing
from supervisor.views import iso

if TYPE_CHECKING:
    from supervisor.clock import Clock
    from supervisor.config import Settings
    from supervisor.loop import Loop
    from supervisor.records import JobRecord
    from supervisor.stores.base import Store
    from supervisor.table import JobTable
    from supervisor.workflows.instances import InstanceTable


class _Runner(Protocol):
    @property
    def attempts(self) -> Mapping[str, object]: ...


class Supervisor(Protocol):
    """What retention uses of the supervisor core (which imports this module)."""

    settings: Settings
    clock: Clock
    loop: Loop
    store: Store
    table: JobTable
    instances: InstanceTable

    @property
    def runner(self) -> _Runner: ...

    def emit(self, name: str, job: JobRecord | None = None, **data: Any) -> None: ...


log = logging.getLogger(__name__)

BATCH: Final = 200  # jobs deleted (and log files unlinked) per sweep
IDLE_INTERVAL: Final = 60.0  # seconds between sweeps once caught up
CATCH_UP_INTERVAL: Final = 0.25  # seconds between sweeps while a backlog remains
TIMER: Final = "retention"


def active_step_jobs(sup: Supervisor) -> set[str]:
    """Ids of the jobs the steps of active workflow instances name (their current or
    last attempt's): the workflow engine may still read them."""
    return {
        state.job_id
        for instance in sup.instances
        if instance.active
        for state in instance.steps.values()
        if state.job_id is not None
    }


def protected(sup: Supervisor) -> set[str]:
    """Ids of jobs that must stay however old: in memory, live, or a step's of an
    active workflow instance."""
    keep = {job.id for job in sup.table}
    keep.update(sup.runner.attempts)
    keep |= active_step_jobs(sup)
    return keep


class Retention:
    """Purges old finished jobs of one supervisor, a batch per timer tick."""

    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        self.max_age = sup.settings.retention
        self.store: ManagedStore | None = managed_store(sup.store)
        if self.max_age is not None and self.store is None:
            cls = type(sup.store)
            log.warning(
                "retention is off: the store %s:%s cannot delete jobs (missing: %s; "
                "see docs/persistence.md)",
                cls.__module__,
                cls.__qualname__,
                ", ".join(managed_support_missing(sup.store)),
            )

    @property
    def enabled(self) -> bool:
        return self.max_age is not None and self.store is not None

    def start(self) -> None:
        """Arm the first sweep (soon: a backlog left by a stopped supervisor starts now)."""
        if self.enabled:
            self.sup.loop.call_later(TIMER, CATCH_UP_INTERVAL, self._tick)

    def _tick(self) -> None:
        try:
            full = self.sweep() >= BATCH
        except StoreError as exc:
            # Purging is housekeeping: a store that cannot read or delete now is tried
            # again later. (If it cannot commit either, the next commit stops the
            # supervisor, as it must; a delete promised nothing to anybody.)
            log.error("retention: %s; trying again in %g s", exc, IDLE_INTERVAL)
            full = False
        self.sup.loop.call_later(TIMER, CATCH_UP_INTERVAL if full else IDLE_INTERVAL, self._tick)

    def sweep(self) -> int:
        """Purge one batch of jobs finished more than ``retention`` ago; how many it
        tried to delete (``BATCH``: there may be more)."""
        store, max_age = self.store, self.max_age
        if store is None or max_age is None:
            return 0
        sup = self.sup
        before = sup.clock.wall() - max_age
        keep = protected(sup)
        # Read past the protected ones, so that a few kept old jobs never stall the sweep.
        candidates = store.finished_before(before, BATCH + len(keep))
        ids = [job_id for job_id, _name in candidates if job_id not in keep][:BATCH]
        deleted = store.delete_finished(ids) if ids else []
        for job_id in deleted:
            unlink_log(sup, job_id)
        if deleted:
            log.info("retention: purged %d jobs finished before %s", len(deleted), iso(before))
            sup.emit("jobs.purged", None, count=len(deleted), before=iso(before))
        return len(ids)


def unlink_log(sup: Supervisor, job_id: str) -> None:
    """Remove a deleted job's log file (one that is gone already is fine; any other
    failure is logged, never raised: the row is deleted, the file is only bytes)."""
    try:
        os.unlink(joblogs.log_path(sup.settings.log_dir, job_id))
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("cannot remove the log of deleted job %s: %s", job_id, exc)
