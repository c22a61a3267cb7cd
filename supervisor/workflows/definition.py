"""What a built workflow is: frozen step records, the retry policy, and the graph between them.

Theory of operation. The builder (``builder.py``) collects a user's calls and, in ``build()``,
checks them and freezes them into the records below. Nothing here runs user code: a
``TaskStep`` holds the handler and schemas as values, and ``dataflow.py`` calls them inside a
step worker. The supervisor's engine only reads the graph: ``Workflow.next_of`` (the
successor of a step that is not a choice), ``ChoiceStep`` targets, ``ParallelStep`` branches
(each one a ``Workflow`` of its own), ``Workflow.retry_of`` and the timeouts.

Names. A workflow, a step and a branch name are non-empty strings without ``/``: a branch is
addressed as ``"parent/parallel-step/branch"`` (its ``qualname``), which is how a step worker
finds a branch's steps (``registry.find``).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import BaseModel

OnError = Literal["fail-fast", "wait-all"]
ON_ERROR_VALUES: tuple[OnError, ...] = ("fail-fast", "wait-all")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often a failed step is tried again, and how long to wait in between.

    ``max_attempts`` counts every attempt (1 = no retry). The wait after failed attempt *n*
    is ``interval * backoff_rate ** (n - 1)``, at most ``max_interval`` seconds. ``retry_on``
    lists exception class names (exact names, e.g. ``"ConnectionError"``; exception classes
    are accepted and stored by name); empty means any error is retried.
    """

    max_attempts: int = 1
    interval: float = 1.0
    backoff_rate: float = 2.0
    max_interval: float = 60.0
    retry_on: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        names = _error_names(self.retry_on)
        object.__setattr__(self, "retry_on", names)
        if not _is_int(self.max_attempts) or self.max_attempts < 1:
            raise ValueError(f"max_attempts must be an integer >= 1, not {self.max_attempts!r}")
        for key in ("interval", "max_interval"):
            value = getattr(self, key)
            if not _is_number(value) or value < 0:
                raise ValueError(f"{key} must be a finite number >= 0, not {value!r}")
        if not _is_number(self.backoff_rate) or self.backoff_rate < 1:
            raise ValueError(
                f"backoff_rate must be a finite number >= 1, not {self.backoff_rate!r}"
            )

    def delay(self, attempt: int) -> float:
        """Seconds to wait after the failed ``attempt`` (1-based) before the next one."""
        exponent = max(attempt, 1) - 1
        try:
            wait = self.interval * self.backoff_rate**exponent
        except OverflowError:
            return float(self.max_interval)
        return float(min(wait, self.max_interval))

    def retries(self, error_type: str | None, attempt: int) -> bool:
        """Whether failed ``attempt`` (1-based), which raised ``error_type``, is tried again.

        ``error_type`` is ``None`` when the step raised nothing (its worker crashed, timed out
        or was lost): retried only when ``retry_on`` is empty.
        """
        if attempt >= self.max_attempts:
            return False
        return not self.retry_on or error_type in self.retry_on

    def as_dict(self) -> dict[str, Any]:
        return {
            "max_attempts": self.max_attempts,
            "interval": self.interval,
            "backoff_rate": self.backoff_rate,
            "max_interval": self.max_interval,
            "retry_on": list(self.retry_on),
        }


def _error_names(value: Any) -> tuple[str, ...]:
    items = (value,) if isinstance(value, str | type) else tuple(value)
    names: list[str] = []
    for item in items:
        if isinstance(item, type) and issubclass(item, BaseException):
            names.append(item.__name__)
        elif isinstance(item, str) and item.isidentifier():
            names.append(item)
        else:
            raise ValueError(f"retry_on takes exception class names, not {item!r}")
    return tuple(names)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def positive_seconds(value: Any) -> bool:
    """A timeout: a finite number of seconds > 0 (``bool`` is not a number here)."""
    return _is_number(value) and value > 0


# --- steps -----------------------------------------------------------------------------------

Mapper = Callable[..., Any]
"""An input mapper: ``(prev, workflow_input) -> input`` (a one-argument ``(prev)`` is fine)."""


