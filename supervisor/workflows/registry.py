"""The workflows a process knows, by name: loaded from ``"pkg.mod:attr"`` specs or registered.

Theory of operation. One module-level table maps a top-level workflow's name to its
``Workflow``. Both processes that need workflows fill it the same way: the supervisor from
the ``workflows`` and ``python_path`` keys of ``jobvisor.toml`` (``load``), a step worker by
importing the module a step job names (``find(name, module=...)``, which registers every
top-level workflow bound at the module's top level). A branch is found by its qualified name,
``"parent/parallel-step/branch"``.

Registering the same ``Workflow`` object twice is a no-op (the supervisor and a test may both
load a module); two different workflows under one name are refused, naming both sources. A
workflow built in ``__main__`` is refused: a step worker could not import it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable, Sequence
from os import PathLike
from pathlib import Path
from types import ModuleType
from typing import Any

from supervisor.workflows.definition import Workflow
from supervisor.workflows.errors import UnknownWorkflow, WorkflowRegistrationError

_workflows: dict[str, Workflow] = {}
_sources: dict[str, str] = {}  # workflow name -> the spec or module it came from


def load(
    specs: Sequence[str], python_path: Iterable[str | PathLike[str]] = ()
) -> dict[str, Workflow]:
    """Import each ``"pkg.mod:attr"`` spec (``attr`` a workflow or a list of them) with
    ``python_path`` first on ``sys.path``; register and return the workflows by name.

    Raises ``WorkflowRegistrationError`` naming the spec: a malformed spec, a module that
    cannot be imported (or raises while importing, e.g. a ``build()`` error), a missing
    attribute, a value that is not a workflow, a duplicate name.
    """
    add_path(python_path)
    found: dict[str, Workflow] = {}
    origins: dict[str, str] = {}
    for spec in specs:
        for built in _resolve(spec):
            if built.name in found and found[built.name] is not built:
                raise WorkflowRegistrationError(
                    f"workflow spec {spec!r}: a workflow named {built.name!r} "
                    f"is already given by {origins[built.name]!r}"
                )
            found[built.name] = built
            origins[built.name] = spec
    for name, built in found.items():
        _check_free(built, origins[name])
    for name, built in found.items():
        _workflows[name] = built
        _sources[name] = origins[name]
    return found


def register(*workflows: Workflow, source: str = "register()") -> None:
    """Register built workflows in this process (an application, a test)."""
    for built in workflows:
        if not isinstance(built, Workflow):
            raise WorkflowRegistrationError(
                f"{source}: {built!r} is not a built workflow (end the builder with .build())"
            )
        _check_workflow(built, source)
        _check_free(built, source)
        _workflows[built.name] = built
        _sources[built.name] = source


def find(name: str, module: str | None = None) -> Workflow:
    """The registered workflow, or branch, called ``name`` (``"parent/step/branch"``).

    Not registered yet and ``module`` given: import ``module`` and register the top-level
    workflows bound at its top level (as a step worker does), then look again.
    """
    top, _, below = name.partition("/")
    if top not in _workflows and module is not None:
        register_module(_import(module, f"module {module!r}"))
    built = _workflows.get(top)
    if built is None:
        where = f" (module {module!r} defines none)" if module is not None else ""
        raise UnknownWorkflow(f"no workflow named {top!r} is registered{where}")
    if not below:
        return built
    try:
        return built.branch(below)
    except KeyError as exc:
        raise UnknownWorkflow(f"no branch {name!r}: {exc.args[0]}") from None


def register_module(module: ModuleType) -> list[Workflow]:
    """Register every top-level workflow (or list of them) bound at ``module``'s top level."""
    found: list[Workflow] = []
    for value in list(vars(module).values()):
        for item in value if isinstance(value, list | tuple) else (value,):
            if isinstance(item, Workflow) and not item.is_branch and item not in found:
                found.append(item)
    register(*found, source=f"module {module.__name__!r}")
    return found


def names() -> list[str]:
    """The registered workflows' names, sorted."""
    return sorted(_workflows)


def registered() -> dict[str, Workflow]:
    """A copy of the table: name -> workflow."""
    return dict(_workflows)


def clear() -> None:
    """Forget every registered workflow (for tests)."""
    _workflows.clear()
    _sources.clear()


def add_path(python_path: Iterable[str | PathLike[str]]) -> None:
    """Put each folder first on ``sys.path`` (once), in the order given."""
    for entry in reversed([str(Path(p)) for p in python_path]):
        if entry not in sys.path:
            sys.path.insert(0, entry)


# --- helpers ---------------------------------------------------------------------------------


def _resolve(spec: str) -> list[Workflow]:
    module_name, colon, attr = spec.partition(":") if isinstance(spec, str) else ("", "", "")
    if not colon or not module_name or not attr:
        raise WorkflowRegistrationError(
            f"workflow spec {spec!r}: expected 'package.module:attribute'"
        )
    module = _import(module_name, f"workflow spec {spec!r}")
    value: Any = module
    for part in attr.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise WorkflowRegistrationError(
                f"workflow spec {spec!r}: module {module_name!r} has no attribute {attr!r}"
            ) from None
    items = list(value) if isinstance(value, list | tuple) else [value]
    if not items:
        raise WorkflowRegistrationError(f"workflow spec {spec!r}: {attr!r} is an empty list")
    for item in items:
        if not isinstance(item, Workflow):
            raise WorkflowRegistrationError(
                f"workflow spec {spec!r}: {attr!r} is {_kind(item)}, not a built workflow "
                "(or a list of them; end a builder with .build())"
            )
        _check_workflow(item, f"workflow spec {spec!r}")
    return items


def _import(module_name: str, where: str) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = f"module {exc.name!r}" if exc.name else "a module"
        raise WorkflowRegistrationError(
            f"{where}: cannot import {module_name!r}: {missing} not found on sys.path "
            "(is python_path set?)"
        ) from exc
    except Exception as exc:
        raise WorkflowRegistrationError(
            f"{where}: importing {module_name!r} raised {type(exc).__name__}: {exc}"
        ) from exc


def _check_workflow(built: Workflow, where: str) -> None:
    if built.is_branch:
        raise WorkflowRegistrationError(
            f"{where}: {built.name!r} is a branch (workflow.branch); register the workflow "
            "whose parallel step holds it"
        )
    if built.module in (None, "__main__"):
        raise WorkflowRegistrationError(
            f"{where}: workflow {built.name!r} is defined in {built.module or 'no module'}, "
            "which a step worker cannot import: define it in an importable module"
        )


def _check_free(built: Workflow, source: str) -> None:
    held = _workflows.get(built.name)
    if held is not None and held is not built:
        raise WorkflowRegistrationError(
            f"{source}: a workflow named {built.name!r} is already registered "
            f"(from {_sources.get(built.name, '?')})"
        )


def _kind(value: Any) -> str:
    if isinstance(value, ModuleType):
        return f"module {value.__name__!r}"
    return f"of type {type(value).__name__}"
