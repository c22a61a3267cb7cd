"""The memory store (``persist = false``): nothing survives the process, by request.

Jobs and workflow instances live in two dicts of copies, so a later in-memory change is
never "committed" behind the loop's back; reads hand out copies for the same reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from supervisor.records import JobRecord
from supervisor.states import TERMINAL, JobStatus
from supervisor.workflows.records import InstanceRecord, InstanceStatus


class MemoryStore:
    def __init__(self, settings: object = None) -> None:
        self._rows: dict[str, JobRecord] = {}
        self._instances: dict[str, InstanceRecord] = {}
        self._left: Counter[tuple[str, str]] = Counter()  # settled rows deleted or reopened
        self.write_transactions = 0

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def write(
        self,
        jobs: Sequence[JobRecord],
        soft: Sequence[JobRecord] = (),
        instances: Sequence[InstanceRecord] = (),
    ) -> None:
        # Copies, so later in-memory changes are not "committed" behind the loop's back.
        for job in jobs:
            self._rows[job.id] = job.copy()
        for job in soft:
            row = self._rows.get(job.id)
            if row is not None:
                row.last_heartbeat = job.last_heartbeat
                row.heartbeat_boottime = job.heartbeat_boottime
                row.boot_id = job.boot_id
                row.progress = job.progress
                row.progress_message = job.progress_message
                row.progress_data = job.progress_data
        for instance in instances:
            self._instances[instance.id] = instance.copy()
        self.write_transactions += 1

    def load_active(self) -> list[JobRecord]:
        active = [row.copy() for row in self._rows.values() if row.active]
        return sorted(active, key=lambda job: job.seq)

    def load_finished_since(self, since: float) -> list[JobRecord]:
        return [
            row.copy()
            for row in self._rows.values()
            if not row.active
            and row.finished_at is not None
            and row.finished_at >= since
            and row.pid is not None  # as in SQLite: without a PID no process can live
        ]

    def get(self, job_id: str) -> JobRecord | None:
        row = self._rows.get(job_id)
        return None if row is None else row.copy()

    def query(
        self,
        *,
        name: str | None = None,
        status: JobStatus | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[JobRecord]:
        rows = [
            row
            for row in self._rows.values()
            if (name is None or row.name == name) and (status is None or row.status == status)
        ]
        rows.sort(key=lambda job: (job.created_at, job.seq), reverse=True)
        return [row.copy() for row in rows[offset : offset + limit]]

    def max_seq(self) -> int:
        return max((row.seq for row in self._rows.values()), default=0)

    # --- deleting and totals (base.ManagedStore) ---------------------------------------------

    def finished_before(self, before: float, limit: int) -> list[tuple[str, str]]:
        rows = [
            row
            for row in self._rows.values()
            if row.status in TERMINAL and row.finished_at is not None and row.finished_at < before
        ]
        rows.sort(key=lambda job: job.finished_at or 0.0)
        return [(row.id, row.name) for row in rows[:limit]]

    def delete_finished(self, job_ids: Sequence[str]) -> list[str]:
        deleted = []
        for job_id in job_ids:
            row = self._rows.get(job_id)
            if row is not None and row.status in TERMINAL:
                del self._rows[job_id]
                self._left[row.name, row.status.value] += 1
                deleted.append(job_id)
        return deleted

    def tally_reopened(self, name: str, status: JobStatus) -> None:
        self._left[name, status.value] += 1

    def settled_totals(self) -> dict[tuple[str, str], int]:
        totals = Counter(self._left)
        for row in self._rows.values():
            if row.status in TERMINAL:
                totals[row.name, row.status.value] += 1
        return dict(totals)

    # --- workflow instances ---------------------------------------------------------------

    def load_active_instances(self) -> list[InstanceRecord]:
        active = [row.copy() for row in self._instances.values() if row.active]
        return sorted(active, key=lambda instance: instance.seq)

    def get_instance(self, instance_id: str) -> InstanceRecord | None:
        row = self._instances.get(instance_id)
        return None if row is None else row.copy()

    def query_instances(
        self,
        *,
        workflow: str | None = None,
        status: InstanceStatus | None = None,
        parent_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[InstanceRecord]:
        rows = [
            row
            for row in self._instances.values()
            if row.parent_id == parent_id
            and (workflow is None or row.workflow == workflow)
            and (status is None or row.status == status)
        ]
        rows.sort(key=lambda instance: (instance.created_at, instance.seq), reverse=True)
        return [row.copy() for row in rows[offset : offset + limit]]

    def max_instance_seq(self) -> int:
        return max((row.seq for row in self._instances.values()), default=0)
