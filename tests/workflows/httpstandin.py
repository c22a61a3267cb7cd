"""A stand-in for the workflow engine behind the HTTP API, the client and the CLI.

``StandIn`` implements ``supervisor.ports.WorkflowService`` over real ``InstanceRecord``s
kept in a dict, with the engine's documented errors, so the routes can be tested before
(and apart from) the real engine; end-to-end tests live with the engine. Instead of
running steps, an instance of a scripted workflow moves one event further each time it
is read (``get``): its next step starts, or its running step completes (or fails), so a
client that polls sees it go step by step and finish after a few polls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from supervisor.testing import SupervisorThread
from supervisor.workflows import workflow
from supervisor.workflows.definition import Workflow
from supervisor.workflows.errors import (
    InstanceFinished,
    InstanceNotFound,
    InstanceNotResumable,
    UnknownWorkflow,
)
from supervisor.workflows.records import (
    TERMINAL_INSTANCE,
    InstanceRecord,
    InstanceStatus,
    StepState,
    StepStatus,
    new_instance_id,
)

T0 = 1_790_000_000.0  # 2026-09-21T...: a fixed wall time, so rendered times are known


def _step(payload: Any, ctx: Any) -> Any:
    return payload


def flows() -> dict[str, Workflow]:
    """The stand-in's workflows: real definitions, for ``GET /workflows``'s graphs."""
    order = (
        workflow("order")
        .task("validate", handler=_step)
        .task("charge", handler=_step)
        .task("ship", handler=_step)
        .build()
    )
    broken = workflow("broken").task("first", handler=_step).task("second", handler=_step)
    stuck = workflow("stuck").task("wait", handler=_step).build()
    return {"order": order, "broken": broken.build(), "stuck": stuck}


@dataclass
class Plan:
    """How a scripted workflow goes: its steps, and the one that fails (if any)."""

    steps: tuple[str, ...]
    fails_at: str | None = None
    holds: bool = False  # its first step never ends (until cancelled)


PLANS = {
    "order": Plan(("validate", "charge", "ship")),
    "broken": Plan(("first", "second"), fails_at="second"),
    "stuck": Plan(("wait",), holds=True),
}


class StandIn:
    """``WorkflowService`` for tests; ``add`` puts any record in (rendering tests)."""

    def __init__(self) -> None:
        self.flows = flows()
        self.instances: dict[str, InstanceRecord] = {}
        self.seq = 0
        self.calls: list[str] = []  # method names, in call order

    def add(self, instance: InstanceRecord) -> InstanceRecord:
        self.instances[instance.id] = instance
        self.seq = max(self.seq, instance.seq)
        return instance

    def record(self, workflow: str, **fields: Any) -> InstanceRecord:
        """A new record with the next seq (not scripted unless ``workflow`` has a plan)."""
        self.seq += 1
        values: dict[str, Any] = {
            "id": new_instance_id(),
            "seq": self.seq,
            "workflow": workflow,
            "status": InstanceStatus.RUNNING,
            "input": {},
            "created_at": T0 + self.seq,
            "node": "test",
        }
        values.update(fields)
        return self.add(InstanceRecord(**values))

    # --- WorkflowService ------------------------------------------------------------------

    def definitions(self) -> list[dict[str, Any]]:
        self.calls.append("definitions")
        return [flow.graph() for flow in self.flows.values()]

    def start(self, name: str, input: Any) -> InstanceRecord:
        self.calls.append("start")
        if name not in self.flows:
            raise UnknownWorkflow(f"no workflow named {name!r} is registered")
        return self.record(name, input=input, status=InstanceStatus.PENDING)

    def get(self, instance_id: str) -> InstanceRecord | None:
        self.calls.append("get")
        instance = self.instances.get(instance_id)
        if instance is not None:
            self._advance(instance)
        return instance

    def children(self, instance_id: str) -> list[InstanceRecord]:
        self.calls.append("children")
        found = [i for i in self.instances.values() if i.parent_id == instance_id]
        return sorted(found, key=lambda i: i.seq)

    def list(
        self,
        *,
        workflow: str | None = None,
        status: InstanceStatus | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[InstanceRecord]:
        self.calls.append("list")
        found = [
            i
            for i in self.instances.values()
            if i.parent_id is None
            and (workflow is None or i.workflow == workflow)
            and (status is None or i.status is status)
        ]
        found.sort(key=lambda i: i.seq, reverse=True)
        return found[offset : offset + limit]

    def cancel(self, instance_id: str, reason: str = "cancelled") -> InstanceRecord:
        self.calls.append("cancel")
        instance = self._find(instance_id)
        if instance.status in TERMINAL_INSTANCE:
            raise InstanceFinished(
                f"workflow {instance.workflow!r} instance {instance_id} is already "
                f"{instance.status}"
            )
        for step in instance.steps.values():
            if step.status in (StepStatus.RUNNING, StepStatus.WAITING_RETRY):
                step.status = StepStatus.CANCELLED
        instance.status = InstanceStatus.CANCELLED
        instance.error = {"message": reason, "reason": "cancelled"}
        instance.finished_at = T0 + 100
        return instance

    def resume(self, instance_id: str) -> InstanceRecord:
        self.calls.append("resume")
        instance = self._find(instance_id)
        if instance.status not in (InstanceStatus.FAILED, InstanceStatus.CANCELLED):
            raise InstanceNotResumable(
                f"workflow {instance.workflow!r} instance {instance_id} is "
                f"{instance.status}; only a failed or cancelled instance can be resumed"
            )
        instance.status = InstanceStatus.RUNNING
        instance.error = None
        instance.finished_at = None
        if instance.current_step is not None and instance.current_step in instance.steps:
            instance.steps[instance.current_step].status = StepStatus.PENDING
        return instance

    # --- the script -----------------------------------------------------------------------

    def _find(self, instance_id: str) -> InstanceRecord:
        instance = self.instances.get(instance_id)
        if instance is None:
            raise InstanceNotFound(f"no workflow instance with id {instance_id!r}")
        return instance

    def _advance(self, instance: InstanceRecord) -> None:
        """One event further along the plan: a step starts, or the running one ends."""
        plan = PLANS.get(instance.workflow)
        if plan is None or not instance.active or instance.parent_id is not None:
            return
        now = T0 + 10 + len(instance.steps)
        if instance.status is InstanceStatus.PENDING:
            instance.status = InstanceStatus.RUNNING
            instance.started_at = now
        running = instance.current_step
        step = instance.steps.get(running) if running is not None else None
        if step is None or step.status is StepStatus.PENDING:  # start the next step
            name = plan.steps[0] if running is None else running
            state = instance.steps.setdefault(name, StepState())
            state.status = StepStatus.RUNNING
            state.attempts += 1
            state.started_at = now
            instance.current_step = name
            return
        if plan.holds:
            return
        if running == plan.fails_at:
            step.status = StepStatus.FAILED
            step.error = {"message": f"ValueError: {running} refused", "reason": "failed"}
            step.finished_at = now
            instance.status = InstanceStatus.FAILED
            instance.error = {"message": step.error["message"], "step": running}
            instance.finished_at = now
            return
        step.status = StepStatus.COMPLETED
        step.output = {"done": running}
        step.finished_at = now
        index = plan.steps.index(running) if running in plan.steps else len(plan.steps)
        if index + 1 < len(plan.steps):
            instance.current_step = plan.steps[index + 1]  # starts at the next read
            return
        instance.status = InstanceStatus.COMPLETED
        instance.output = {"shipped": instance.input}
        instance.finished_at = now


def without_engine(sv: SupervisorThread) -> SupervisorThread:
    """``sv`` as an application that embeds ``Supervisor`` without attaching the workflow
    engine sees it (``serve`` and ``SupervisorThread`` always attach one)."""
    sv.call(lambda: setattr(sv.sup, "workflows", None))
    return sv
