"""What the supervisor persists about a workflow instance, and its status table.

Theory of operation. An ``InstanceRecord`` is exactly the row a store keeps for one run
of a workflow (docs/workflows.md, "Persistence"): its status, input, output, error, the
step it is at, and one ``StepState`` per step that has started. A parallel step's
branches run as child instances (``parent_id`` and ``branch`` name the parent and the
branch); the parent's step state lists their ids in ``children``. Everything that only
makes sense while this supervisor process lives (timers, the engine's bookkeeping) stays
out of the record, so it can always be written and read back whole.

The instance's status changes only along ``INSTANCE_TRANSITIONS``, a table kept as data
(as ``supervisor.states`` does for jobs): ``check_instance_transition`` raises
``IllegalInstanceTransition`` naming the instance, its workflow and both states. A
failed or cancelled instance may run again (resume continues from the step that failed);
a completed one never changes.

Stores keep ``steps`` as plain data (``encode_steps`` / ``decode_steps``: maps of
strings, numbers, lists and payloads, so msgpack carries them and binary outputs
round-trip exactly).

This module is a leaf: core modules (the stores, ``supervisor.core``) import it, so it
imports nothing from ``supervisor`` but ``supervisor.workflows.errors`` (itself a leaf over
``supervisor.errors``).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from typing import Any, Final

from supervisor.workflows.errors import IllegalInstanceTransition


class InstanceStatus(StrEnum):
    PENDING = "pending"  # accepted, its first step not started yet
    RUNNING = "running"  # a step is running, waiting for a retry, or about to start
    COMPLETED = "completed"
    FAILED = "failed"  # a step failed for good, or the workflow's timeout passed
    CANCELLED = "cancelled"


class StepStatus(StrEnum):
    PENDING = "pending"  # known, not started
    RUNNING = "running"  # an attempt is running (``job_id`` names its job)
    WAITING_RETRY = "waiting_retry"  # an attempt failed; the next starts at ``retry_at``
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_INSTANCE: Final = frozenset({InstanceStatus.PENDING, InstanceStatus.RUNNING})
TERMINAL_INSTANCE: Final = frozenset(
    {InstanceStatus.COMPLETED, InstanceStatus.FAILED, InstanceStatus.CANCELLED}
)

# status -> statuses it may move to. A new instance enters as PENDING.
INSTANCE_TRANSITIONS: Final[dict[InstanceStatus, frozenset[InstanceStatus]]] = {
    InstanceStatus.PENDING: frozenset(
        {
            InstanceStatus.RUNNING,
            InstanceStatus.CANCELLED,
            InstanceStatus.FAILED,  # its workflow is no longer registered: nothing can run
        }
    ),
    InstanceStatus.RUNNING: frozenset(
        {InstanceStatus.COMPLETED, InstanceStatus.FAILED, InstanceStatus.CANCELLED}
    ),
    InstanceStatus.COMPLETED: frozenset(),
    InstanceStatus.FAILED: frozenset({InstanceStatus.RUNNING}),  # resumed
    InstanceStatus.CANCELLED: frozenset({InstanceStatus.RUNNING}),  # resumed
}


def instance_transition_allowed(old: InstanceStatus, new: InstanceStatus) -> bool:
    return new in INSTANCE_TRANSITIONS[old]


def check_instance_transition(instance: InstanceRecord, new: InstanceStatus) -> None:
    """Raise ``IllegalInstanceTransition`` unless ``instance`` may move to ``new``."""
    old = instance.status
    if not instance_transition_allowed(old, new):
        raise IllegalInstanceTransition(
            f"workflow {instance.workflow!r} instance {instance.id}: "
            f"illegal status change {old} -> {new}"
        )


def instance_markdown() -> str:
    """The instance status table as Markdown (docs/workflows.md embeds exactly this text)."""
    lines = ["| instance status | may become |", "|---|---|"]
    for old, targets in INSTANCE_TRANSITIONS.items():
        shown = ", ".join(f"`{t}`" for t in sorted(targets)) or "— (final)"
        lines.append(f"| `{old}` | {shown} |")
    return "\n".join(lines) + "\n"


def new_instance_id() -> str:
    """80 random bits as 20 hex digits, like a job id: short to type, never guessed."""
    return secrets.token_hex(10)


@dataclass(slots=True, eq=False)  # identity, not field-by-field comparison
class StepState:
    """One step of one instance: where it is, what it produced, and its current attempt."""

    status: StepStatus = StepStatus.PENDING
    input: Any = None  # what the step's handler (or job) was given, once mapped
    output: Any = None
    error: dict[str, Any] | None = None  # {"message", "stack"?, "reason", "attempt", ...}
    attempts: int = 0  # attempts started so far
    job_id: str | None = None  # the job of the running (or last) attempt
    started_at: float | None = None  # start of the first attempt (wall time)
    finished_at: float | None = None
    retry_at: float | None = None  # when WAITING_RETRY ends (wall time)
    children: list[str] = field(default_factory=list)  # a parallel step's child instances

    def copy(self) -> StepState:
        return replace(self, children=list(self.children))


STEP_FIELDS: Final = tuple(f.name for f in fields(StepState))


@dataclass(slots=True, eq=False)  # identity, not field-by-field comparison
class InstanceRecord:
    """One run of a workflow: exactly the row a store keeps (``workflow_instances``)."""

    id: str
    seq: int  # order of creation within this store (ties of created_at, load order)
    workflow: str
    status: InstanceStatus
    input: Any
    created_at: float
    node: str
    output: Any = None
    error: dict[str, Any] | None = None  # {"message", "step"?, "reason", ...}
    current_step: str | None = None
    steps: dict[str, StepState] = field(default_factory=dict)  # in the order they started
    parent_id: str | None = None  # a parallel branch: the instance that runs the parallel step
    branch: str | None = None  # ... and the branch's name
    started_at: float | None = None
    finished_at: float | None = None
    timeout_at: float | None = None  # the workflow's deadline (wall time), if it has one

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_INSTANCE

    def copy(self) -> InstanceRecord:
        """A snapshot: later changes to this record's steps do not reach the copy."""
        return replace(self, steps={name: step.copy() for name, step in self.steps.items()})


