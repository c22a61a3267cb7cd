"""The in-memory table of active workflow instances: what the next commit writes.

Theory of operation (as ``supervisor.table.JobTable`` for jobs). The table holds every
active instance (pending or running) and finished ones not yet forgotten. Whoever
changes an instance changes the record in place and then calls ``mark`` (or
``set_status``, which also checks the transition table of ``records``); the instance is
then dirty. Once per loop iteration the supervisor's commit takes the dirty instances
(``take_changes``) and hands them to the store in the same transaction as the job
changes of that iteration, so a step's job and the instance that waits for it never
disagree after a crash. A failed commit puts them back (``restore``) so that the next
attempt writes them again. A finished instance leaves memory (``forget``) once its last
change is committed.

Instance changes have one grade only (no soft changes): a step's progress is the job's
progress, batched with the job's heartbeats.

This module is a leaf: ``supervisor.core`` imports it, so it imports nothing from
``supervisor`` but the leaves ``records`` and ``errors`` of this package.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from supervisor.workflows.errors import IllegalInstanceTransition
from supervisor.workflows.records import (
    InstanceRecord,
    InstanceStatus,
    check_instance_transition,
)


class InstanceTable:
    def __init__(self) -> None:
        self._instances: dict[str, InstanceRecord] = {}
        self._changed: dict[str, InstanceRecord] = {}
        self._children: dict[str, dict[str, InstanceRecord]] = {}  # parent id -> children
        self._next_seq = 1

    # --- reading -----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._instances)

    def __iter__(self) -> Iterator[InstanceRecord]:
        """Every instance in memory (active ones, and finished ones not yet forgotten)."""
        return iter(self._instances.values())

    def __contains__(self, instance_id: object) -> bool:
        return instance_id in self._instances

    def get(self, instance_id: str) -> InstanceRecord | None:
        return self._instances.get(instance_id)

    def active(self) -> list[InstanceRecord]:
        """The pending and running instances, in ``seq`` order (the order they began)."""
        return sorted((i for i in self._instances.values() if i.active), key=lambda i: i.seq)

    def children(self, parent_id: str) -> list[InstanceRecord]:
        """The child instances (parallel branches) of ``parent_id`` in memory, by ``seq``."""
        return sorted(self._children.get(parent_id, {}).values(), key=lambda i: i.seq)

    @property
    def has_changes(self) -> bool:
        return bool(self._changed)

    def has_pending_changes(self, instance_id: str) -> bool:
        return instance_id in self._changed

    # --- entering and leaving -------------------------------------------------------------

    def next_seq(self) -> int:
        """The ``seq`` of the next new instance: larger than any in memory or ``advance_seq``."""
        seq = self._next_seq
        self._next_seq += 1
        return seq

    def advance_seq(self, seq: int) -> None:
        """Make every later ``next_seq`` larger than ``seq`` (the store's largest at start,
        so that a new instance never reuses the seq of a finished one)."""
        self._next_seq = max(self._next_seq, seq + 1)

    def load(self, instance: InstanceRecord) -> None:
        """Insert an instance read back from the store at startup: nothing to write."""
        if instance.id in self._instances:
            raise IllegalInstanceTransition(
                f"workflow {instance.workflow!r} instance {instance.id} is already in the table"
            )
        self._instances[instance.id] = instance
        self._next_seq = max(self._next_seq, instance.seq + 1)
        if instance.parent_id is not None:
            self._children.setdefault(instance.parent_id, {})[instance.id] = instance

    def insert(self, instance: InstanceRecord) -> None:
        """Insert a brand-new instance (PENDING); it is written at the next commit."""
        if instance.status is not InstanceStatus.PENDING:
            raise IllegalInstanceTransition(
                f"workflow {instance.workflow!r} instance {instance.id} cannot enter as "
                f"{instance.status}; a new instance is {InstanceStatus.PENDING}"
            )
        self.load(instance)
        self._changed[instance.id] = instance

    def forget(self, instance_id: str) -> None:
        """Drop a finished instance from memory once its last change is committed."""
        instance = self._instances.get(instance_id)
        if instance is None:
            return
        if instance.active:
            raise IllegalInstanceTransition(
                f"workflow {instance.workflow!r} instance {instance_id} is {instance.status}; "
                "only finished instances leave the table"
            )
        if instance_id in self._changed:
            raise IllegalInstanceTransition(
                f"workflow {instance.workflow!r} instance {instance_id} has uncommitted changes"
            )
        del self._instances[instance_id]
        if instance.parent_id is not None:
            siblings = self._children.get(instance.parent_id)
            if siblings is not None:
                siblings.pop(instance_id, None)
                if not siblings:
                    del self._children[instance.parent_id]

    # --- changing -------------------------------------------------------------------------

    def mark(self, instance: InstanceRecord) -> None:
        """``instance`` changed (its steps, output, current step ...): commit it next."""
        if self._instances.get(instance.id) is not instance:
            raise IllegalInstanceTransition(
                f"workflow {instance.workflow!r} instance {instance.id} is not in the table"
            )
        self._changed[instance.id] = instance

    def set_status(self, instance: InstanceRecord, new: InstanceStatus, **changes: Any) -> None:
        """Move ``instance`` to ``new`` (checked), apply ``changes`` to its fields, mark it."""
        check_instance_transition(instance, new)
        if "status" in changes:
            raise IllegalInstanceTransition("the status changes through the new status only")
        for name, value in changes.items():
            setattr(instance, name, value)
        instance.status = new
        self.mark(instance)

    # --- committing -----------------------------------------------------------------------

    def take_changes(self) -> list[InstanceRecord]:
        """Hand over the changed instances (in the order they first changed) for a commit."""
        changed = list(self._changed.values())
        self._changed.clear()
        return changed

    def restore(self, changes: list[InstanceRecord]) -> None:
        """Put changes back after a failed commit, so the next attempt writes them again."""
        for instance in changes:
            self._changed.setdefault(instance.id, instance)
