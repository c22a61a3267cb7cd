"""Fixtures for the worker library's tests: a fake supervisor and worker processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.worker.fake_supervisor import FakeSupervisor
from tests.worker.worker_process import WorkerProcess


@pytest.fixture
def fake() -> Iterator[FakeSupervisor]:
    """A fake supervisor listening on a Unix socket; fails the test on protocol errors."""
    with FakeSupervisor() as sup:
        yield sup
        assert not sup.errors, sup.errors


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start worker processes; any still running at the end are killed with their group."""
    started: list[WorkerProcess] = []

    def start(fake: FakeSupervisor, *args: Any, **kwargs: Any) -> WorkerProcess:
        worker = WorkerProcess(fake, tmp_path, *args, **kwargs)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill()
