"""The co-process behind ``jobvisor-job.sh``: one connection for the whole job.

Theory of operation. ``job_init`` starts this program as a bash ``coproc``. It connects
with ``jobvisor_worker.connect`` -- the Python library does the handshake, heartbeats
from its own I/O thread, reconnection across a supervisor restart and the outbox replay --
writes one ``ready`` line, then answers the script's requests (``lines.py``) one line each,
in order, until the script is gone. The main thread sleeps in ``select`` on two things:
its stdin (requests; EOF once every copy of the pipe's write end is closed) and a pidfd
of the script (readable the moment the script exits, even when a child it started still
holds the pipe). Either one ends the helper: it must never outlive the script by more
than a moment.

Outcomes: ``complete``/``fail`` reply only once the supervisor acked the outcome, so the
script's ``job_complete`` returns only when the result is durable. The wait runs on a
thread while the main thread keeps watching the script: a script killed while waiting
does not leave the helper behind.

Cancellation: the supervisor's ``cancel`` becomes a signal to the script (SIGTERM unless
``--signal`` says otherwise). The helper itself ignores SIGTERM, SIGINT and SIGHUP (it
leaves when the script does, and a group SIGKILL still reaches it); a SIGTERM to the
helper means the supervisor is stopping the whole job (a timeout, a stale worker), so the
script's exit status is not reported as the job's outcome then: the supervisor records
its own reason.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import select
import selectors
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from jobvisor_worker import ConfigurationError, Job, WorkerError, connect

from .datapath import MissingKey, count, lookup, shell_text
from .lines import LineError, ready_line, reply_error, reply_ok, split_request

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_POLL = 0.2  # seconds between liveness checks where there is no pidfd


class ScriptWatch:
    """Knows when the script is gone: a pidfd where the kernel has them, else polling."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.fd: int | None = None
        with contextlib.suppress(OSError, AttributeError):
            self.fd = os.pidfd_open(pid)

    def gone(self) -> bool:
        if self.fd is not None:
            ready, _, _ = select.select([self.fd], [], [], 0)
            return bool(ready)
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return _zombie(self.pid)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False


