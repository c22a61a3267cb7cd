"""Helper processes of the bench (load generator, ceiling reader) and how they are driven.

A helper reads one command per line on stdin and answers each with one JSON line on
stdout, from inside its own selectors loop: stdin is just another readable file there,
so a helper answers promptly even while it floods thousands of sockets. ``Child`` is
the driver's end: ``start_helper``, ``ask``, ``stop``. Every helper carries the run's
marker in its environment, so the final sweep (``Run.cleanup``) finds it even after a
crash.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


class ChildError(RuntimeError):
    pass


def start_helper(
    module: str, spec: Mapping[str, Any], *, folder: Path, env: Mapping[str, str]
) -> Child:
    """Run ``python -m MODULE FOLDER/NAME.json`` with ``spec`` in that file, its stderr
    appended to ``FOLDER/NAME.log`` (NAME: the module's last part); return it once it has
    said it is ready."""
    name = module.rpartition(".")[2]
    spec_path = folder / f"{name}.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    child = Child(module, [str(spec_path)], env=env, log=folder / f"{name}.log")
    try:
        child.read(timeout=60)  # its "ready" line
    except BaseException:
        child.stop()
        raise
    return child


class Child:
    def __init__(
        self, module: str, args: Sequence[str], *, env: Mapping[str, str], log: Path
    ) -> None:
        self.log = log
        full_env = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
        with open(log, "ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", module, *args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                cwd=ROOT,
                env=full_env,
                start_new_session=True,  # it leads its own group, like a worker
            )
        self._buf = b""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def ask(self, command: str, timeout: float = 60.0) -> dict[str, Any]:
        """Send one command line; return its JSON answer."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(command.encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise ChildError(f"{self._name()} is gone ({exc}); see {self.log}") from None
        return self.read(timeout)

    def read(self, timeout: float = 60.0) -> dict[str, Any]:
        """The next JSON line the helper prints (an answer, or its 'ready' line)."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChildError(f"{self._name()} did not answer within {timeout:g} s")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                raise ChildError(f"{self._name()} exited ({self.proc.poll()}); see {self.log}")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise ChildError(f"{self._name()}: {answer['error']}")
        return answer

    def _name(self) -> str:
        return f"helper {self.proc.args[2]} (pid {self.proc.pid})"  # type: ignore[index]

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, 9)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def serve_commands(handler: Any) -> Any:
    """For helpers: a stdin reader that hands complete lines to ``handler(line) -> dict``."""
    buf = bytearray()

    def on_readable() -> bool:
        """False when stdin closed (the driver is gone: exit)."""
        chunk = os.read(0, 65536)
        if not chunk:
            return False
        buf.extend(chunk)
        while (end := buf.find(b"\n")) >= 0:
            line = bytes(buf[:end]).decode().strip()
            del buf[: end + 1]
            if line:
                try:
                    answer = handler(line)
                except Exception as exc:
                    answer = {"error": f"{type(exc).__name__}: {exc}"}
                reply(answer)
        return True

    return on_readable


def reply(answer: dict[str, Any]) -> None:
    data = (json.dumps(answer, separators=(",", ":")) + "\n").encode()
    while data:
        written = os.write(1, data)
        data = data[written:]
