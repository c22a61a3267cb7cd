"""Workflows: step functions of inline Python handlers and jobs (docs/workflows.md).

    from supervisor.workflows import workflow

    flow = workflow("process-order").task("validate", handler=validate).build()

The package's parts, each in its own module:

* ``definition`` -- the frozen records of a built workflow (steps, ``RetryPolicy``, graph);
* ``builder`` -- ``workflow(name)`` and the checks ``build()`` makes;
* ``dataflow`` -- what runs inside a step worker: inputs, outputs, choices, pass steps;
* ``registry`` -- the workflows a process knows, loaded from ``"pkg.mod:attr"`` specs;
* ``steps`` -- ``run_step``, the step worker's entry point;
* ``errors`` -- the workflow errors.

This module only re-exports the builder's names: importing it does no I/O and imports
nothing of the supervisor but its errors (core modules import the package's leaf modules).
"""

from supervisor.workflows.builder import WorkflowBuilder, workflow
from supervisor.workflows.definition import (
    Choice,
    ChoiceStep,
    EndStep,
    ParallelStep,
    PassStep,
    RetryPolicy,
    Step,
    TaskStep,
    Workflow,
)
from supervisor.workflows.errors import (
    NoChoiceMatched,
    StepError,
    StepFailed,
    StepInputError,
    StepOutputError,
    UnknownWorkflow,
    WorkflowDefinitionError,
    WorkflowError,
    WorkflowRegistrationError,
)

__all__ = [
    "Choice",
    "ChoiceStep",
    "EndStep",
    "NoChoiceMatched",
    "ParallelStep",
    "PassStep",
    "RetryPolicy",
    "Step",
    "StepError",
    "StepFailed",
    "StepInputError",
    "StepOutputError",
    "TaskStep",
    "UnknownWorkflow",
    "Workflow",
    "WorkflowBuilder",
    "WorkflowDefinitionError",
    "WorkflowError",
    "WorkflowRegistrationError",
    "workflow",
]
