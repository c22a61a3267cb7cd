"""Fixtures for the workflow tests: a clean registry, throw-away workflow modules, and real
supervisors whose workers are cleaned up."""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from supervisor.testing import SupervisorThread
from supervisor.workflows import registry


@pytest.fixture(autouse=True)
def _clean_registry() -> Iterator[None]:
    """Each test starts and ends with an empty registry and the same sys.path."""
    registry.clear()
    path = list(sys.path)
    yield
    registry.clear()
    sys.path[:] = path


class Modules:
    """Throw-away workflow modules, written to one folder under unique names."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.names: list[str] = []

    def write(self, source: str) -> str:
        """Write ``source`` as a new module; return its name."""
        name = f"wfmod_{uuid.uuid4().hex[:10]}"
        (self.folder / f"{name}.py").write_text(textwrap.dedent(source))
        self.names.append(name)
        return name


@pytest.fixture
def modules(tmp_path: Path) -> Iterator[Modules]:
    """A folder of throw-away modules; they are forgotten by ``sys.modules`` afterwards."""
    folder = tmp_path / "mods"
    folder.mkdir()
    made = Modules(folder)
    yield made
    for name in made.names:
        sys.modules.pop(name, None)


@pytest.fixture
def flows_with(
    modules: Modules,
    start: Callable[..., SupervisorThread],
    marker: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Callable[..., Any]:
    """``flows_with(SOURCE, ..., **options)``: a supervisor running the workflows of the
    given module sources (``tests.workflows.enginehelpers.make_flows``)."""
    from tests.workflows.enginehelpers import make_flows

    def make(*sources: str, **options: Any) -> Any:
        return make_flows(modules, start, marker, monkeypatch, tmp_path, *sources, **options)

    return make