INSTANCE_FIELDS: Final = tuple(f.name for f in fields(InstanceRecord))


def encode_steps(steps: Mapping[str, StepState]) -> dict[str, dict[str, Any]]:
    """``steps`` as plain data (msgpack-able when the payloads are), in their order."""
    encoded: dict[str, dict[str, Any]] = {}
    for name, step in steps.items():
        plain = {key: getattr(step, key) for key in STEP_FIELDS}
        plain["status"] = step.status.value
        plain["children"] = list(step.children)
        encoded[name] = plain
    return encoded


def decode_steps(data: Any) -> dict[str, StepState]:
    """The inverse of ``encode_steps``; ``ValueError`` naming the step for malformed data.

    A key missing from a step takes its default (a row written before that key existed);
    an unknown key or a bad status is an error rather than silently dropped data.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"steps must be a map of step name to step state, got {data!r}")
    steps: dict[str, StepState] = {}
    for name, plain in data.items():
        if not isinstance(name, str) or not isinstance(plain, Mapping):
            raise ValueError(f"step {name!r}: expected a name and a map, got {plain!r}")
        unknown = sorted(str(key) for key in plain if key not in STEP_FIELDS)
        if unknown:
            raise ValueError(f"step {name!r}: unknown keys {', '.join(unknown)}")
        values = dict(plain)
        try:
            values["status"] = StepStatus(values.get("status", StepStatus.PENDING))
        except ValueError:
            raise ValueError(f"step {name!r}: unknown status {values['status']!r}") from None
        children = values.get("children", [])
        if not isinstance(children, list | tuple) or not all(isinstance(c, str) for c in children):
            raise ValueError(f"step {name!r}: children must be instance ids, got {children!r}")
        values["children"] = list(children)
        steps[name] = StepState(**values)
    return steps
