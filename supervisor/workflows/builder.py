"""``workflow(name)``: the builder, and the checks ``build()`` makes before a workflow exists.

Theory of operation. Each builder call appends one step record to a list and returns the
builder, so calls chain as in the seed's TypeScript API. Nothing is checked while chaining
except argument kinds: ``build()`` checks the whole graph at once, so that every problem is
reported against the workflow and the step it is about, and raises the first one as a
``WorkflowDefinitionError``. What it refuses (docs/workflows.md, "Defining a workflow"):

* an empty workflow; a bad workflow, step or branch name; duplicate step names;
* a ``next``, choice target or ``default`` that names no step; a step with ``next`` and
  ``end=True``; a choice with no way out (no choices and no default); unreachable steps;
* a task with neither or both of ``handler`` / ``job``; legacy ``input``/``output`` mappers on
  a handler task; a mapper ``input_schema`` on a step that may run first (the start step, or
  a step a first choice goes to): it has no ``prev``;
* functions that cannot take the arguments they will be given; bad retry or timeout values;
* a parallel step without branches, with duplicate branch names or an unknown ``on_error``;
* a pass step's ``result`` that is not JSON-able data.

``build()`` also stamps each step with the qualified name of its workflow and each branch
with its ``qualname`` (``"parent/parallel-step/branch"``), and a branch without its own
``default_retry`` inherits its parent's.
"""

from __future__ import annotations

import dataclasses
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Self

from pydantic import BaseModel
from pydantic_core import PydanticSerializationError, to_jsonable_python

from supervisor.workflows.definition import (
    ON_ERROR_VALUES,
    Choice,
    ChoiceStep,
    EndStep,
    Mapper,
    OnError,
    ParallelStep,
    PassStep,
    RetryPolicy,
    Step,
    TaskStep,
    Workflow,
    arity,
    describe,
    is_model,
    positive_seconds,
)
from supervisor.workflows.errors import WorkflowDefinitionError


class _Unset:
    """The default of ``pass_(result=...)``: tells "no result" from ``result=None``."""

    def __repr__(self) -> str:
        return "<unset>"


UNSET: Any = _Unset()


class WorkflowBuilder:
    """Collects steps in declaration order; ``build()`` checks them and freezes a ``Workflow``."""

    def __init__(self, name: str, *, module: str | None, is_branch: bool = False) -> None:
        self._name = name
        self._module = module
        self._is_branch = is_branch
        self._steps: list[Step] = []
        self._timeout: Any = None
        self._default_retry: RetryPolicy | None = None
        self._problems: list[str] = []  # found while chaining, reported by build()

    # --- steps --------------------------------------------------------------------------

    def task(
        self,
        name: str,
        *,
        input_schema: type[BaseModel] | Mapper | None = None,
        output_schema: type[BaseModel] | None = None,
        handler: Callable[..., Any] | None = None,
        job: str | None = None,
        input: Callable[..., Any] | None = None,
        output: Callable[..., Any] | None = None,
        retry: RetryPolicy | Mapping[str, Any] | None = None,
        timeout: float | None = None,
        next: str | None = None,
        end: bool = False,
    ) -> Self:
        """A task: ``handler(input, ctx)`` in a step worker, or (legacy) the job ``job``."""
        self._steps.append(
            TaskStep(
                name=name,
                handler=handler,
                job=job,
                input_schema=input_schema,
                output_schema=output_schema,
                input=input,
                output=output,
                retry=self._retry(retry, f"step {name!r}"),
                timeout=timeout,
                next=next,
                end=end,
            )
        )
        return self

    def parallel(
        self,
        name: str,
        *,
        branches: Sequence[Workflow],
        on_error: OnError = "fail-fast",
        next: str | None = None,
        end: bool = False,
    ) -> Self:
        """Branches run at once; the output is ``{branch name: branch output}``."""
        branch_list = list(branches) if isinstance(branches, Iterable) else [branches]
        self._steps.append(
            ParallelStep(
                name=name, branches=tuple(branch_list), on_error=on_error, next=next, end=end
            )
        )
        return self

    def choice(
        self,
        name: str,
        *,
        choices: Sequence[Mapping[str, Any] | Choice] = (),
        default: str | None = None,
    ) -> Self:
        """``choices=[{"condition": fn, "next": step}]``: the first true ``fn(ctx)`` wins."""
        parsed: list[Choice] = []
        for index, item in enumerate(choices):
            choice = self._choice(name, index, item)
            if choice is not None:
                parsed.append(choice)
        self._steps.append(ChoiceStep(name=name, choices=tuple(parsed), default=default))
        return self

    def pass_(
        self,
        name: str,
        *,
        transform: Callable[..., Any] | None = None,
        result: Any = UNSET,
        next: str | None = None,
        end: bool = False,
    ) -> Self:
        """A pass step: ``transform(ctx)``, else ``result``, else ``prev`` unchanged."""
        has_result = result is not UNSET
        self._steps.append(
            PassStep(
                name=name,
                transform=transform,
                result=result if has_result else None,
                has_result=has_result,
                next=next,
                end=end,
            )
        )
        return self

    def end(self, name: str) -> Self:
        """An end step: the workflow ends here with ``prev`` as its output."""
        self._steps.append(EndStep(name=name))
        return self

    # --- workflow settings ----------------------------------------------------------------

    def timeout(self, seconds: float) -> Self:
        """The whole instance's time limit, in seconds."""
        self._timeout = seconds
        return self

    def default_retry(
        self,
        max_attempts: int = 1,
        interval: float = 1.0,
        backoff_rate: float = 2.0,
        max_interval: float = 60.0,
        retry_on: Iterable[str | type[BaseException]] = (),
    ) -> Self:
        """The retry policy of every task without its own ``retry``."""
        self._default_retry = self._retry(
            {
                "max_attempts": max_attempts,
                "interval": interval,
                "backoff_rate": backoff_rate,
                "max_interval": max_interval,
                "retry_on": retry_on,
            },
            "default_retry",
        )
        return self

    # --- build ----------------------------------------------------------------------------

    def build(self) -> Workflow:
        """Check the whole graph and return the frozen ``Workflow``."""
        what = f"{'branch' if self._is_branch else 'workflow'} {self._name!r}"
        problem = self._problems[0] if self._problems else _check(self, what)
        if problem is not None:
            raise WorkflowDefinitionError(f"{what}: {problem}")
        built = Workflow(
            name=self._name,
            steps={step.name: step for step in self._steps},
            start=self._steps[0].name,
            timeout=None if self._timeout is None else float(self._timeout),
            default_retry=self._default_retry,
            module=self._module,
            is_branch=self._is_branch,
        )
        return qualify(built, self._name, None)

    # --- helpers --------------------------------------------------------------------------

    def _retry(self, value: Any, where: str) -> RetryPolicy | None:
        if value is None or isinstance(value, RetryPolicy):
            return value
        if not isinstance(value, Mapping):
            self._problems.append(f"{where}: retry must be a RetryPolicy or a dict, not {value!r}")
            return None
        try:
            return RetryPolicy(**value)
        except (TypeError, ValueError) as exc:
            self._problems.append(f"{where}: bad retry {dict(value)!r}: {exc}")
            return None

    def _choice(self, step: str, index: int, item: Mapping[str, Any] | Choice) -> Choice | None:
        if isinstance(item, Choice):
            return item
        where = f"step {step!r}: choice {index}"
        if not isinstance(item, Mapping) or set(item) != {"condition", "next"}:
            self._problems.append(
                f'{where} must be {{"condition": fn, "next": step}}, not {item!r}'
            )
            return None
        return Choice(condition=item["condition"], next=item["next"])


