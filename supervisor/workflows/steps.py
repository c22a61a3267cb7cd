"""``run_step(job)``: the step worker's entry point, one step attempt per job.

A step attempt is a job whose worker calls ``run_job(run_step)`` (a warm pool worker does
the same with ``supervisor.workflows.steps:run_step`` as its entry). The job's data says
what to run::

    {"workflow": "process-order",            # or a branch: "process-order/fulfill/shipping"
     "module": "mypkg.flows",                # optional: imported if the workflow is unknown
     "step": "validate",
     "phase": "task" | "choice" | "pass" | "job-input" | "job-output",
     "context": {"input": ..., "steps": {...}, "prev": ...,   # no "prev": a first step
                 "instance": {"id": ..., "workflow": ...}, "result": ...}}  # result: job-output

and the job's result is the phase's output: ``task`` the handler's validated output,
``choice`` ``{"next": step}``, ``pass`` the pass step's output, ``job-input`` a legacy job
task's payload, ``job-output`` its output computed from the job's ``result``.

Any exception fails the job. So that the engine can match ``retry_on``, ``run_step`` raises
``StepFailed`` whose message is ``"ClassName: message"`` of the original exception (its
``__cause__``); ``run_job`` reports that message as the job's error, and the engine reads
it back with ``errors.parse_failure``. ``ctx.progress`` reports through ``job.progress``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from supervisor.workflows import dataflow, registry
from supervisor.workflows.dataflow import StepContext
from supervisor.workflows.definition import ChoiceStep, PassStep, Step, TaskStep
from supervisor.workflows.errors import StepFailed, WorkflowError

if TYPE_CHECKING:
    from jobvisor_worker import Job

S = TypeVar("S", ChoiceStep, PassStep, TaskStep)
PHASES = ("task", "choice", "pass", "job-input", "job-output")


def run_step(job: Job) -> Any:
    """Run the step attempt ``job.data`` describes; return its output (see the module doc)."""
    try:
        return execute(job.data, job.progress)
    except Exception as exc:
        raise StepFailed(type(exc).__name__, str(exc) or repr(exc)) from exc


def execute(data: Any, on_progress: Callable[..., Any] | None = None) -> Any:
    """The work of ``run_step`` without a job: ``data`` as above; exceptions propagate."""
    if not isinstance(data, Mapping):
        raise WorkflowError(f"a step job's data must be a mapping, not {type(data).__name__}")
    name, step_name, phase = data.get("workflow"), data.get("step"), data.get("phase")
    if not isinstance(name, str) or not isinstance(step_name, str) or phase not in PHASES:
        raise WorkflowError(
            "a step job's data needs 'workflow' and 'step' names and a 'phase' in "
            f"{', '.join(PHASES)}; got workflow={name!r} step={step_name!r} phase={phase!r}"
        )
    module = data.get("module")
    built = registry.find(name, module if isinstance(module, str) else None)
    try:
        step = built.step(step_name)
    except KeyError as exc:
        raise WorkflowError(exc.args[0]) from None
    context = data.get("context") or {}
    if not isinstance(context, Mapping):
        raise WorkflowError(f"{name}/{step_name}: the step's context must be a mapping")
    ctx = StepContext.from_context(context, on_progress)
    return _run_phase(step, phase, ctx, context)


def _run_phase(step: Step, phase: str, ctx: StepContext, context: Mapping[str, Any]) -> Any:
    if phase == "choice":
        return {"next": dataflow.choose(_expect(step, ChoiceStep, phase), ctx)}
    if phase == "pass":
        return dataflow.pass_output(_expect(step, PassStep, phase), ctx)
    task = _expect(step, TaskStep, phase)
    if phase == "task":
        if task.handler is None:
            raise WorkflowError(f"{task.workflow}/{task.name}: a job= task has no 'task' phase")
        value = dataflow.task_input(task, ctx.prev_or_first, ctx.input)
        return dataflow.task_output(task, dataflow.call_handler(task, value, ctx))
    if task.job is None:
        raise WorkflowError(f"{task.workflow}/{task.name}: a handler task has no {phase!r} phase")
    if phase == "job-input":
        return dataflow.job_input(task, ctx)
    return dataflow.job_output(task, context.get("result"), ctx)


def _expect(step: Step, kind: type[S], phase: str) -> S:
    if not isinstance(step, kind):
        raise WorkflowError(
            f"{step.workflow}/{step.name}: a {step.kind} step has no {phase!r} phase"
        )
    return step
