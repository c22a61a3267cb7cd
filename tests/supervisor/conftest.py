"""Fixtures for supervisor tests: real supervisors, real worker processes, cleaned up."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from supervisor.testing import TEST_RUN_VAR

WORKERS = Path(__file__).parent / "workers"


@pytest.fixture
def worker(marker: str) -> Callable[..., dict[str, Any]]:
    """A ``[jobs.NAME]`` table running one of tests/supervisor/workers/."""

    def kind(script: str = "scripted.py", **options: Any) -> dict[str, Any]:
        path = WORKERS / script
        command = [str(path)] if script.endswith(".sh") else [sys.executable, str(path)]
        env = {TEST_RUN_VAR: marker, **options.pop("env", {})}
        return {"command": command[0], "args": command[1:], "env": env, **options}

    return kind
