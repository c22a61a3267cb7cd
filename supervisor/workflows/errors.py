"""The workflow errors: a small hierarchy whose messages name the workflow, the step and the value.

Two families. Errors of *definition* (``WorkflowDefinitionError``, ``WorkflowRegistrationError``,
``UnknownWorkflow``) happen in the process that builds or loads workflows: at import, in
``build()`` or in ``registry.load``. Errors of a *step* (``StepError`` and its subclasses) happen
inside a step worker while it runs user code around a handler: validating an input or an
output, or choosing a branch.

A step worker reports a failure to the supervisor as a job failure, whose error is a string.
So that the engine can apply ``retry_on`` (exception class names), the string starts with the
class name: ``"ValueError: card declined"``. ``failure_message`` writes that string (in the
worker) and ``parse_failure`` reads it back from the job's stored error (in the supervisor).

This module is a leaf: it imports nothing from ``supervisor`` but ``supervisor.errors``, so
the leaf modules that core modules may import (``records``, ``instances``) can raise these
errors.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from supervisor.errors import IllegalTransition, JobvisorError


class WorkflowError(JobvisorError):
    """Base of every workflow error raised on purpose."""

    code = "workflow_error"
    http_status = 500


class IllegalInstanceTransition(WorkflowError, IllegalTransition):
    """An instance status change ``records.INSTANCE_TRANSITIONS`` does not allow, or an
    instance entering or leaving the table wrongly: always a bug or a race."""

    code = "illegal_transition"
    http_status = 409


class WorkflowDefinitionError(WorkflowError):
    """``build()`` found a workflow that cannot run; the message names the workflow and step."""

    code = "workflow_definition_error"
    http_status = 500


class WorkflowRegistrationError(WorkflowError):
    """A ``"pkg.mod:attr"`` spec, or a workflow handed to ``register``, cannot be registered."""

    code = "workflow_registration_error"
    http_status = 500


class UnknownWorkflow(WorkflowError):
    """No registered workflow (or branch of one) has this name."""

    code = "unknown_workflow"
    http_status = 404


class InstanceNotFound(WorkflowError):
    """No workflow instance has this id."""

    code = "instance_not_found"
    http_status = 404


class InstanceFinished(WorkflowError):
    """An operation that needs an unfinished instance (cancel) met a finished one."""

    code = "instance_finished"
    http_status = 409


class InstanceNotResumable(WorkflowError):
    """Only a failed or cancelled instance can be resumed."""

    code = "instance_not_resumable"
    http_status = 409


class StepError(WorkflowError):
    """A step failed around its user code (input, output, choice); names workflow and step."""

    code = "step_error"
    http_status = 500

    def __init__(self, workflow: str, step: str, problem: str) -> None:
        super().__init__(f"{workflow}/{step}: {problem}" if workflow else f"{step}: {problem}")
        self.workflow = workflow
        self.step = step
        self.problem = problem


class StepInputError(StepError):
    """The step's input failed its ``input_schema`` (or a mapper was given no ``prev``)."""

    code = "step_input_error"


class StepOutputError(StepError):
    """What the step produced failed its ``output_schema`` or is not JSON-able data."""

    code = "step_output_error"


class NoChoiceMatched(StepError):
    """A choice step found no true condition and has no ``default``."""

    code = "no_choice_matched"


class StepTimeout(StepError):
    """A step attempt ran longer than its ``timeout``: the engine stopped its job. The engine
    records the attempt's failure under this class name, so ``retry_on`` may list it."""

    code = "step_timeout"


class StepFailed(WorkflowError):
    """Raised by ``run_step`` for any exception of a step: its message leads with the class name.

    ``error_type`` is the original exception's class name (``__cause__`` holds the exception).
    """

    code = "step_failed"
    http_status = 500

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message


@dataclass(frozen=True, slots=True)
class StepFailure:
    """A failed step attempt as the engine sees it: the exception's class name (if the step
    raised one) and the message."""

    error_type: str | None
    message: str


def failure_message(exc: BaseException) -> str:
    """``"ClassName: message"``: the string a step worker reports for ``exc``."""
    text = str(exc) or repr(exc)
    return f"{type(exc).__name__}: {text}"


_FAILURE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*): (.*)", re.DOTALL)


def parse_failure(job_error: Mapping[str, Any] | None) -> StepFailure:
    """Read a step job's stored error (``{"message", "reason", ...}``) back into a failure.

    Only a failure the worker reported itself (``reason == "failed"``) carries a class name;
    a timeout, a crash or a lost worker has ``error_type`` ``None``, which a ``RetryPolicy``
    with an empty ``retry_on`` retries and one with names does not.
    """
    if not job_error:
        return StepFailure(None, "the step failed without an error")
    message = str(job_error.get("message", ""))
    if job_error.get("reason") == "failed" and (match := _FAILURE.fullmatch(message)):
        return StepFailure(match.group(1), match.group(2))
    return StepFailure(None, message)
