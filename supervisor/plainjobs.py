"""Plain jobs: job kinds whose program knows nothing of the protocol (docs/worker-plain.md).

Theory of operation. A kind with ``protocol = "none"`` runs any program, as cron or
supervisord would: no socket, no token, no heartbeats; its liveness is its process. Each
attempt gets a private folder, ``state_dir/plain/<job id>/<attempt>/``, holding
``data.json`` (the job's data, the program's stdin) and, once the program has exited,
``exit.json`` (its status, last stdout line and stderr tail) written by the wrapper the
program runs under (``supervisor.plainshim``). The runner spawns that wrapper as the
attempt's process and treats it like any worker process: watched by pidfd, stopped by
TERM then KILL to its group, timed out, re-adopted by PID and start time after a restart.
When it exits, ``judge`` turns the folder's ``exit.json`` into the attempt's outcome: exit
code 0 completes, with the last stdout line as the result when it is JSON a result can
hold (else null); anything else fails with the exit code or signal and the stderr tail.
A wrapper that was killed itself leaves no ``exit.json``: then the exit status is known
only if this supervisor spawned it, and after a restart it is unknown (the attempt fails
with reason ``exit_unknown`` and is retried like a lost worker).

Files, not pipes to the supervisor, carry all of this, so a supervisor killed at any
moment loses none of it. An attempt's folder is removed once its outcome is committed, and
folders of jobs that are no longer running are swept at start-up (``sweep``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import sys
from collections.abc import Container, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import psutil

from protocol import limits, pack
from supervisor.errors import BadRequest
from supervisor.http import jsonbody
from supervisor.plainshim import DATA_FILE, EXIT_FILE
from supervisor.procs import describe_exit
from supervisor.records import JobKind, JobRecord

log = logging.getLogger(__name__)

# How much of the stderr tail the error message itself quotes (the whole tail is in
# the error's ``stderr`` field).
MESSAGE_QUOTE: Final = 200
_ROOT: Final = str(Path(__file__).resolve().parent.parent)
# The wrapper's interpreter is isolated (-I: no PYTHON* variables, no user site, no
# current folder; -S: no site-packages) so the program's environment cannot change which
# code the wrapper runs, and it starts in a few milliseconds.
_LAUNCH: Final = (
    f"import sys; sys.path.insert(0, {_ROOT!r}); "
    "from supervisor.plainshim import main; sys.exit(main(sys.argv[1:]))"
)


def plain_root(state_dir: Path) -> Path:
    return state_dir / "plain"


def attempt_folder(state_dir: Path, job_id: str, number: int) -> Path:
    return plain_root(state_dir) / job_id / str(number)


def prepare(state_dir: Path, job: JobRecord, number: int) -> Path:
    """Create the attempt's private folder and its ``data.json``; raises ``OSError``, or
    ``ValueError`` for data that JSON cannot carry (bytes, from the Python API)."""
    try:
        text = json.dumps(job.data, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"its data cannot be given to a plain program as JSON: {exc}") from None
    folder = attempt_folder(state_dir, job.id, number)
    for path in (folder.parent.parent, folder.parent, folder):
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=0o700)
    fd = os.open(folder / DATA_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    return folder


def shim_argv(kind: JobKind, folder: Path, log_path: Path) -> list[str]:
    """The attempt's process: the wrapper, running the kind's command."""
    program = [kind.command, *kind.args]
    return [sys.executable, "-I", "-S", "-c", _LAUNCH, str(folder), str(log_path), "--", *program]


def environment(
    base: Mapping[str, str], job: JobRecord, number: int, folder: Path
) -> dict[str, str]:
    """What a plain program is told: which job and attempt it is, and where its data is.
    ``JOBVISOR_JOB_ID`` also lets a restarted supervisor find a wrapper whose PID was never
    committed (``recovery.find_worker``)."""
    env = dict(base)
    for name in ("JOBVISOR_SOCKET", "JOBVISOR_TOKEN", "JOBVISOR_HEARTBEAT_INTERVAL"):
        env.pop(name, None)  # a plain program has none: never inherit the supervisor's
    env.update(
        JOBVISOR_JOB_ID=job.id,
        JOBVISOR_ATTEMPT=str(number),
        JOBVISOR_DATA_FILE=str(folder / DATA_FILE),
    )
    return env


@dataclass(frozen=True, slots=True)
class Verdict:
    """What an attempt's exit decides: a result, or an error (``Supervisor.attempt_failed``)."""

    completed: bool
    result: Any = None
    error: dict[str, Any] | None = None
    note: str | None = None  # a line for the job log about the result


