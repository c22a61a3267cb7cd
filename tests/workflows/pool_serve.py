"""``jobvisor serve`` with a warm pool serving one job kind, for the kill -9 tests.

    python tests/workflows/pool_serve.py CONFIG KIND ENTRY

The engine installs its pool on its own ``workflow-step`` kind; the pool tests put one
on a plain test kind instead, with an entry that is not a workflow step. So this runs
the real ``serve`` command with one change: its supervisor installs a ``WarmPool`` on
KIND once it is open (after recovery, as the engine does) and closes it when it stops.
"""

from __future__ import annotations

import sys
from typing import Any

from supervisor import serve
from supervisor.cli import main
from supervisor.core import Supervisor
from supervisor.workflows.pool import WarmPool


def run(config: str, kind: str, entry: str) -> int:
    class PooledSupervisor(Supervisor):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.pool = WarmPool(entry)

        def open(self) -> None:
            super().open()
            self.pool.install(self.runner, kind)

        def close(self) -> None:
            try:
                super().close()
            finally:
                self.pool.close()

    serve.Supervisor = PooledSupervisor  # type: ignore[misc]
    return main(["--config", config, "serve"])


if __name__ == "__main__":
    sys.exit(run(*sys.argv[1:]))
