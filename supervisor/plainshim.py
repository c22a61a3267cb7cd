"""The small wrapper a plain job's program runs under (docs/worker-plain.md).

Theory of operation. A plain program knows nothing of jobvisor: it reads its input, prints,
and exits. Its exit status is the whole outcome, and ``waitpid`` gives it only to the
program's parent; a supervisor restarted after ``kill -9`` is nobody's parent. So the
supervisor does not start the program itself: it starts this module
(``main(["FOLDER", "LOG", "--", PROGRAM, ARGS...])``) as the attempt's process, the
session and group leader whose PID and start time it stores and re-adopts after a restart
(``plainjobs.shim_argv``: an isolated interpreter that imports only this module and the
job log helpers, whatever the program's environment).
The shim starts the program as its child, with stdin from the attempt's ``data.json``, and
when the program has exited writes ``exit.json`` into the attempt's folder (a temporary file
renamed, so it is whole or absent) and exits the same way. The supervisor reads that file
when the shim exits, whether it spawned the shim or adopted it: the status survives any
number of supervisor restarts, and only a shim killed itself leaves it unknown.

The program's stdout and stderr are pipes to the shim, not to the supervisor: the shim
outlives the supervisor, so a restart never breaks them (a program writing to a dead pipe
would die of SIGPIPE). Each line goes into the job's log labelled ``[stdout]`` or
``[stderr]``; the shim keeps the last stdout line (the result, if it is JSON) and a bounded
tail of stderr (the error of a failed attempt) for ``exit.json``.

Signals: the supervisor stops an attempt by signalling its whole process group (TERM, then
KILL after ``kill_grace``), which reaches the program directly. The shim catches TERM, INT
and HUP with a handler (not ``SIG_IGN``, which the program would inherit across ``exec``) and
keeps waiting: the program's status is what counts. A program that left the shim's process
group (a ``setsid`` of its own) gets them forwarded.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any, Final

from supervisor.joblogs import open_log, stamp

DATA_FILE: Final = "data.json"
EXIT_FILE: Final = "exit.json"
# A line longer than this is logged in pieces and is never a result.
MAX_LINE: Final = 64 * 1024
# How much of the end of stderr a failed attempt's error keeps.
STDERR_TAIL: Final = 4096
_FORWARDED: Final = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class Stream:
    """One of the program's output pipes: its lines to the log, its last line kept."""

    def __init__(self, fd: int, tag: str, log_fd: int) -> None:
        self.fd = fd
        self.tag = tag
        self.log_fd = log_fd
        self.pending = bytearray()  # the line being read
        self.overlong = False  # the line being read outgrew MAX_LINE
        self.last: bytes | None = None  # the last complete non-blank line, if short enough
        self.tail = b""

    def feed(self, data: bytes) -> None:
        self.tail = (self.tail + data)[-STDERR_TAIL:]
        *lines, rest = data.split(b"\n")
        for line in lines:
            self.pending += line
            overlong = self.overlong or len(self.pending) > MAX_LINE
            self._line(bytes(self.pending), overlong=overlong)
            self.pending.clear()
            self.overlong = False
        self.pending += rest
        if len(self.pending) > MAX_LINE:  # log it in pieces; it cannot be a result
            self._write(bytes(self.pending))
            self.pending.clear()
            self.overlong = True

    def finish(self) -> None:
        """End of output: a last line without a newline counts too."""
        if self.pending:
            overlong = self.overlong or len(self.pending) > MAX_LINE
            self._line(bytes(self.pending), overlong=overlong)
            self.pending.clear()

    def _line(self, line: bytes, *, overlong: bool) -> None:
        if line.strip() or overlong:
            self.last = None if overlong else line
        self._write(line)

    def _write(self, text: bytes) -> None:
        head = f"{stamp(time.time())} [{self.tag}] ".encode()
        with contextlib.suppress(OSError):  # a full disk must not stop the program
            os.write(self.log_fd, head + text.replace(b"\n", b"\n    ") + b"\n")


def read_available(stream: Stream) -> bool:
    """Read what the pipe holds now; ``False`` at end of file."""
    while True:
        try:
            data = os.read(stream.fd, 65536)
        except BlockingIOError:
            return True
        if not data:
            return False
        stream.feed(data)


def pump(child: subprocess.Popen[bytes], streams: list[Stream]) -> int:
    """Copy the program's output until it exits; its return code."""
    selector = selectors.DefaultSelector()
    for stream in streams:
        os.set_blocking(stream.fd, False)
        selector.register(stream.fd, selectors.EVENT_READ, stream)
    pidfd: int | None = None
    with contextlib.suppress(AttributeError, OSError):  # no pidfd: poll below
        pidfd = os.pidfd_open(child.pid)
        selector.register(pidfd, selectors.EVENT_READ, None)
    while child.poll() is None:
        for key, _ in selector.select(None if pidfd is not None else 0.1):
            stream = key.data
            if stream is not None and not read_available(stream):
                selector.unregister(stream.fd)
    # Exited: take what it wrote, but do not wait for end of file, which a child it left
    # behind could hold off for ever (the supervisor kills those once we exit).
    for stream in streams:
        read_available(stream)
        stream.finish()
    return child.returncode


def write_report(folder: Path, report: dict[str, Any]) -> None:
    temporary = folder / (EXIT_FILE + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(report, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, folder / EXIT_FILE)


def text(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8", "replace")


def run(folder: Path, log_path: str, program: list[str]) -> int:
    log_fd = open_log(Path(log_path))
    child: subprocess.Popen[bytes] | None = None

    def forward(signum: int, _frame: FrameType | None) -> None:
        if child is not None and child.poll() is None:
            with contextlib.suppress(OSError):
                if os.getpgid(child.pid) != os.getpgrp():
                    os.kill(child.pid, signum)

    for sig in _FORWARDED:
        signal.signal(sig, forward)
    try:
        with open(folder / DATA_FILE, "rb") as stdin:
            child = subprocess.Popen(
                program, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
    except OSError as exc:
        write_report(folder, {"error": f"cannot start {program[0]!r}: {exc.strerror or exc}"})
        return 127
    assert child.stdout is not None and child.stderr is not None
    out = Stream(child.stdout.fileno(), "stdout", log_fd)
    err = Stream(child.stderr.fileno(), "stderr", log_fd)
    code = pump(child, [out, err])
    write_report(
        folder,
        {
            "exit_code": code if code >= 0 else None,
            "signal": -code if code < 0 else None,
            "stdout_last": text(out.last),
            "stderr_tail": text(err.tail),
        },
    )
    return code


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print("usage: plainshim FOLDER LOG -- PROGRAM [ARGS...]", file=sys.stderr)
        return 2
    code = run(Path(argv[0]), argv[1], argv[3:])
    if code < 0:  # die of the same signal, so that our own parent sees what happened
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        return 128 - code  # still here: a signal whose default is not to terminate
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
