"""Suite-wide settings: bounded Hypothesis runs so the whole suite stays fast on 2 cores."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

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
