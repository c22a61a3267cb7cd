"""The loop side of the engine: instances moved from step to step as their jobs settle.

Theory of operation (docs/workflows.md, "The engine"). The driver never runs user code.
Each step attempt is one or more jobs (``workflow-step`` jobs, run by step workers from
the warm pool, and for a legacy ``job=`` task the registered job itself); the driver
enqueues them, remembers which step each belongs to (``_watch``) and hears about them
through ``Supervisor.settled``, which the core calls once per job when it reaches a final
status, on the loop, in the iteration that decided it. Whatever the driver changes there
(the step's output, the next step's job, the instance's status) is committed in the same
store transaction as the job's final status, so after a crash an instance and its step
job never disagree.

A step is entered afresh (``_enter``: its state moves to the end of ``steps``, so the
``prev`` rule of ``stepping`` holds through loops and resumes), then each attempt runs
(``_start_attempt``) until the step completes (``_step_completed``: on to
``next_of``, or the instance completes), waits for a retry, or fails (``_step_failed``:
the instance fails). A parallel step runs each branch as a child instance; a child that
finishes reports to its parent's step (``_child_finished`` and ``_parallel_settle``).
Finished instances leave memory after their last commit, children with their parent.
Events (``workflow.*``, channel ``workflow:{id}``) are released after the commit that
holds the change they report.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from supervisor.errors import JobvisorError
from supervisor.records import JobRecord
from supervisor.states import JobStatus
from supervisor.stores.base import instance_store
from supervisor.workflows import registry
from supervisor.workflows.definition import (
    ChoiceStep,
    EndStep,
    ParallelStep,
    PassStep,
    RetryPolicy,
    TaskStep,
    Workflow,
)
from supervisor.workflows.errors import InstanceNotFound, UnknownWorkflow, parse_failure
from supervisor.workflows.records import (
    InstanceRecord,
    InstanceStatus,
    StepState,
    StepStatus,
    new_instance_id,
)
from supervisor.workflows.stepping import (
    NO_PREV,
    STEP_KIND,
    failure_error,
    own_prev,
    step_job_data,
    step_phase,
)
from supervisor.workflows.timers import StepTimers

if TYPE_CHECKING:
    from supervisor.core import Supervisor

# Steps that may run one inside the other without a job (pass, end, choice-free chains):
# a loop of pass steps must fail its instance, not exhaust the loop thread's stack.
MAX_CHAIN = 100
LIVE_STEP = (StepStatus.RUNNING, StepStatus.WAITING_RETRY)
STOPPED = (InstanceStatus.FAILED, InstanceStatus.CANCELLED)


class Driver:
    """Moves the instances of one supervisor (loop thread); ``WorkflowEngine`` builds on it."""

    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        self._watch: dict[str, tuple[str, str]] = {}  # job id -> (instance id, step name)
        self._chain = 0  # steps entered one inside the other right now
        self.timers = StepTimers(
            sup.loop,
            sup.clock,
            retry=self._retry_due,
            step_timeout=self._step_timed_out,
            workflow_timeout=self._timed_out,
        )
        sup.settled.append(self._job_settled)
        sup.progressed.append(self._job_progressed)

    # --- instances ---------------------------------------------------------------------------

    def _flow(self, instance: InstanceRecord) -> Workflow | None:
        try:
            return registry.find(instance.workflow)
        except UnknownWorkflow:
            return None

    def _held(self, instance_id: str) -> InstanceRecord:
        """The instance in memory, loaded back from the store if it left it."""
        instance = self.sup.instances.get(instance_id)
        if instance is not None:
            return instance
        store = instance_store(self.sup.store)
        stored = store.get_instance(instance_id) if store is not None else None
        if stored is None:
            raise InstanceNotFound(f"no workflow instance with id {instance_id!r}")
        self.sup.instances.load(stored)
        self._forget_later(stored)  # unless it runs again before the next commit
        return stored

    def _new_instance(
        self,
        flow: Workflow,
        input: Any,
        parent: InstanceRecord | None = None,
        branch: str | None = None,
    ) -> InstanceRecord:
        instance = InstanceRecord(
            id=new_instance_id(),
            seq=self.sup.instances.next_seq(),
            workflow=flow.qualname,
            status=InstanceStatus.PENDING,
            input=input,
            created_at=self.sup.clock.wall(),
            node=self.sup.settings.node,
            parent_id=parent.id if parent is not None else None,
            branch=branch,
        )
        self.sup.instances.insert(instance)
        return instance

    def _begin(self, instance: InstanceRecord, flow: Workflow) -> None:
        now = self.sup.clock.wall()
        timeout_at = now + flow.timeout if flow.timeout is not None else None
        self.sup.instances.set_status(
            instance, InstanceStatus.RUNNING, started_at=now, timeout_at=timeout_at
        )
        if timeout_at is not None:
            self.timers.arm_workflow_timeout(instance)
        self._emit("workflow.started", instance, input=instance.input)
        self._enter(instance, flow, flow.start)

    def _finish(
        self,
        instance: InstanceRecord,
        status: InstanceStatus,
        *,
        output: Any = None,
        error: dict[str, Any] | None = None,
    ) -> None:
        self.timers.cancel_instance(instance)
        self.sup.instances.set_status(
            instance, status, output=output, error=error, finished_at=self.sup.clock.wall()
        )
        if status is InstanceStatus.COMPLETED:
            self._emit("workflow.completed", instance, output=output)
        elif status is InstanceStatus.FAILED:
            self._emit("workflow.failed", instance, error=error)
        else:
            self._emit("workflow.cancelled", instance, error=error)
        if instance.parent_id is not None:
            self._child_finished(instance)
        else:
            self._forget_later(instance)

    def _stop_instance(
        self, instance: InstanceRecord, status: InstanceStatus, error: dict[str, Any]
    ) -> None:
        """Cancel the instance's live steps (their jobs, their branches), then end it."""
        for name, state in instance.steps.items():
            if state.status not in LIVE_STEP:
                continue
            state.status = StepStatus.CANCELLED
            state.finished_at = self.sup.clock.wall()
            state.retry_at = None
            self.timers.cancel_step(instance, name)
            if state.job_id is not None:
                self._stop_job(state.job_id, error["message"])
            for child_id in state.children:
                child = self.sup.instances.get(child_id)
                if child is not None and child.active:
                    self._stop_instance(child, InstanceStatus.CANCELLED, error)
        self.sup.instances.mark(instance)
        self._finish(instance, status, error=error)

    def _stop_job(self, job_id: str, reason: str) -> None:
        self._watch.pop(job_id, None)  # its settling is no news: we asked for it
        job = self.sup.table.get(job_id)
        if job is not None and job.active:
            self.sup.cancel(job_id, reason)

    def _forget_later(self, instance: InstanceRecord) -> None:
        """Drop a finished top-level instance and its branches from memory after its commit."""
        table = self.sup.instances

        def forget(record: InstanceRecord) -> bool:
            if record.active or table.has_pending_changes(record.id):
                return False
            for child in table.children(record.id):
                forget(child)
            table.forget(record.id)
            return True

        self.sup.loop.after_commit(lambda: forget(instance) and None)

    # --- steps -------------------------------------------------------------------------------

    def _prev(self, instance: InstanceRecord, flow: Workflow, step_name: str) -> Any:
        prev = own_prev(instance, flow, step_name)
        if prev is NO_PREV and instance.parent_id is not None:
            parent = self.sup.instances.get(instance.parent_id)
            if parent is not None:
                for state in parent.steps.values():
                    if instance.id in state.children:
                        return state.input
        return prev

    def _enter(self, instance: InstanceRecord, flow: Workflow, name: str) -> None:
        """Start step ``name`` afresh (its state moves to the end of ``steps``)."""
        self._chain += 1
        try:
            self._enter_step(instance, flow, name)
        finally:
            self._chain -= 1

    def _enter_step(self, instance: InstanceRecord, flow: Workflow, name: str) -> None:
        step = flow.step(name)
        prev = self._prev(instance, flow, name)
        instance.steps.pop(name, None)
        state = StepState(status=StepStatus.RUNNING, started_at=self.sup.clock.wall())
        state.input = instance.input if prev is NO_PREV else prev
        instance.steps[name] = state
        instance.current_step = name
        self.sup.instances.mark(instance)
        self._emit("workflow.step.started", instance, step=name, kind=step.kind)
        if self._chain > MAX_CHAIN:
            problem = (
                f"more than {MAX_CHAIN} steps in a row ran without a job (a loop of pass steps?)"
            )
            self._step_failed(instance, name, {"message": problem, "reason": "loop", "step": name})
        elif isinstance(step, EndStep):
            self._step_completed(instance, flow, name, None if prev is NO_PREV else prev)
        elif isinstance(step, PassStep) and step.transform is None:
            output = step.result if step.has_result else state.input
            self._step_completed(instance, flow, name, output)
        elif isinstance(step, ParallelStep):
            self._start_branches(instance, step, state)
        else:
            self._start_attempt(instance, flow, name)

    def _start_attempt(self, instance: InstanceRecord, flow: Workflow, name: str) -> None:
        step = flow.step(name)
        state = instance.steps[name]
        state.attempts += 1
        state.status = StepStatus.RUNNING
        state.retry_at = None
        self.sup.instances.mark(instance)
        if state.attempts > 1:
            self._emit("workflow.step.started", instance, step=name, attempt=state.attempts)
        if isinstance(step, TaskStep) and step.timeout is not None:
            self._arm_step_timeout(instance, flow, name, self.sup.clock.wall())
        prev = self._prev(instance, flow, name)
        if isinstance(step, ChoiceStep):
            self._step_job(instance, flow, name, "choice", prev=prev)
        elif isinstance(step, PassStep):
            self._step_job(instance, flow, name, "pass", prev=prev)
        elif isinstance(step, TaskStep) and step.handler is not None:
            self._step_job(instance, flow, name, "task", prev=prev)
        elif isinstance(step, TaskStep) and step.job is not None:
            if step.input is not None or step.input_schema is not None:
                self._step_job(instance, flow, name, "job-input", prev=prev)
            else:
                payload = instance.input if prev is NO_PREV else prev
                self._enqueue(instance, flow, name, step.job, payload)

    def _step_job(
        self,
        instance: InstanceRecord,
        flow: Workflow,
        name: str,
        phase: str,
        *,
        prev: Any,
        result: Any = NO_PREV,
    ) -> None:
        module = registry.find(flow.qualname.split("/")[0]).module
        data = step_job_data(
            instance, flow, module=module, step_name=name, phase=phase, prev=prev, result=result
        )
        self._enqueue(instance, flow, name, STEP_KIND, data)

    def _enqueue(
        self, instance: InstanceRecord, flow: Workflow, name: str, kind: str, data: Any
    ) -> None:
        state = instance.steps[name]
        try:
            job = self.sup.enqueue(kind, data, max_attempts=1)
        except JobvisorError as exc:  # data too large, kind gone: the attempt fails now
            error = {"message": f"cannot start the step's job: {exc}", "reason": "start"}
            self.sup.loop.call_soon(lambda: self._late_failure(instance, name, state, error))
            return
        state.job_id = job.id
        self._watch[job.id] = (instance.id, name)
        self.sup.instances.mark(instance)

    def _late_failure(
        self, instance: InstanceRecord, name: str, state: StepState, error: dict[str, Any]
    ) -> None:
        flow = self._flow(instance)
        if flow is not None and instance.active and instance.steps.get(name) is state:
            self._attempt_failed(instance, flow, name, error)

    def _job_settled(self, job: JobRecord) -> None:
        """``Supervisor.settled``: a job reached its final status; if it is a step's, move on."""
        owner = self._watch.pop(job.id, None)
        if owner is None:
            return
        instance = self.sup.instances.get(owner[0])
        if instance is None or not instance.active:
            return
        name = owner[1]
        state = instance.steps.get(name)
        flow = self._flow(instance)
        if flow is None or state is None or state.job_id != job.id:
            return
        if state.status is not StepStatus.RUNNING:
            return
        if job.status is JobStatus.COMPLETED:
            self._job_completed(instance, flow, name, job)
        else:
            self._attempt_failed(instance, flow, name, job.error or {"reason": job.status.value})

    def _job_progressed(self, job: JobRecord) -> None:
        """``Supervisor.progressed``: a running step reported progress (``ctx.progress``);
        publish it on the instance as ``workflow.progress`` with the step's figures."""
        owner = self._watch.get(job.id)
        if owner is None:
            return
        instance = self.sup.instances.get(owner[0])
        flow = self._flow(instance) if instance is not None else None
        if instance is None or flow is None or not instance.active:
            return
        self._emit(
            "workflow.progress",
            instance,
            completed=self._completed_steps(instance),
            total=len(flow.steps),
            step=owner[1],
            percent=job.progress,
            message=job.progress_message,
        )

    @staticmethod
    def _completed_steps(instance: InstanceRecord) -> int:
        return sum(1 for s in instance.steps.values() if s.status is StepStatus.COMPLETED)

    def _job_completed(
        self, instance: InstanceRecord, flow: Workflow, name: str, job: JobRecord
    ) -> None:
        step = flow.step(name)
        phase = step_phase(job.name, job.data)
        result = job.result
        if phase == "choice":
            target = result.get("next") if isinstance(result, dict) else None
            if not isinstance(target, str) or target not in flow.steps:
                error = {"message": f"the choice returned no step: {result!r}", "reason": "data"}
                self._attempt_failed(instance, flow, name, error)
                return
            self._step_completed(instance, flow, name, None, target=target)
        elif phase == "job-input" and isinstance(step, TaskStep) and step.job is not None:
            self._enqueue(instance, flow, name, step.job, result)
        elif phase == "job" and isinstance(step, TaskStep) and (step.output or step.output_schema):
            prev = self._prev(instance, flow, name)
            self._step_job(instance, flow, name, "job-output", prev=prev, result=result)
        else:
            self._step_completed(instance, flow, name, result)

    def _step_completed(
        self,
        instance: InstanceRecord,
        flow: Workflow,
        name: str,
        output: Any,
        *,
        target: str | None = None,
    ) -> None:
        state = instance.steps[name]
        self.timers.cancel_step(instance, name)
        state.status = StepStatus.COMPLETED
        state.output = output
        state.error = None
        state.retry_at = None
        state.finished_at = self.sup.clock.wall()
        self.sup.instances.mark(instance)
        self._emit("workflow.step.completed", instance, step=name, output=output)
        self._emit(
            "workflow.progress",
            instance,
            completed=self._completed_steps(instance),
            total=len(flow.steps),
        )
        following = target if target is not None else flow.next_of(name)
        if following is None:
            self._finish(instance, InstanceStatus.COMPLETED, output=output)
        else:
            self._enter(instance, flow, following)

    def _attempt_failed(
        self,
        instance: InstanceRecord,
        flow: Workflow,
        name: str,
        job_error: dict[str, Any],
        error_type: str | None = None,
    ) -> None:
        """A step attempt failed: wait and retry per the step's policy, else fail the step."""
        state = instance.steps[name]
        self.timers.cancel_step(instance, name)
        failure = parse_failure(job_error)
        kind = error_type or failure.error_type
        error = failure_error(name, state.attempts, kind, failure.message, job_error.get("reason"))
        step = flow.step(name)
        policy = flow.retry_of(name) if isinstance(step, TaskStep) else RetryPolicy()
        state.error = error
        if policy.retries(kind, state.attempts):
            delay = policy.delay(state.attempts)
            state.status = StepStatus.WAITING_RETRY
            state.retry_at = self.sup.clock.wall() + delay
            self.sup.instances.mark(instance)
            self.timers.arm_retry(instance, name, state)
            self._emit(
                "workflow.step.retry",
                instance,
                step=name,
                attempt=state.attempts,
                error=error,
                retry_at=state.retry_at,
                delay=delay,
            )
            return
        self._step_failed(instance, name, error)

    def _step_failed(self, instance: InstanceRecord, name: str, error: dict[str, Any]) -> None:
        state = instance.steps[name]
        state.status = StepStatus.FAILED
        state.error = error
        state.retry_at = None
        state.finished_at = self.sup.clock.wall()
        self.sup.instances.mark(instance)
        self._emit("workflow.step.failed", instance, step=name, error=error)
        message = f"{instance.workflow}/{name}: {error.get('message')}"
        self._finish(instance, InstanceStatus.FAILED, error={**error, "message": message})

    # --- parallel steps ----------------------------------------------------------------------

    def _start_branches(
        self, instance: InstanceRecord, step: ParallelStep, state: StepState
    ) -> None:
        state.attempts += 1
        children = []
        for branch in step.branches:
            child = self._new_instance(branch, instance.input, instance, branch.name)
            state.children.append(child.id)
            children.append((child, branch))
        self.sup.instances.mark(instance)
        for child, branch in children:
            if child.status is InstanceStatus.PENDING and instance.active:
                self._begin(child, branch)

    def _child_finished(self, child: InstanceRecord) -> None:
        parent = self.sup.instances.get(child.parent_id or "")
        if parent is None or not parent.active:
            return
        flow = self._flow(parent)
        for name, state in parent.steps.items():
            if child.id in state.children and state.status is StepStatus.RUNNING:
                if flow is not None:
                    self._parallel_settle(parent, flow, name, state)
                return

    def _parallel_settle(
        self, instance: InstanceRecord, flow: Workflow, name: str, state: StepState
    ) -> None:
        """Decide a parallel step from its branches: all completed, one failed (fail-fast),
        or all finished with failures (wait-all)."""
        step = flow.step(name)
        assert isinstance(step, ParallelStep)
        children = [self._held(child_id) for child_id in state.children]
        failed = [c for c in children if c.status in STOPPED]
        if failed and step.on_error == "fail-fast":
            first = failed[0]
            state.status = StepStatus.FAILED  # the branches cancelled now report to no one
            for child in children:
                if child.active:
                    reason = f"branch {first.branch!r} failed"
                    self._stop_instance(
                        child, InstanceStatus.CANCELLED, {"message": reason, "reason": "cancelled"}
                    )
            message = (first.error or {}).get("message", "failed")
            self._step_failed(
                instance,
                name,
                {
                    "message": f"branch {first.branch!r}: {message}",
                    "reason": "branch",
                    "step": name,
                    "branch": first.branch,
                },
            )
            return
        if any(child.active for child in children):
            return
        if failed:
            errors = {c.branch or c.id: c.error for c in failed}
            summary = "; ".join(
                f"branch {branch!r}: {(err or {}).get('message', 'failed')}"
                for branch, err in errors.items()
            )
            self._step_failed(
                instance,
                name,
                {"message": summary, "reason": "branch", "step": name, "errors": errors},
            )
            return
        output = {child.branch or child.id: child.output for child in children}
        self._step_completed(instance, flow, name, output)

    # --- timers ------------------------------------------------------------------------------

    def _arm_step_timeout(
        self, instance: InstanceRecord, flow: Workflow, name: str, started: float
    ) -> None:
        step = flow.step(name)
        if isinstance(step, TaskStep) and step.timeout is not None:
            self.timers.arm_step_timeout(instance, name, step.timeout, started)

    def _retry_due(self, instance: InstanceRecord, name: str) -> None:
        flow = self._flow(instance)
        if flow is not None:
            self._start_attempt(instance, flow, name)

    def _step_timed_out(self, instance: InstanceRecord, name: str, timeout: float) -> None:
        flow = self._flow(instance)
        state = instance.steps[name]
        if state.job_id is not None:
            self._stop_job(state.job_id, f"step timed out after {timeout:g} s")
        if flow is not None:
            error = {"message": f"step timed out after {timeout:g} s", "reason": "timeout"}
            self._attempt_failed(instance, flow, name, error, error_type="StepTimeout")

    def _timed_out(self, instance: InstanceRecord) -> None:
        flow = self._flow(instance)
        limit = flow.timeout if flow is not None and flow.timeout is not None else 0.0
        error = {"message": f"timed out after {limit:g} s", "reason": "timeout"}
        self._stop_instance(instance, InstanceStatus.FAILED, error)

    # --- events ------------------------------------------------------------------------------

    def _emit(self, name: str, instance: InstanceRecord, **data: Any) -> None:
        """Queue ``name`` on ``workflow:{id}`` (and the parent's channel for a branch); it
        reaches subscribers after this iteration's commit."""
        payload: dict[str, Any] = {
            "id": instance.id,
            "workflow": instance.workflow,
            "status": instance.status.value,
        }
        if instance.parent_id is not None:
            payload.update(parent_id=instance.parent_id, branch=instance.branch)
        payload.update(data)
        channels = [f"workflow:{instance.id}"]
        if instance.parent_id is not None:
            channels.append(f"workflow:{instance.parent_id}")
        wall = self.sup.clock.wall()
        emit: Callable[..., Any] = self.sup.events.emit
        self.sup.loop.after_commit(lambda: emit(name, payload, time=wall, channels=tuple(channels)))
