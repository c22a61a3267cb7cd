"""The data flow of a step: what runs inside a step worker around the user's functions.

Theory of operation. Every function here is pure apart from the user code it calls, so the
engine's step worker (``steps.run_step``) and the tests call the same code. The rules
(docs/workflows.md, "Data flow"):

* A task's **input**: with a pydantic model as ``input_schema``, the model validates the
  step's raw input — the workflow input at a workflow's first step, ``prev`` elsewhere — and
  the handler gets the model instance. With a mapper, the handler gets
  ``mapper(prev, workflow_input)``. With no schema, the handler gets ``prev`` (at the first
  step: the workflow input).
* A task's **output**: ``output_schema`` validates what the handler returned; the output is
  always plain JSON-able data (models are dumped with ``model_dump(mode="json")``).
* A **choice** calls ``condition(ctx)`` in order; the first truthy one wins, then ``default``.
* A **pass** step outputs ``transform(ctx)``, else its static ``result``, else ``prev``.

"First step" is said by passing ``NO_PREV`` as ``prev``: in a step job's context, that is a
missing ``"prev"`` key, and ``ctx.prev`` is then ``None``. A choice outputs nothing: the step
it goes to gets the choice's own ``prev`` (none after a first choice, which is why ``build()``
refuses a mapper there). A pass step always outputs a value, so the step after it has a
``prev``. A parallel step's branches start with the parallel step's ``prev`` (the workflow
input when the parallel step runs first) and the workflow's input.

Validation errors raise ``StepInputError`` / ``StepOutputError``, one line per field::

    process-order/validate: input.order_id: Field required

Exceptions raised by user code (handlers, mappers, conditions, transforms) propagate
unchanged, so that their class name reaches ``retry_on``.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticSerializationError, to_jsonable_python

from supervisor.workflows.definition import ChoiceStep, PassStep, TaskStep, arity
from supervisor.workflows.errors import NoChoiceMatched, StepInputError, StepOutputError

ProgressFn = Callable[[float, "str | None"], None]
MAX_ERRORS = 5  # validation errors listed in one message; the rest are counted


class _NoPrev:
    """The ``prev`` of a workflow's first step, which has no previous step."""

    def __repr__(self) -> str:
        return "NO_PREV"

    def __bool__(self) -> bool:
        return False


NO_PREV: Any = _NoPrev()


@dataclass(slots=True)
class StepContext:
    """What a handler, condition or transform sees as ``ctx``.

    ``input`` is the workflow input, ``steps`` maps each completed step's name to its output,
    ``prev`` is the previous step's output (``None`` at a workflow's first step, where
    ``first`` is true), ``instance`` describes the instance (``id``, ``workflow``, ...).
    """

    input: Any = None
    steps: dict[str, Any] = field(default_factory=dict)
    prev: Any = None
    instance: dict[str, Any] = field(default_factory=dict)
    first: bool = False
    on_progress: ProgressFn | None = None

    @classmethod
    def from_context(
        cls, context: Mapping[str, Any], on_progress: ProgressFn | None = None
    ) -> StepContext:
        """From a step job's ``context`` (``input``, ``steps``, ``prev`` (absent at the
        first step), ``instance``)."""
        first = "prev" not in context
        return cls(
            input=context.get("input"),
            steps=dict(context.get("steps") or {}),
            prev=None if first else context["prev"],
            instance=dict(context.get("instance") or {}),
            first=first,
            on_progress=on_progress,
        )

    @property
    def prev_or_first(self) -> Any:
        """``prev``, or ``NO_PREV`` at the first step: what ``task_input`` takes."""
        return NO_PREV if self.first else self.prev

    def get_step_result(self, name: str) -> Any:
        """The output of the completed step ``name``, or ``None``."""
        return self.steps.get(name)

    def progress(self, pct: float, msg: str | None = None) -> None:
        """Report the step's progress (0..100) with an optional message."""
        if self.on_progress is not None:
            self.on_progress(pct, msg)


# --- tasks -----------------------------------------------------------------------------------


def task_input(step: TaskStep, prev: Any, workflow_input: Any) -> Any:
    """The input the task's handler (or legacy job) gets; ``prev`` is ``NO_PREV`` at the
    first step. Raises ``StepInputError`` naming each field that fails the model."""
    first = prev is NO_PREV
    model = step.input_model
    if model is not None:
        raw = workflow_input if first else prev
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            raise StepInputError(step.workflow, step.name, _fields("input", exc)) from exc
    mapper = step.input_mapper
    if mapper is not None:
        if first:
            raise StepInputError(
                step.workflow, step.name, "the input mapper needs prev, and this is a first step"
            )
        args = (prev, workflow_input)[: arity(mapper, 2) or 2]
        return resolve(mapper(*args))
    return workflow_input if first else prev