class Helper:
    """Answers the script's requests for one job (see the module docstring)."""

    def __init__(
        self,
        job: Job,
        watch: ScriptWatch,
        cancel_signal: signal.Signals,
        stopping: threading.Event,
    ) -> None:
        self.job = job
        self.watch = watch
        self.cancel_signal = cancel_signal
        self.stopping = stopping  # set when the supervisor signals the job's process group
        job.on_cancel(self._signal_script)

    def _signal_script(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(self.watch.pid, self.cancel_signal)

    # --- requests ---------------------------------------------------------------------

    def handle(self, line: str) -> bytes:
        """One request line in, one reply line out; a bad request is an ``error`` reply
        that names it, and the job carries on."""
        try:
            verb, fields = split_request(line)
            return reply_ok(self._dispatch(verb, fields))
        except ScriptGone:
            raise
        except (LineError, MissingKey, ValueError, TypeError, WorkerError, TimeoutError) as exc:
            return reply_error(str(exc))
        except Exception as exc:  # a bug here must not take the job's connection down
            say(f"internal error answering {line[:80]!r}: {exc!r}")
            return reply_error(f"internal error in the jobvisor helper: {exc!r}")

    def _dispatch(self, verb: str, fields: list[str]) -> str:
        job = self.job
        if verb == "progress":
            if not fields or not fields[0]:
                raise LineError("progress needs a percent from 0 to 100")
            message = fields[1] if len(fields) > 1 else None
            job.progress(_percent(fields[0]), message)
        elif verb == "log":
            if len(fields) < 2:
                raise LineError("log needs a level and a message")
            job.log(fields[0], fields[1])
        elif verb == "data":
            return shell_text(lookup(job.data, fields[0] if fields else ""))
        elif verb == "count":
            return str(count(job.data, fields[0] if fields else ""))
        elif verb == "complete":
            result = _json(fields[0]) if fields and fields[0].strip() else None
            self._outcome(lambda: job.complete(result))
        elif verb == "fail":
            self._outcome(lambda: job.fail(fields[0] if fields else ""))
        elif verb == "cancelled":
            return "1" if job.cancelled else "0"
        elif verb == "exit":
            self._script_exits(fields[0] if fields else "")
        return ""

    def _script_exits(self, text: str) -> None:
        """The script's EXIT trap: a non-zero status fails the job (durably, before the
        script is gone) unless an outcome was reported or the job is being stopped."""
        if not text.isdigit():
            raise LineError(f"exit needs the exit status, got {text!r}")
        status = int(text)
        job = self.job
        if status == 0 or job.outcome is not None or job.cancelled or self.stopping.is_set():
            return
        self._outcome(lambda: self.job.fail(describe_status(status)))

    def _outcome(self, report: Callable[[], None]) -> None:
        """Run ``report`` (which waits for the ack) on a thread, watching the script."""
        errors: list[BaseException] = []

        def run() -> None:
            try:
                report()
            except BaseException as exc:  # handed to the main thread below
                errors.append(exc)

        waiter = threading.Thread(target=run, name="jobvisor-shell-outcome", daemon=True)
        waiter.start()
        while waiter.is_alive():
            waiter.join(_POLL)
            if waiter.is_alive() and self.watch.gone():
                raise ScriptGone
        if errors:
            raise errors[0]


class ScriptGone(Exception):
    """The script exited while the helper waited for an ack: nobody is left to answer."""


def describe_status(status: int) -> str:
    """``the script exited with status 3``; 129..159 also name the signal (bash's 128+N)."""
    text = f"the script exited with status {status}"
    if 128 < status < 160:
        with contextlib.suppress(ValueError):
            text += f" ({signal.Signals(status - 128).name})"
    return text


def _percent(text: str) -> float:
    if not _NUMBER.fullmatch(text):
        raise ValueError(f"progress percent must be a number from 0 to 100, got {text!r}")
    return float(text)  # the library sends float64 percents, whatever the text


def _json(text: str) -> Any:
    def no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not a number JSON allows")

    try:
        value = json.loads(text, parse_constant=no_constant)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the result is not valid JSON: {exc}") from None
    _check_finite(value)
    return value


def _check_finite(value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"the result holds {value!r}, which JSON does not allow")
    if isinstance(value, list):
        for item in value:
            _check_finite(item)
    elif isinstance(value, dict):
        for item in value.values():
            _check_finite(item)


def serve(helper: Helper, stdin: int, stdout: int) -> None:
    """Answer requests from ``stdin`` on ``stdout`` until the script is gone."""
    selector = selectors.DefaultSelector()
    selector.register(stdin, selectors.EVENT_READ, "requests")
    if helper.watch.fd is not None:
        selector.register(helper.watch.fd, selectors.EVENT_READ, "script")
    pending = b""
    try:
        while True:
            events = selector.select(None if helper.watch.fd is not None else _POLL)
            kinds = {key.data for key, _ in events}
            if "requests" in kinds:
                chunk = os.read(stdin, 65536)
                if not chunk:
                    return  # every copy of the pipe's write end is closed
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    reply = helper.handle(line.decode("utf-8", errors="replace"))
                    try:
                        _write_all(stdout, reply)
                    except BrokenPipeError:
                        return
            elif "script" in kinds or (not events and helper.watch.gone()):
                return
    except ScriptGone:
        return
    finally:
        selector.close()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def say(text: str) -> None:
    """One line to stderr (the job's log); losing it never stops the job."""
    with contextlib.suppress(OSError):
        os.write(2, f"jobvisor-job.sh helper: {text}\n".encode(errors="replace"))


def run(script_pid: int, cancel_signal: signal.Signals) -> int:
    """Connect, say ``ready``, serve the script, then disconnect. Returns the exit code:
    0, or 2 when the environment is not a jobvisor worker's (started by hand)."""
    # Replies get a descriptor of their own, and fd 1 becomes stderr: a stray print from
    # any library code ends up in the job's log instead of in the middle of a reply.
    stdin, stdout = sys.stdin.fileno(), os.dup(sys.stdout.fileno())
    os.dup2(2, sys.stdout.fileno())
    stopping = threading.Event()

    def on_stop_signal(_signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    # Before connecting: a group SIGTERM during a long connect must not kill us either.
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, on_stop_signal)
    try:
        job = connect(pid=script_pid)  # hello names the process the supervisor started
    except ConfigurationError as exc:
        say(str(exc))
        return 2
    watch = ScriptWatch(script_pid)
    helper = Helper(job, watch, cancel_signal, stopping)
    try:
        _write_all(stdout, ready_line(job.id, job.name, job.attempt))
        serve(helper, stdin, stdout)
    except BrokenPipeError:
        pass
    finally:
        job.close()
        watch.close()
    return 0
