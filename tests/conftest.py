"""Suite-wide settings and fixtures: bounded Hypothesis runs so the whole suite stays fast on
2 cores, tagged worker processes killed at teardown, in-process supervisors stopped."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from supervisor.testing import SupervisorThread, kill_workers, make_settings

settings.register_profile(
    "ci",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("fuzz", max_examples=100_000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session", autouse=True)
def _socket_folders() -> Iterator[None]:
    """Socket folders made by tests go under one short folder, removed at the end."""
    from supervisor.testing import SOCKET_BASE_VAR

    base = tempfile.mkdtemp(prefix="jvt-", dir="/tmp")
    os.environ[SOCKET_BASE_VAR] = base
    yield
    os.environ.pop(SOCKET_BASE_VAR, None)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def marker() -> Iterator[str]:
    """A tag in every worker's environment; all tagged processes die at teardown."""
    tag = uuid.uuid4().hex
    yield tag
    kill_workers(tag)


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
