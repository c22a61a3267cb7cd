"""A real SQLite store that refuses to commit state changes while a trigger file exists.

Stands in for a full disk where a test cannot mount a small file system: named in a
test's config as ``store = "tests.supervisor.failingstore:FailingStore"``, it fails every
write that carries hard changes (job rows or workflow instances) once
``<state_dir>/refuse-commits`` exists, as SQLite does on a full disk (heartbeat-only
writes still pass, so that the commit that fails is the one of the change the test makes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from supervisor.errors import StoreError
from supervisor.records import JobRecord
from supervisor.stores import SqliteStore
from supervisor.workflows.records import InstanceRecord

TRIGGER = "refuse-commits"


class FailingStore(SqliteStore):
    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.trigger = settings.state_dir / TRIGGER

    def write(
        self,
        jobs: Sequence[JobRecord],
        soft: Sequence[JobRecord] = (),
        instances: Sequence[InstanceRecord] = (),
    ) -> None:
        if (jobs or instances) and self.trigger.exists():
            raise StoreError(f"SQLite store {self.path}: commit failed: database or disk is full")
        super().write(jobs, soft, instances)