@dataclass(frozen=True, slots=True)
class TaskStep:
    """Runs ``handler(input, ctx)`` in a step worker, or (legacy) the registered job ``job``.

    ``input_schema`` is a pydantic model class (validates the step's input) or a mapper;
    ``output_schema`` a pydantic model class validating what the handler returned. Legacy
    job tasks may map with ``input(ctx)`` and ``output(result, ctx)``. ``workflow`` is the
    qualified name of the workflow that holds the step (set by ``build()``).
    """

    kind: ClassVar[str] = "task"
    name: str
    handler: Callable[..., Any] | None = None
    job: str | None = None
    input_schema: type[BaseModel] | Mapper | None = None
    output_schema: type[BaseModel] | None = None
    input: Callable[..., Any] | None = None
    output: Callable[..., Any] | None = None
    retry: RetryPolicy | None = None
    timeout: float | None = None
    next: str | None = None
    end: bool = False
    workflow: str = ""

    @property
    def input_model(self) -> type[BaseModel] | None:
        """``input_schema`` when it is a pydantic model, else ``None``."""
        return self.input_schema if is_model(self.input_schema) else None  # type: ignore[return-value]

    @property
    def input_mapper(self) -> Mapper | None:
        """``input_schema`` when it is a mapper function, else ``None``."""
        schema = self.input_schema
        return None if schema is None or is_model(schema) else schema


@dataclass(frozen=True, slots=True)
class ParallelStep:
    """Runs each branch (a ``Workflow``) at once; its output is keyed by branch name."""

    kind: ClassVar[str] = "parallel"
    name: str
    branches: tuple[Workflow, ...]
    on_error: OnError = "fail-fast"
    next: str | None = None
    end: bool = False
    workflow: str = ""

    def branch(self, name: str) -> Workflow | None:
        return next((b for b in self.branches if b.name == name), None)


@dataclass(frozen=True, slots=True)
class Choice:
    """One way out of a choice step: go to ``next`` when ``condition(ctx)`` is true."""

    condition: Callable[..., Any]
    next: str


@dataclass(frozen=True, slots=True)
class ChoiceStep:
    """Goes to the first choice whose condition holds, else to ``default``."""

    kind: ClassVar[str] = "choice"
    name: str
    choices: tuple[Choice, ...]
    default: str | None = None
    workflow: str = ""


@dataclass(frozen=True, slots=True)
class PassStep:
    """Outputs ``transform(ctx)``, else the static ``result`` (``has_result`` tells a given
    ``result=None`` from no result), else ``prev`` unchanged."""

    kind: ClassVar[str] = "pass"
    name: str
    transform: Callable[..., Any] | None = None
    result: Any = None
    has_result: bool = False
    next: str | None = None
    end: bool = False
    workflow: str = ""


@dataclass(frozen=True, slots=True)
class EndStep:
    """Ends the workflow; its output (the workflow's) is ``prev`` unchanged."""

    kind: ClassVar[str] = "end"
    name: str
    workflow: str = ""


Step = TaskStep | ParallelStep | ChoiceStep | PassStep | EndStep


