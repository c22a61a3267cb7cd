"""Running the ``jobvisor`` command in a pseudo-terminal, as a person at a terminal would."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

from supervisor.testing import wait_for

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class PtyRun:
    """``python -m supervisor ARGS`` with stdin, stdout and stderr on a new pty (80x200),
    its output collected by a thread; ``text()`` is what it wrote so far, escapes removed."""

    def __init__(
        self, args: list[str], *, cwd: Path, env: dict[str, str], no_color: bool = False
    ) -> None:
        master, slave = os.openpty()
        env = {**env, "TERM": "xterm-256color", "COLUMNS": "200", "LINES": "50"}
        env.pop("NO_COLOR", None)
        if no_color:
            env["NO_COLOR"] = "1"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "supervisor", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
        os.close(slave)
        self._master = master
        self._chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self._master, 65536)
            except OSError:  # EIO: every slave end is closed
                return
            if not data:
                return
            self._chunks.append(data)

    def raw(self) -> str:
        return b"".join(self._chunks).decode("utf-8", "replace")

    def text(self) -> str:
        return ANSI.sub("", self.raw())

    def wait_text(self, pattern: str, message: str) -> str:
        """Wait until the output matches ``pattern`` (a regex); return the output."""

        def matched() -> str | None:
            text = self.text()
            return text if re.search(pattern, text) else None

        try:
            return wait_for(matched, timeout=60, message=message)
        except TimeoutError:
            raise AssertionError(f"no {message} in the output: {self.text()!r}") from None

    def finish(self, timeout: float = 60) -> int:
        """Wait for the command's exit and the last of its output; its exit status."""
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=10)
        os.close(self._master)
        return code