class _WorkflowFactory:
    """``workflow("name")`` starts a workflow; ``workflow.branch("name")`` a parallel branch."""

    def __call__(self, name: str) -> WorkflowBuilder:
        return WorkflowBuilder(name, module=_caller_module())

    def branch(self, name: str) -> WorkflowBuilder:
        return WorkflowBuilder(name, module=_caller_module(), is_branch=True)


workflow = _WorkflowFactory()


def _caller_module() -> str | None:
    # Two frames up: the caller of workflow(...) / workflow.branch(...).
    frame = sys._getframe(2)
    name = frame.f_globals.get("__name__")
    return name if isinstance(name, str) else None


def qualify(built: Workflow, qualname: str, inherited: RetryPolicy | None) -> Workflow:
    """``built`` with its ``qualname``, its steps stamped with it, and its branches (and
    theirs) qualified below it; a branch without ``default_retry`` takes ``inherited``."""
    steps: dict[str, Step] = {}
    default_retry = built.default_retry or inherited
    for name, step in built.steps.items():
        stamped = dataclasses.replace(step, workflow=qualname)
        if isinstance(stamped, ParallelStep):
            branches = tuple(
                qualify(b, f"{qualname}/{name}/{b.name}", default_retry) for b in stamped.branches
            )
            stamped = dataclasses.replace(stamped, branches=branches)
        steps[name] = stamped
    return dataclasses.replace(
        built, steps=MappingProxyType(steps), qualname=qualname, default_retry=default_retry
    )


# --- the checks --------------------------------------------------------------------------------


def _check(builder: WorkflowBuilder, what: str) -> str | None:
    """The first problem of the builder's workflow, or ``None``."""
    steps = builder._steps
    if problem := _name_problem(builder._name, "name"):
        return problem
    if not steps:
        return "has no steps (add .task(...), .pass_(...), ...)"
    for step in steps:
        if problem := _name_problem(step.name, "step name"):
            return problem
    duplicates = [name for name, count in Counter(s.name for s in steps).items() if count > 1]
    if duplicates:
        return f"step {duplicates[0]!r}: the name is used by more than one step"
    if builder._timeout is not None and not positive_seconds(builder._timeout):
        return f"timeout must be a number of seconds > 0, not {builder._timeout!r}"
    names = {s.name for s in steps}
    for step in steps:
        problem = _step_problem(step, names)
        if problem is not None:
            return f"step {step.name!r}: {problem}"
    built = Workflow(name=builder._name, steps={s.name: s for s in steps}, start=steps[0].name)
    for name in () if builder._is_branch else built.first_steps():
        step = built.steps[name]
        if isinstance(step, TaskStep) and step.input_mapper is not None:
            return (
                f"step {name!r}: its input_schema is a mapper, but it may run first, with no "
                "prev: give a pydantic model to validate the workflow input"
            )
    unreachable = _unreachable(built)
    if unreachable:
        return (
            f"step {unreachable[0]!r}: unreachable from the first step {built.start!r} "
            "(no next, choice or fall-through leads to it)"
        )
    return None