# --- the workflow ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Workflow:
    """A built, validated workflow (or branch). Made by ``builder.workflow(...).build()``.

    ``steps`` keeps declaration order; ``start`` is the first declared step. ``timeout`` is
    the whole instance's limit in seconds (``None``: none). ``default_retry`` applies to
    tasks without their own ``retry`` (``None``: a branch inherits its parent's, a top-level
    workflow means one attempt). ``module`` is the module that called ``workflow(...)``, which
    a step worker imports to find the workflow. ``qualname`` is ``name`` for a top-level
    workflow and ``"parent/parallel-step/branch"`` for a branch.
    """

    name: str
    steps: Mapping[str, Step]
    start: str
    timeout: float | None = None
    default_retry: RetryPolicy | None = None
    module: str | None = None
    is_branch: bool = False
    qualname: str = ""
    _order: tuple[str, ...] = field(default=(), init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.qualname:
            object.__setattr__(self, "qualname", self.name)
        object.__setattr__(self, "_order", tuple(self.steps))

    def step(self, name: str) -> Step:
        """The step called ``name``; ``KeyError`` naming the workflow if there is none."""
        try:
            return self.steps[name]
        except KeyError:
            raise KeyError(f"workflow {self.qualname!r} has no step {name!r}") from None

    def next_of(self, step_name: str) -> str | None:
        """The successor of a task, parallel or pass step: its ``next``, else the step
        declared after it, else ``None`` (the workflow ends). ``None`` for a step with
        ``end=True``, an end step, and a choice step (``dataflow.choose`` picks its target).
        """
        step = self.step(step_name)
        if isinstance(step, ChoiceStep | EndStep) or step.end:
            return None
        if step.next is not None:
            return step.next
        index = self._order.index(step_name) + 1
        return self._order[index] if index < len(self._order) else None

    def targets_of(self, step_name: str) -> tuple[str, ...]:
        """Every step that may follow ``step_name`` (a choice's targets and default)."""
        step = self.step(step_name)
        if isinstance(step, ChoiceStep):
            found = [c.next for c in step.choices]
            if step.default is not None:
                found.append(step.default)
            return tuple(dict.fromkeys(found))
        successor = self.next_of(step_name)
        return () if successor is None else (successor,)

    def first_steps(self) -> tuple[str, ...]:
        """The steps that may run with no ``prev``: the start step and, when it is a choice,
        the steps it may go to (a choice hands on the ``prev`` it got), and so on."""
        found = [self.start]
        for name in found:
            if isinstance(self.steps[name], ChoiceStep):
                found.extend(t for t in self.targets_of(name) if t not in found)
        return tuple(found)

    def retry_of(self, step_name: str) -> RetryPolicy:
        """The policy for a task: its own ``retry``, else ``default_retry``, else one attempt."""
        step = self.step(step_name)
        if isinstance(step, TaskStep) and step.retry is not None:
            return step.retry
        return self.default_retry or RetryPolicy()

    def branch(self, path: str) -> Workflow:
        """The branch at ``"parallel-step/branch[/parallel-step/branch...]"`` below this one."""
        parts = path.split("/")
        if len(parts) % 2:
            raise KeyError(f"{path!r} is not a 'step/branch' path in workflow {self.qualname!r}")
        current: Workflow = self
        for step_name, branch_name in zip(parts[::2], parts[1::2], strict=True):
            step = current.steps.get(step_name)
            found = step.branch(branch_name) if isinstance(step, ParallelStep) else None
            if found is None:
                raise KeyError(
                    f"workflow {current.qualname!r} has no parallel step {step_name!r} "
                    f"with a branch {branch_name!r}"
                )
            current = found
        return current

    def graph(self) -> dict[str, Any]:
        """A JSON-able description: the steps in order, each with its kind and successors."""
        return {
            "name": self.name,
            "qualname": self.qualname,
            "start": self.start,
            "timeout": self.timeout,
            "default_retry": None if self.default_retry is None else self.default_retry.as_dict(),
            "module": self.module,
            "steps": [self._step_graph(step) for step in self.steps.values()],
        }

    def _step_graph(self, step: Step) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": step.name, "kind": step.kind}
        if isinstance(step, TaskStep):
            entry.update(
                next=self.next_of(step.name),
                handler=describe(step.handler),
                job=step.job,
                input_schema=_describe_schema(step.input_schema),
                output_schema=_describe_schema(step.output_schema),
                retry=None if step.retry is None else step.retry.as_dict(),
                timeout=step.timeout,
            )
        elif isinstance(step, ParallelStep):
            entry.update(
                next=self.next_of(step.name),
                on_error=step.on_error,
                branches=[branch.graph() for branch in step.branches],
            )
        elif isinstance(step, ChoiceStep):
            entry.update(
                choices=[
                    {"condition": describe(c.condition), "next": c.next} for c in step.choices
                ],
                default=step.default,
            )
        elif isinstance(step, PassStep):
            entry.update(
                next=self.next_of(step.name),
                transform=describe(step.transform),
                has_result=step.has_result,
            )
        return entry


# --- callables -------------------------------------------------------------------------------


def is_model(value: Any) -> bool:
    """Whether ``value`` is a pydantic model class (a schema, as opposed to a mapper)."""
    return isinstance(value, type) and issubclass(value, BaseModel)


def describe(fn: Callable[..., Any] | None) -> str | None:
    """``"module.qualname"`` of a function, for graphs and messages."""
    if fn is None:
        return None
    module = getattr(fn, "__module__", None) or "?"
    name = getattr(fn, "__qualname__", None) or type(fn).__name__
    return f"{module}.{name}"


def _describe_schema(schema: Any) -> str | None:
    if schema is None:
        return None
    if is_model(schema):
        return f"model:{schema.__name__}"
    return f"mapper:{describe(schema)}"


def arity(fn: Callable[..., Any], most: int) -> int | None:
    """How many positional arguments to pass ``fn``, at most ``most``: the most it accepts.

    ``None`` when it accepts none of 1..``most`` (a function needing more, or keyword-only
    ones). A callable whose signature cannot be read is given ``most``.
    """
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return most
    for count in range(most, 0, -1):
        try:
            signature.bind(*([None] * count))
        except TypeError:
            continue
        return count
    return None