def task_output(step: TaskStep, value: Any) -> Any:
    """What the task outputs: ``value`` validated by ``output_schema`` (if any), as plain
    JSON-able data. Raises ``StepOutputError`` naming each failing field."""
    if step.output_schema is not None:
        try:
            value = step.output_schema.model_validate(value)
        except ValidationError as exc:
            raise StepOutputError(step.workflow, step.name, _fields("output", exc)) from exc
    return plain(value, step.workflow, step.name)


def call_handler(step: TaskStep, input: Any, ctx: StepContext) -> Any:
    """``handler(input, ctx)``; a coroutine function or awaitable result runs to completion
    in its own event loop (``asyncio.run``). A one-argument handler gets ``input`` only."""
    handler = step.handler
    assert handler is not None, f"{step.workflow}/{step.name} is a job task, not a handler task"
    args = (input, ctx)[: arity(handler, 2) or 2]
    return resolve(handler(*args))


def job_input(step: TaskStep, ctx: StepContext) -> Any:
    """A legacy job task's payload: ``input(ctx)`` if given, else ``task_input``; plain data."""
    if step.input is not None:
        value = resolve(step.input(ctx))
    else:
        value = task_input(step, ctx.prev_or_first, ctx.input)
    return plain(value, step.workflow, step.name)


def job_output(step: TaskStep, result: Any, ctx: StepContext) -> Any:
    """A legacy job task's output: ``output(result, ctx)`` if given, else the job's result,
    then ``task_output``'s validation."""
    if step.output is not None:
        args = (result, ctx)[: arity(step.output, 2) or 2]
        result = resolve(step.output(*args))
    return task_output(step, result)


# --- choice and pass -------------------------------------------------------------------------


def choose(step: ChoiceStep, ctx: StepContext) -> str:
    """The name of the step to go to: the first choice whose ``condition(ctx)`` is truthy,
    else ``default``, else ``NoChoiceMatched`` naming the step."""
    for choice in step.choices:
        if resolve(choice.condition(ctx)):
            return choice.next
    if step.default is not None:
        return step.default
    raise NoChoiceMatched(
        step.workflow,
        step.name,
        f"none of its {len(step.choices)} conditions held and it has no default",
    )


def pass_output(step: PassStep, ctx: StepContext) -> Any:
    """``transform(ctx)`` if given, else ``result`` if given (even ``None``), else ``prev``
    unchanged (at a first step, the workflow input); as plain data."""
    if step.transform is not None:
        value = resolve(step.transform(ctx))
    elif step.has_result:
        value = step.result
    else:
        value = ctx.input if ctx.first else ctx.prev
    return plain(value, step.workflow, step.name)


# --- helpers ---------------------------------------------------------------------------------


def resolve(value: Any) -> Any:
    """``value``, or its result if it is awaitable (run in a fresh event loop)."""
    if inspect.isawaitable(value):
        return asyncio.run(_await(value))
    return value


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def plain(value: Any, workflow: str, step: str) -> Any:
    """``value`` as JSON-able data: models dumped (``mode="json"``), dates as ISO strings..."""
    try:
        if isinstance(value, BaseModel):
            return value.model_dump(mode="json")
        return to_jsonable_python(value)
    except (PydanticSerializationError, TypeError, ValueError) as exc:
        raise StepOutputError(
            workflow, step, f"{type(value).__name__} value is not JSON-able data: {exc}"
        ) from exc


def _fields(side: str, exc: ValidationError) -> str:
    """``"input.order_id: Field required; input.total: ..."`` from a pydantic error."""
    parts: list[str] = []
    errors = exc.errors(include_url=False)
    for error in errors[:MAX_ERRORS]:
        where = ".".join([side, *(str(part) for part in error["loc"])])
        text = f"{where}: {error['msg']}"
        if error["type"] != "missing":
            text += f" (got {_short(error.get('input'))})"
        parts.append(text)
    if len(errors) > MAX_ERRORS:
        parts.append(f"and {len(errors) - MAX_ERRORS} more")
    return "; ".join(parts)


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
