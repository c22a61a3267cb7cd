"""Building ``InstanceRecord``s for tests without an engine around them."""

from __future__ import annotations

import itertools
from typing import Any

from supervisor.workflows.records import (
    InstanceRecord,
    InstanceStatus,
    StepState,
    StepStatus,
)

_ids = itertools.count(1)

BINARY = bytes(range(256))


def make_instance(**fields: Any) -> InstanceRecord:
    """An instance record with plausible defaults; any field can be overridden."""
    n = next(_ids)
    values: dict[str, Any] = {
        "id": f"wfi{n:017d}",
        "seq": n,
        "workflow": "flow",
        "status": InstanceStatus.PENDING,
        "input": None,
        "created_at": 1_700_000_000.0 + n,
        "node": "test-node",
    }
    values.update(fields)
    return InstanceRecord(**values)


def full_instance(**fields: Any) -> InstanceRecord:
    """An instance with every field, and every field of its steps, set to something a
    lossy store would mangle."""
    values: dict[str, Any] = {
        "id": "e" * 20,
        "seq": 2**62,
        "workflow": "process-ördér",
        "status": InstanceStatus.RUNNING,
        "input": {"bytes": BINARY, "text": "naïve ☃ \x00", "big": 2**64 - 1, "neg": -(2**63)},
        "created_at": 1_700_000_000.123456,
        "node": "nœud-1",
        "output": [b"\xff", 0.1, None, True, {"": []}],
        "error": {"message": "boom ☠", "step": "validate", "reason": "handler", "attempt": 2},
        "current_step": "fulfill",
        "steps": {
            "validate": StepState(
                status=StepStatus.COMPLETED,
                input={"order_id": "o-1"},
                output={"total": 42.5, "raw": b"\x00\x01"},
                error=None,
                attempts=2,
                job_id="a" * 20,
                started_at=1_700_000_001.25,
                finished_at=1_700_000_002.5,
                retry_at=None,
            ),
            "charge": StepState(
                status=StepStatus.WAITING_RETRY,
                error={"message": "declined", "reason": "handler", "attempt": 1},
                attempts=1,
                job_id="b" * 20,
                started_at=1_700_000_003.0,
                retry_at=1_700_000_010.75,
            ),
            "fulfill": StepState(
                status=StepStatus.RUNNING,
                attempts=1,
                started_at=1_700_000_004.0,
                children=["c" * 20, "d" * 20],
            ),
            "later": StepState(),
        },
        "parent_id": "p" * 20,
        "branch": "shipping ✈",
        "started_at": 1_700_000_000.5,
        "finished_at": 1_700_000_099.0,
        "timeout_at": 1_700_003_600.0,
    }
    values.update(fields)
    return InstanceRecord(**values)