def judge(folder: Path, returncode: int | None) -> Verdict:
    """The outcome of an attempt whose wrapper has exited with ``returncode`` (``None``:
    adopted after a restart, so not ours to reap)."""
    report = _read_report(folder)
    if report is None:
        if returncode is None:
            return Verdict(
                False,
                error={
                    "message": "exit status unknown: the program's wrapper was killed, and "
                    "this supervisor (restarted since it started) is not its parent",
                    "reason": "exit_unknown",
                },
            )
        return Verdict(
            False,
            error={
                "message": f"the program's wrapper {describe_exit(returncode)} "
                "before recording the program's exit status",
                "reason": "exit",
                "exit_code": returncode,
            },
        )
    if isinstance(report.get("error"), str):
        return Verdict(False, error={"message": report["error"], "reason": "spawn"})
    code, sig = report.get("exit_code"), report.get("signal")
    if code == 0:
        result, note = _result(report.get("stdout_last"))
        return Verdict(True, result=result, note=note)
    returned = -sig if isinstance(sig, int) else code if isinstance(code, int) else None
    tail = report.get("stderr_tail")
    stderr = tail if isinstance(tail, str) else ""
    message = describe_exit(returned)
    last = next((line for line in reversed(stderr.splitlines()) if line.strip()), "")
    if last:
        message += f": {last[:MESSAGE_QUOTE]}"
    error: dict[str, Any] = {"message": message, "reason": "exit", "exit_code": returned}
    if isinstance(sig, int):
        error["signal"] = _signal_name(sig)
    error["stderr"] = stderr
    return Verdict(False, error=error)


def has_report(state_dir: Path, job_id: str, number: int) -> bool:
    """Whether the attempt's wrapper recorded how its program ended."""
    return (attempt_folder(state_dir, job_id, number) / EXIT_FILE).exists()


def _read_report(folder: Path) -> dict[str, Any] | None:
    try:
        report = json.loads((folder / EXIT_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:  # written whole or not at all: this is not ours
        log.warning("cannot read %s: %s", folder / EXIT_FILE, exc)
        return None
    return report if isinstance(report, dict) else None


def _result(line: Any) -> tuple[Any, str | None]:
    """The last stdout line as a result: its JSON value, or null when it is not JSON."""
    if not isinstance(line, str):
        return None, None
    try:
        value = jsonbody.parse(line.encode("utf-8", "surrogatepass"))
    except BadRequest:
        return None, None
    try:
        limits.check(value, "the result")
        pack(value)
    except (ValueError, TypeError, OverflowError) as exc:
        return None, f"the last stdout line is JSON but cannot be stored as a result ({exc})"
    return value, None


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def stop_leftovers(job: JobRecord) -> int:
    """SIGKILL what the program of ``job`` left running after its wrapper died while no
    supervisor watched it: the processes still in the wrapper's process group that carry
    the job's id in their environment (both checked, as the group's leader is gone and
    nothing else names them). How many were killed."""
    killed = 0
    if job.pid is None:
        return killed
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if os.getpgid(process.pid) != job.pid:
                continue
            if process.environ().get("JOBVISOR_JOB_ID") != job.id:
                continue
            process.kill()
            killed += 1
    return killed


def discard(state_dir: Path, job_id: str, number: int) -> None:
    """The attempt's outcome is committed: its files are no longer needed."""
    folder = attempt_folder(state_dir, job_id, number)
    shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):  # not empty: a later attempt's folder is there
        folder.parent.rmdir()


def sweep(state_dir: Path, running: Container[str]) -> None:
    """At start-up: remove the folders of jobs that are not running (a supervisor killed
    between committing an outcome and removing the files leaves them behind)."""
    root = plain_root(state_dir)
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(root):
            if entry.name not in running:
                shutil.rmtree(entry.path, ignore_errors=True)
