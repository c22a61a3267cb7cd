"""The workflow engine: ``ports.WorkflowService`` over the driver, and its set-up.

Theory of operation (docs/workflows.md, "The engine"). ``WorkflowEngine`` is the
``Driver`` (``driver.py``: instances moved from step to step as their jobs settle) plus
what the rest of the supervisor calls: the ``WorkflowService`` methods (HTTP API, CLI,
embedded API), the ``workflow-step`` kind and its warm pool (``register_step_kind``,
``ensure_step_kind``), and ``resume_active``, which a restarted supervisor calls once.

What lives only in memory is rebuilt from the records at start (``resume_active``):
which job belongs to which step, and the timers: retries (from a step's ``retry_at``),
step timeouts (from the running job's creation) and workflow timeouts (from
``timeout_at``). A step job that settled while nobody listened (recovery declared its
worker lost during ``open()``) is handled then.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from supervisor.core import _check_data
from supervisor.records import JobKind, JobRecord
from supervisor.states import JobStatus
from supervisor.stores.base import instance_store, require_instance_store
from supervisor.workflows import registry
from supervisor.workflows.definition import ParallelStep, Workflow
from supervisor.workflows.driver import Driver
from supervisor.workflows.errors import InstanceFinished, InstanceNotResumable, UnknownWorkflow
from supervisor.workflows.pool import WarmPool
from supervisor.workflows.records import InstanceRecord, InstanceStatus, StepStatus
from supervisor.workflows.stepping import STEP_ENTRY, STEP_KIND

if TYPE_CHECKING:
    from supervisor.core import Supervisor


class WorkflowEngine(Driver):
    """``ports.WorkflowService``: starts, drives, cancels and resumes instances (loop thread).

    ``pool_size`` overrides ``workflow_pool_size`` for the step workers' warm pool.
    """

    def __init__(self, sup: Supervisor, *, pool_size: int | None = None) -> None:
        super().__init__(sup)
        self.pool: WarmPool | None = None
        self._pool_size = pool_size

    # --- set-up and shutdown ---------------------------------------------------------------

    def ensure_step_kind(self) -> None:
        """Register the ``workflow-step`` job kind for the registered workflows' modules and
        install its warm pool (once; again after more workflows were registered)."""
        register_step_kind(self.sup)
        if self.pool is None:
            self.pool = WarmPool(STEP_ENTRY, size=self._pool_size)
            self.pool.install(self.sup.runner, STEP_KIND)

    def close(self) -> None:
        """Stop the warm pool's waiting workers (steps already running carry on)."""
        if self.pool is not None:
            self.pool.close()
        if self._job_settled in self.sup.settled:
            self.sup.settled.remove(self._job_settled)
        if self._job_progressed in self.sup.progressed:
            self.sup.progressed.remove(self._job_progressed)

    def resume_active(self) -> None:
        """After ``open()``: watch the running steps' jobs again, re-arm the timers, and
        handle step jobs that settled before the engine listened."""
        settled: list[JobRecord] = []
        for instance in self.sup.instances.active():  # by seq: parents before children
            flow = self._flow(instance)
            if flow is None:
                self._finish(
                    instance,
                    InstanceStatus.FAILED,
                    error={
                        "message": f"workflow {instance.workflow!r} is not registered any more",
                        "reason": "config",
                    },
                )
                continue
            if instance.status is InstanceStatus.PENDING:
                self._begin(instance, flow)
                continue
            if instance.timeout_at is not None:
                self.timers.arm_workflow_timeout(instance)
            for name, state in instance.steps.items():
                if state.status is StepStatus.WAITING_RETRY:
                    self.timers.arm_retry(instance, name, state)
                elif state.status is StepStatus.RUNNING and state.job_id is not None:
                    self._watch[state.job_id] = (instance.id, name)
                    job = self.sup.get(state.job_id)
                    if job is None or not job.active:
                        settled.append(job or self._lost_job(state.job_id))
                    else:
                        self._arm_step_timeout(instance, flow, name, job.created_at)
        for job in settled:
            self._job_settled(job)

    def _lost_job(self, job_id: str) -> JobRecord:
        return JobRecord(
            id=job_id,
            name=STEP_KIND,
            data=None,
            status=JobStatus.FAILED,
            seq=0,
            created_at=0.0,
            node="",
            error={"message": "the step's job is missing from the store", "reason": "lost"},
        )

    # --- WorkflowService ---------------------------------------------------------------------

    def definitions(self) -> list[dict[str, Any]]:
        """Every registered workflow: ``{"name", "start", "timeout", "steps", "graph"}``."""
        found = []
        for name, flow in sorted(registry.registered().items()):
            graph = flow.graph()
            found.append(
                {
                    "name": name,
                    "start": flow.start,
                    "timeout": flow.timeout,
                    "steps": graph["steps"],
                    "graph": graph,
                }
            )
        return found

    def start(self, name: str, input: Any) -> InstanceRecord:
        """A new running instance of the registered workflow ``name``."""
        if "/" in name:
            raise UnknownWorkflow(f"{name!r} is a branch; start the workflow that holds it")
        flow = registry.find(name)
        require_instance_store(self.sup.store, name)
        check_data(input)
        self.ensure_step_kind()
        instance = self._new_instance(flow, input)
        self._begin(instance, flow)
        return instance

    def get(self, instance_id: str) -> InstanceRecord | None:
        instance = self.sup.instances.get(instance_id)
        if instance is not None:
            return instance
        store = instance_store(self.sup.store)
        return store.get_instance(instance_id) if store is not None else None

    def children(self, instance_id: str) -> list[InstanceRecord]:
        """The branch instances of ``instance_id``'s parallel steps, oldest first."""
        found = {child.id: child for child in self.sup.instances.children(instance_id)}
        store = instance_store(self.sup.store)
        if store is not None:
            for child in store.query_instances(parent_id=instance_id, limit=10_000):
                found.setdefault(child.id, child)
        return sorted(found.values(), key=lambda child: (child.created_at, child.seq))

    # --- the seed's names for the same calls (docs/workflows.md) ---------------------------

    def register(self, *workflows: Workflow) -> None:
        """Register built workflows in-process (their module must be importable by step
        workers), and make sure the step kind and its pool exist."""
        registry.register(*workflows)
        self.ensure_step_kind()

    def get_instance(self, instance_id: str) -> InstanceRecord | None:
        return self.get(instance_id)

    def get_instances(
        self, name: str | None = None, status: InstanceStatus | None = None
    ) -> list[InstanceRecord]:
        """Top-level instances of ``name`` (all workflows when ``None``), newest first."""
        return self.list(workflow=name, status=status, limit=1000)

    def list(
        self,
        *,
        workflow: str | None = None,
        status: InstanceStatus | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[InstanceRecord]:
        """Top-level instances, newest first (in memory ones as they are now)."""
        store = instance_store(self.sup.store)
        if store is None:
            return []
        rows = store.query_instances(workflow=workflow, status=status, limit=limit, offset=offset)
        return [self.sup.instances.get(row.id) or row for row in rows]

    def cancel(self, instance_id: str, reason: str = "cancelled") -> InstanceRecord:
        """Cancel the instance, its branches and its running steps (their workers stop)."""
        instance = self._held(instance_id)
        if not instance.active:
            raise InstanceFinished(
                f"workflow {instance.workflow!r} instance {instance_id} is already "
                f"{instance.status}"
            )
        self._stop_instance(
            instance, InstanceStatus.CANCELLED, {"message": reason, "reason": "cancelled"}
        )
        return instance

    def resume(self, instance_id: str) -> InstanceRecord:
        """Continue a failed or cancelled instance from the step that did not complete."""
        instance = self._held(instance_id)
        if instance.status not in (InstanceStatus.FAILED, InstanceStatus.CANCELLED):
            raise InstanceNotResumable(
                f"workflow {instance.workflow!r} instance {instance_id} is {instance.status}; "
                "only a failed or cancelled instance can be resumed"
            )
        if instance.parent_id is not None:
            raise InstanceNotResumable(
                f"workflow {instance.workflow!r} instance {instance_id} is a branch of "
                f"{instance.parent_id}; resume that instance"
            )
        flow = self._flow(instance)
        if flow is None:
            raise UnknownWorkflow(f"no workflow named {instance.workflow!r} is registered")
        self.ensure_step_kind()
        self._resume_instance(instance, flow)
        return instance

    def _resume_instance(self, instance: InstanceRecord, flow: Workflow) -> None:
        """Run a failed or cancelled instance again from ``current_step`` (a parallel step:
        its branches that did not complete), with a fresh deadline."""
        now = self.sup.clock.wall()
        timeout_at = now + flow.timeout if flow.timeout is not None else None
        self.sup.instances.set_status(
            instance,
            InstanceStatus.RUNNING,
            output=None,
            error=None,
            finished_at=None,
            timeout_at=timeout_at,
        )
        if timeout_at is not None:
            self.timers.arm_workflow_timeout(instance)
        self._emit("workflow.started", instance, input=instance.input, resumed=True)
        name = instance.current_step or flow.start
        step = flow.step(name)
        state = instance.steps.get(name)
        if not isinstance(step, ParallelStep) or state is None or not state.children:
            self._enter(instance, flow, name)
            return
        state.status = StepStatus.RUNNING
        state.error = None
        state.finished_at = None
        self.sup.instances.mark(instance)
        self._emit("workflow.step.started", instance, step=name, attempt=state.attempts)
        for child_id in state.children:
            child = self._held(child_id)
            branch_flow = self._flow(child)
            if child.status is not InstanceStatus.COMPLETED and branch_flow is not None:
                self._resume_instance(child, branch_flow)
        if state.status is StepStatus.RUNNING:  # branches that end at once may have decided it
            self._parallel_settle(instance, flow, name, state)


def register_step_kind(sup: Supervisor) -> None:
    """Register (or update) the ``workflow-step`` job kind: this Python running the pool
    worker over ``python_path`` and the registered workflows' modules, one attempt per
    job (retries are the engine's), the default heartbeat timeout."""
    settings = sup.settings
    args = ["-m", "supervisor.workflows.poolworker"]
    for folder in settings.python_path:
        args += ["--path", str(folder)]
    modules = sorted({flow.module for flow in registry.registered().values() if flow.module})
    # The step runner first: a worker that imported it while waiting starts its first
    # step at once, instead of paying ~30 ms of imports (pydantic among them) on the clock.
    for module in (STEP_ENTRY.partition(":")[0], *modules):
        args += ["--import", module]
    kind = sup.kinds.get(STEP_KIND)
    if kind is None or kind.args != tuple(args):
        sup.register(
            JobKind(
                name=STEP_KIND,
                command=sys.executable,
                args=tuple(args),
                heartbeat_timeout=settings.default_heartbeat_timeout,
                max_attempts=1,
            )
        )


def check_data(value: Any) -> None:
    """Refuse a workflow input the store could not carry (``BadRequest``), as for a job."""
    _check_data(value)
