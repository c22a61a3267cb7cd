"""What the engine hands a step job, computed from an instance: pure functions, no I/O.

Theory of operation (docs/workflows.md, "Data flow" and "The engine"). An instance's
``steps`` map keeps its step states in the order the steps started; a step that is
entered again (a loop through a choice, a resume) moves to the end. So the ``prev`` of a
step is the output of the last completed step before it in that order, choices skipped
(a choice outputs nothing and hands its own ``prev`` on). An instance with no such step
has no ``prev``, except a parallel branch, which starts with the ``prev`` of its parent's
parallel step (recorded as that step's ``input``; the workflow input when the parallel
step ran first).

``step_job_data`` is the data of one ``workflow-step`` job: the workflow's qualified
name, the module a step worker imports to find it, the step, the phase and the context
the worker rebuilds ``ctx`` from.
"""

from __future__ import annotations

from typing import Any, Final

from supervisor.workflows.definition import ChoiceStep, Workflow
from supervisor.workflows.records import InstanceRecord, StepStatus

STEP_KIND: Final = "workflow-step"
STEP_ENTRY: Final = "supervisor.workflows.steps:run_step"
NO_PREV: Final = object()  # a step that runs first: its context has no "prev" key


def own_prev(instance: InstanceRecord, flow: Workflow, step_name: str) -> Any:
    """The output of the last completed non-choice step before ``step_name``, else
    ``NO_PREV`` (the caller then looks at the parent of a branch)."""
    for name, state in reversed(list(instance.steps.items())):
        if name == step_name or isinstance(flow.steps.get(name), ChoiceStep):
            continue
        if state.status is StepStatus.COMPLETED:
            return state.output
    return NO_PREV


def completed_outputs(instance: InstanceRecord, flow: Workflow) -> dict[str, Any]:
    """``ctx.steps``: step name -> output of each completed step (choices output nothing)."""
    return {
        name: state.output
        for name, state in instance.steps.items()
        if state.status is StepStatus.COMPLETED and not isinstance(flow.steps.get(name), ChoiceStep)
    }


def step_context(
    instance: InstanceRecord, flow: Workflow, prev: Any, result: Any = NO_PREV
) -> dict[str, Any]:
    """The ``context`` of a step job: ``input``, ``steps``, ``prev`` (absent for a first
    step), ``instance`` and, for a ``job-output`` phase, the legacy job's ``result``."""
    context: dict[str, Any] = {
        "input": instance.input,
        "steps": completed_outputs(instance, flow),
        "instance": {"id": instance.id, "workflow": instance.workflow},
    }
    if prev is not NO_PREV:
        context["prev"] = prev
    if result is not NO_PREV:
        context["result"] = result
    return context


def step_job_data(
    instance: InstanceRecord,
    flow: Workflow,
    *,
    module: str | None,
    step_name: str,
    phase: str,
    prev: Any,
    result: Any = NO_PREV,
) -> dict[str, Any]:
    """The data of one ``workflow-step`` job (docs/workflows.md, "The step worker's entry
    point")."""
    data: dict[str, Any] = {
        "workflow": flow.qualname,
        "step": step_name,
        "phase": phase,
        "context": step_context(instance, flow, prev, result),
    }
    if module is not None:
        data["module"] = module
    return data


def step_phase(job_name: str, job_data: Any) -> str:
    """Which phase of a step a settled job was: its ``phase``, or ``"job"`` for the
    registered job of a legacy ``job=`` task."""
    if job_name == STEP_KIND and isinstance(job_data, dict):
        return str(job_data.get("phase", "task"))
    return "job"


def failure_error(
    step_name: str, attempt: int, error_type: str | None, message: str, reason: Any
) -> dict[str, Any]:
    """A step's (and an instance's) ``error``: ``"ClassName: message"`` when a class is known."""
    text = f"{error_type}: {message}" if error_type else message
    return {
        "message": text,
        "error_type": error_type,
        "reason": reason,
        "step": step_name,
        "attempt": attempt,
    }
