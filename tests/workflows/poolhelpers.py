"""Shared by the warm-pool tests: the step job kind, and waiting for warm workers."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from supervisor.testing import TEST_RUN_VAR, SupervisorThread, wait_for
from supervisor.workflows.pool import WarmPool

STEPS = Path(__file__).parent / "pool_steps"
POOLWORKER = ["-m", "supervisor.workflows.poolworker"]


def step_kind(
    marker: str, ready_dir: Path, modules: tuple[str, ...] = ("poolsteps",), **options: Any
) -> dict[str, Any]:
    """A ``[jobs.NAME]`` table whose worker is the pool worker importing ``modules``."""
    imports = [arg for module in modules for arg in ("--import", module)]
    env = {TEST_RUN_VAR: marker, "POOLSTEPS_READY_DIR": str(ready_dir)}
    return {
        "command": sys.executable,
        "args": [*POOLWORKER, "--path", str(STEPS), *imports],
        "env": env,
        "heartbeat_timeout": 5.0,
        **options,
    }


def wait_warm(sv: SupervisorThread, pool: WarmPool, ready_dir: Path, count: int) -> list[int]:
    """Wait until ``count`` workers wait in ``pool``, each done importing; their PIDs."""

    def warm() -> list[int] | None:
        pids = sv.call(pool.idle_pids)
        done = len(pids) == count and all((ready_dir / str(pid)).exists() for pid in pids)
        return pids if done else None

    return wait_for(warm, timeout=30, message=f"{count} warm workers")
