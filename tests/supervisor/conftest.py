"""Fixtures for supervisor tests: real supervisors, real worker processes, cleaned up."""

from __future__ import annotations

import shutil
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from supervisor.testing import (
    TEST_RUN_VAR,
    SupervisorThread,
    kill_workers,
    make_settings,
)

WORKERS = Path(__file__).parent / "workers"


@pytest.fixture
def marker() -> Iterator[str]:
    """A tag in every worker's environment; all tagged processes die at teardown."""
    tag = uuid.uuid4().hex
    yield tag
    kill_workers(tag)


@pytest.fixture
def worker(marker: str) -> Callable[..., dict[str, Any]]:
    """A ``[jobs.NAME]`` table running one of tests/supervisor/workers/."""

    def kind(script: str = "scripted.py", **options: Any) -> dict[str, Any]:
        path = WORKERS / script
        command = [str(path)] if script.endswith(".sh") else [sys.executable, str(path)]
        env = {TEST_RUN_VAR: marker, **options.pop("env", {})}
        return {"command": command[0], "args": command[1:], "env": env, **options}

    return kind


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., SupervisorThread]]:
    """Start an in-process supervisor (stopped at teardown)."""
    started: list[SupervisorThread] = []

    def run(
        jobs: dict[str, Any] | None = None, state: Path | None = None, **options: Any
    ) -> SupervisorThread:
        settings = make_settings(state or tmp_path / "state", jobs, **options)
        sv = SupervisorThread(settings).start()
        started.append(sv)
        return sv

    yield run
    for sv in started:
        sv.stop()
        if sv.settings.socket_dir is not None:
            shutil.rmtree(sv.settings.socket_dir, ignore_errors=True)
