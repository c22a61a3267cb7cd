"""The store interface (the "adapter"; docs/persistence.md): everything the supervisor persists.

All calls happen on the loop thread. ``write`` is the only writer and is one
transaction: full rows for jobs with hard changes, heartbeat/progress columns for jobs
with only soft changes, and full rows for the workflow instances that changed. The
supervisor calls it at most once per loop iteration for hard changes and once per flush
interval for soft ones, and releases acks, HTTP responses and events only after it
returns. A store raises ``StoreError`` when it cannot commit; the supervisor then stops
(workers keep running and re-attach after a restart).

Any class with these methods can be named in config as ``store = "package.module:Class"``;
it is constructed with the ``Settings`` object.

Two levels. ``Store`` is what every store must provide: the jobs. ``InstanceStore`` adds
workflow instances (``write`` takes them as a third argument, plus three readers); both
shipped stores are instance stores. A custom store written before workflows existed is
still a ``Store``: it runs jobs as before, because the supervisor calls ``write(jobs,
soft)`` with two arguments whenever no instance changed. Only when an instance has to be
written (or read) does ``require_instance_store`` refuse it, with an
``InstancesUnsupported`` error naming the store and what it lacks.

``ManagedStore`` adds what deleting, retention and the restart-surviving totals of
``GET /metrics`` need (docs/persistence.md, "Deleting and retention"): both shipped
stores are managed stores. A store without these methods still runs jobs; then
``DELETE /jobs/{id}`` answers 501, retention is off (the supervisor warns once at start)
and the settled totals count from zero at each start.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Final, Protocol, runtime_checkable

from supervisor.errors import StoreError
from supervisor.records import JobRecord
from supervisor.states import JobStatus
from supervisor.workflows.records import InstanceRecord, InstanceStatus


@runtime_checkable
class Store(Protocol):
    def open(self) -> None:
        """Connect, create or migrate the schema."""

    def close(self) -> None: ...

    def write(self, jobs: Sequence[JobRecord], soft: Sequence[JobRecord] = ()) -> None:
        """Commit ``jobs`` whole and the soft fields of ``soft``, atomically: the
        heartbeat (``last_heartbeat``, ``heartbeat_boottime``, ``boot_id``) and the
        progress (``progress``, ``progress_message``, ``progress_data``)."""

    def load_active(self) -> list[JobRecord]:
        """Every job that is pending, scheduled or running, in ``seq`` order."""

    def load_finished_since(self, since: float) -> list[JobRecord]:
        """Jobs that finished at or after ``since`` (wall time) whose process may live."""

    def get(self, job_id: str) -> JobRecord | None: ...

    def query(
        self,
        *,
        name: str | None = None,
        status: JobStatus | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[JobRecord]:
        """Jobs newest first, filtered by name and/or status."""

    def max_seq(self) -> int: ...


@runtime_checkable
class InstanceStore(Store, Protocol):
    """A store that also persists workflow instances (docs/workflows.md, "Persistence")."""

    def write(
        self,
        jobs: Sequence[JobRecord],
        soft: Sequence[JobRecord] = (),
        instances: Sequence[InstanceRecord] = (),
    ) -> None:
        """As ``Store.write``, and ``instances`` whole, in the SAME transaction: all of
        it is committed, or (``StoreError``) none of it."""

    def load_active_instances(self) -> list[InstanceRecord]:
        """Every pending or running instance (children included), in ``seq`` order."""

    def get_instance(self, instance_id: str) -> InstanceRecord | None: ...

    def query_instances(
        self,
        *,
        workflow: str | None = None,
        status: InstanceStatus | None = None,
        parent_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[InstanceRecord]:
        """Instances newest first (``created_at``, then ``seq``), filtered by workflow
        and/or status: top-level instances only, or the children of ``parent_id``."""

    def max_instance_seq(self) -> int:
        """The largest ``seq`` of any instance ever written (finished ones too), or 0."""


@runtime_checkable
class ManagedStore(Store, Protocol):
    """A store that can delete finished jobs and count the jobs that ever settled.

    Deleted rows are tallied (per job kind and final status) in the same transaction
    that deletes them, and so are rows a manual retry takes back from a final status,
    so that ``settled_totals`` never goes down: the counters of ``GET /metrics`` seeded
    from it survive restarts, deletions and retention.
    """

    def finished_before(self, before: float, limit: int) -> list[tuple[str, str]]:
        """``(id, name)`` of at most ``limit`` finished jobs (completed, failed,
        cancelled) whose ``finished_at`` is earlier than ``before``, oldest first."""

    def delete_finished(self, job_ids: Sequence[str]) -> list[str]:
        """Delete those of ``job_ids`` that are finished, in one transaction, tallying
        each; the ids deleted. An active or unknown id is left alone."""

    def tally_reopened(self, name: str, status: JobStatus) -> None:
        """Count one job of kind ``name`` that leaves the final ``status`` (a manual
        retry), so ``settled_totals`` keeps counting it there."""

    def settled_totals(self) -> dict[tuple[str, str], int]:
        """``(name, status) -> jobs`` that ever reached that final status: the rows in
        it now plus the tallied ones that left it."""


MANAGED_METHODS: Final = ("finished_before", "delete_finished", "tally_reopened", "settled_totals")


def managed_support_missing(store: object) -> list[str]:
    """The ``ManagedStore`` methods ``store`` lacks."""
    return [m for m in MANAGED_METHODS if not callable(getattr(store, m, None))]


def managed_store(store: Store) -> ManagedStore | None:
    """``store`` if it can delete and count finished jobs, else ``None``."""
    if managed_support_missing(store):
        return None
    return store  # type: ignore[return-value]  # checked above


class DeleteUnsupported(StoreError):
    """A job deletion met a custom store without ``delete_finished``."""

    code = "delete_unsupported"
    http_status = 501


# The methods an instance store adds (``write`` must also accept a third argument).
INSTANCE_METHODS: Final = (
    "load_active_instances",
    "get_instance",
    "query_instances",
    "max_instance_seq",
)


class InstancesUnsupported(StoreError):
    """A workflow instance met a store that cannot persist instances (a custom store
    written before workflows existed)."""

    code = "instances_unsupported"
    http_status = 501


def instance_support_missing(store: object) -> list[str]:
    """What ``store`` lacks to persist instances: method names, or ``write(..., instances)``."""
    missing = [m for m in INSTANCE_METHODS if not callable(getattr(store, m, None))]
    write = getattr(store, "write", None)
    try:
        inspect.signature(write).bind((), (), ())  # type: ignore[arg-type]
    except (TypeError, ValueError):  # not callable, or no third parameter
        missing.insert(0, "write(jobs, soft, instances)")
    return missing


def instance_store(store: Store) -> InstanceStore | None:
    """``store`` if it persists workflow instances, else ``None``."""
    if instance_support_missing(store):
        return None
    return store  # type: ignore[return-value]  # checked above, methods and signature


def require_instance_store(store: Store, workflow: str | None = None) -> InstanceStore:
    """``store`` as an ``InstanceStore``, or ``InstancesUnsupported`` saying what it lacks.

    The workflow engine calls this before it creates an instance, so that a store
    without instance support is refused with a clear error (naming ``workflow`` when
    given) instead of failing the commit that would carry the instance.
    """
    missing = instance_support_missing(store)
    if not missing:
        return store  # type: ignore[return-value]  # checked above
    cls = type(store)
    what = f"workflow {workflow!r} cannot run: " if workflow is not None else ""
    raise InstancesUnsupported(
        f"{what}the store {cls.__module__}:{cls.__qualname__} does not persist workflow "
        f"instances (missing: {', '.join(missing)}); see docs/persistence.md"
    )