def _name_problem(name: Any, what: str) -> str | None:
    if not isinstance(name, str) or not name or "/" in name or name != name.strip():
        return f"bad {what} {name!r} (a non-empty string without '/' or edge spaces)"
    return None


def _step_problem(step: Step, names: set[str]) -> str | None:
    if isinstance(step, ChoiceStep):
        return _choice_problem(step, names)
    if isinstance(step, EndStep):
        return None
    if step.next is not None and step.end:
        return f"has both next={step.next!r} and end=True"
    if step.next is not None and step.next not in names:
        return f"next={step.next!r} names no step"
    if step.next == step.name:
        return "next names the step itself"
    if isinstance(step, TaskStep):
        return _task_problem(step)
    if isinstance(step, ParallelStep):
        return _parallel_problem(step)
    if step.has_result:
        try:
            to_jsonable_python(step.result)
        except (PydanticSerializationError, TypeError, ValueError):
            return f"result={step.result!r} is not JSON-able data"
    return _callable_problem(step.transform, "transform", 1, "(ctx)")


def _task_problem(step: TaskStep) -> str | None:
    if (step.handler is None) == (step.job is None):
        given = "both" if step.handler is not None else "neither"
        return f"a task needs exactly one of handler= and job= ({given} given)"
    if step.job is not None and (not isinstance(step.job, str) or not step.job):
        return f"job= must be a job kind's name, not {step.job!r}"
    if step.handler is not None and (step.input is not None or step.output is not None):
        return "input=/output= map a legacy job= task; a handler task uses input_schema"
    if step.input is not None and step.input_mapper is not None:
        return "input= and a mapper input_schema both map the input: give one"
    if step.output_schema is not None and not is_model(step.output_schema):
        return f"output_schema must be a pydantic model class, not {step.output_schema!r}"
    if step.timeout is not None and not positive_seconds(step.timeout):
        return f"timeout must be a number of seconds > 0, not {step.timeout!r}"
    checks = (
        (step.handler, "handler", 2, "(input, ctx)"),
        (step.input_mapper, "input_schema mapper", 2, "(prev, workflow_input)"),
        (step.input, "input", 1, "(ctx)"),
        (step.output, "output", 2, "(result, ctx)"),
    )
    for fn, what, most, shape in checks:
        if problem := _callable_problem(fn, what, most, shape):
            return problem
    return None


def _parallel_problem(step: ParallelStep) -> str | None:
    if step.on_error not in ON_ERROR_VALUES:
        return f"on_error must be one of {', '.join(ON_ERROR_VALUES)}, not {step.on_error!r}"
    if not step.branches:
        return "a parallel step needs at least one branch"
    given: tuple[Any, ...] = step.branches  # what the user passed, whatever its type
    for branch in given:
        if isinstance(branch, WorkflowBuilder):
            return f"branch {branch._name!r} is a builder: end it with .build()"
        if not isinstance(branch, Workflow):
            return f"a branch must be built with workflow.branch(name)...build(), not {branch!r}"
    duplicates = [n for n, c in Counter(b.name for b in step.branches).items() if c > 1]
    if duplicates:
        return f"branch {duplicates[0]!r}: more than one branch has this name"
    return None


def _choice_problem(step: ChoiceStep, names: set[str]) -> str | None:
    if not step.choices and step.default is None:
        return "a choice needs a way out: at least one choice or a default"
    for index, choice in enumerate(step.choices):
        if not isinstance(choice.next, str) or choice.next not in names:
            return f"choice {index} goes to {choice.next!r}, which names no step"
        if choice.next == step.name:
            return f"choice {index} goes to the choice step itself"
        if problem := _callable_problem(choice.condition, f"choice {index} condition", 1, "(ctx)"):
            return problem
    if step.default is not None and step.default not in names:
        return f"default={step.default!r} names no step"
    if step.default == step.name:
        return "default names the choice step itself"
    return None


def _callable_problem(fn: Any, what: str, most: int, shape: str) -> str | None:
    if fn is None:
        return None
    if not callable(fn):
        return f"{what} must be a function {shape}, not {fn!r}"
    if arity(fn, most) is None:
        return f"{what} {describe(fn)} cannot be called as {shape}"
    return None


def _unreachable(built: Workflow) -> list[str]:
    seen = {built.start}
    todo = [built.start]
    while todo:
        for target in built.targets_of(todo.pop()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return [name for name in built.steps if name not in seen]
