"""Start real worker processes (``tests/worker/workers/*.py``) against a fake supervisor."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.worker.fake_supervisor import FakeSupervisor

WORKERS = Path(__file__).parent / "workers"


class WorkerProcess:
    """A worker process whose stderr (the job's log) goes to a file."""

    def __init__(
        self,
        fake: FakeSupervisor,
        log_dir: Path,
        script: str = "scripted.py",
        *,
        options: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
        new_session: bool = True,
        stderr: Any = None,
    ) -> None:
        self.log_path = log_dir / f"worker-{time.monotonic_ns()}.log"
        full_env = fake.env(**(env or {}))
        if options is not None:
            full_env["JV_TEST_OPTIONS"] = json.dumps(options)
        # Closed in kill(), once the process is gone; the test reads the file meanwhile.
        self._log = open(self.log_path, "wb") if stderr is None else None  # noqa: SIM115
        self.new_session = new_session
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKERS / script)],
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log if stderr is None else stderr,
            start_new_session=new_session,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float = 10.0) -> int:
        """The exit status; fails the test (showing the log) if it takes longer."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"worker still running after {timeout} s; its log:\n{self.log()}"
            ) from None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, text: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not in the worker's log:\n{self.log()}")
            time.sleep(0.01)

    def kill(self) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                if self.new_session:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                else:
                    self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        if self._log is not None:
            self._log.close()
