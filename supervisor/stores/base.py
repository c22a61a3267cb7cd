"""The store interface (the "adapter"; docs/persistence.md): everything the supervisor persists.

All calls happen on the loop thread. ``write`` is the only writer and is one
transaction: full rows for jobs with hard changes, heartbeat/progress columns for jobs
with only soft changes. The supervisor calls it at most once per loop iteration for
hard changes and once per flush interval for soft ones, and releases acks, HTTP
responses and events only after it returns. A store raises ``StoreError`` when it cannot
commit; the supervisor then stops (workers keep running and re-attach after a restart).

Any class with these methods can be named in config as ``store = "package.module:Class"``;
it is constructed with the ``Settings`` object.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from supervisor.records import JobRecord
from supervisor.states import JobStatus


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
