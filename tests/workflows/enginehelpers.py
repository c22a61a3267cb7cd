"""Shared by the engine tests: a supervisor with workflow modules, and waiting for instances."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from supervisor.testing import TEST_RUN_VAR, SupervisorThread, wait_for
from supervisor.workflows.engine import WorkflowEngine
from supervisor.workflows.records import InstanceRecord
from tests.workflows.conftest import Modules

FINAL = ("completed", "failed", "cancelled")


class Flows:
    """A started supervisor whose ``workflows`` are the given modules' ``flows`` lists."""

    def __init__(self, sv: SupervisorThread, counts: Path) -> None:
        self.sv = sv
        self.counts = counts

    @property
    def engine(self) -> WorkflowEngine:
        engine = self.sv.engine
        assert engine is not None
        return engine

    def start(self, name: str, input: Any = None) -> str:
        """Start an instance of ``name``; its id once committed."""
        return self.sv.call(lambda: self.engine.start(name, input).id)

    def get(self, instance_id: str) -> InstanceRecord:
        """A snapshot of the instance."""

        def snapshot() -> InstanceRecord:
            found = self.engine.get(instance_id)
            assert found is not None, f"no instance {instance_id}"
            return found.copy()

        return self.sv.call(snapshot)

    def wait(self, instance_id: str, *statuses: str, timeout: float = 30.0) -> InstanceRecord:
        """Wait until the instance reaches one of ``statuses`` (default: a final one)."""
        wanted = statuses or FINAL

        def reached() -> InstanceRecord | None:
            found = self.get(instance_id)
            return found if found.status in wanted else None

        return wait_for(reached, timeout, 0.05, f"instance {instance_id} to be {wanted}")

    def wait_step(self, instance_id: str, step: str, *statuses: str) -> InstanceRecord:
        """Wait until ``step`` of the instance is in one of ``statuses``."""

        def reached() -> InstanceRecord | None:
            found = self.get(instance_id)
            state = found.steps.get(step)
            return found if state is not None and state.status in statuses else None

        return wait_for(reached, 30, 0.05, f"step {step} to be {statuses}")

    def runs(self, name: str) -> int:
        """How many times a handler counted a run in ``counts/NAME``."""
        path = self.counts / name
        return len(path.read_text()) if path.exists() else 0

    def events(self, instance_id: str) -> list[str]:
        """The names of the workflow events of the instance, in order."""
        with self.sv._events_lock:
            return [
                e.name
                for e in self.sv.events
                if e.name.startswith("workflow.") and e.data.get("id") == instance_id
            ]


COUNTING = """
import os
from pathlib import Path

COUNTS = Path(os.environ["ENGINE_COUNTS"])


def count(name):
    with open(COUNTS / name, "a") as f:
        f.write("x")
"""


def make_flows(
    modules: Modules,
    start: Callable[..., SupervisorThread],
    marker: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    *sources: str,
    **options: Any,
) -> Flows:
    """Write each source (after the ``count(name)`` helper) as a module whose ``flows`` list is
    registered, and start a supervisor with those workflows."""
    counts = tmp_path / "counts"
    counts.mkdir(exist_ok=True)
    monkeypatch.setenv(TEST_RUN_VAR, marker)
    monkeypatch.setenv("ENGINE_COUNTS", str(counts))
    names = [modules.write(COUNTING + source) for source in sources]
    options.setdefault("workflow_pool_size", 1)
    sv = start(
        workflows=[f"{name}:flows" for name in names],
        python_path=[str(modules.folder)],
        **options,
    )
    return Flows(sv, counts)
