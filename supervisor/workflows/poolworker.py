"""A step worker of the warm pool: ``python -m supervisor.workflows.poolworker``.

Theory of operation (docs/workflows.md, "Where code runs"). The process is started
before it has a job: it puts each ``--path`` on ``sys.path`` and imports each
``--import`` module (the workflow modules, whose import cost is paid while it waits),
moves its standard input (a pipe only its supervisor holds) off fd 0, which becomes
``/dev/null``, and blocks reading one line from that pipe. That line is its assignment,
a JSON object::

    {"env": {"JOBVISOR_SOCKET": ..., "JOBVISOR_JOB_ID": ..., "JOBVISOR_TOKEN": ...,
             "JOBVISOR_HEARTBEAT_INTERVAL": ..., ...},
     "log": "/state/logs/<job id>.log",
     "entry": "pkg.mod:function"}

* End of file instead of a line: the supervisor is gone or the pool let this worker
  go. The worker exits at once, silently (nothing is owed to anyone).
* A line: stdout and stderr are pointed at the job's log (``O_APPEND``, created 0600
  like the supervisor's job logs), the environment is set, and
  ``jobvisor_worker._run.run_once(entry)`` (``run_job`` without the exit) runs the step:
  heartbeats, reconnection after a supervisor restart and outcome replay are the worker
  library's, as for any job. Once the outcome is acked and the connection closed,
  stdout and stderr point back at the pool's log and the worker reads its next line:
  the supervisor has handed it back to the pool (or kills it, if it was stopping it).
  The token reaches this process only through the pipe and ``os.environ``: never its
  argv nor its initial environment (``/proc/PID/environ``).
* A line that is not a valid assignment: one line on stderr (the pool's log) says why
  and the worker exits ``EXIT_BAD_ASSIGNMENT``; the runner then fails the attempt
  with that exit code. A warm-up import or an entry that fails is reported through the
  job instead: the step fails with a message naming the module or the entry, and a
  line in the job's log says why.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, Final, NoReturn

from supervisor.joblogs import stamp

EXIT_BAD_ASSIGNMENT: Final = 2
# An assignment is a few hundred bytes; anything near this is not one.
MAX_ASSIGNMENT: Final = 1 << 20
TAG: Final = "poolworker"

StepFunction = Callable[[Any], Any]


class BadAssignment(ValueError):
    """The line read from the pool is not an assignment (the message says why)."""


@dataclass(frozen=True, slots=True)
class Assignment:
    """One job handed to a waiting worker (see the module docstring)."""

    env: dict[str, str]
    log: str
    entry: str

    def encode(self) -> bytes:
        """The line the pool writes to the worker's stdin."""
        body = {"env": self.env, "log": self.log, "entry": self.entry}
        return json.dumps(body, separators=(",", ":")).encode() + b"\n"


def parse_assignment(line: bytes) -> Assignment:
    """The assignment in ``line``, or ``BadAssignment`` naming what is wrong."""
    try:
        data = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadAssignment(f"the assignment is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadAssignment(f"the assignment is not a JSON object: {type(data).__name__}")
    env, log, entry = data.get("env"), data.get("log"), data.get("entry")
    if not isinstance(env, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in env.items()
    ):
        raise BadAssignment(f"the assignment's env is not an object of strings: {env!r:.80}")
    bad_names = [k for k in env if not k or "=" in k or "\0" in k or "\0" in env[k]]
    if bad_names:
        raise BadAssignment(f"the assignment's env has invalid names: {bad_names!r:.80}")
    if not isinstance(log, str) or not os.path.isabs(log):
        raise BadAssignment(f"the assignment's log is not an absolute path: {log!r:.80}")
    if not isinstance(entry, str) or not _entry_shape_ok(entry):
        raise BadAssignment(
            f"the assignment's entry is not 'package.module:function': {entry!r:.80}"
        )
    return Assignment(env=env, log=log, entry=entry)


def _entry_shape_ok(entry: str) -> bool:
    module, sep, attr = entry.partition(":")
    return bool(sep and module and attr)


def check_entry(entry: str) -> str:
    """``entry`` if it has the shape ``package.module:function``, else ``ValueError``."""
    if not _entry_shape_ok(entry):
        raise ValueError(f"entry {entry!r} is not 'package.module:function'")
    return entry


def resolve_entry(entry: str) -> StepFunction:
    """The function ``entry`` names; raises ``ImportError``/``AttributeError``/``TypeError``
    with a message naming the entry."""
    module_name, _, attr = entry.partition(":")
    module = importlib.import_module(module_name)
    target: Any = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise AttributeError(f"entry {entry!r}: {module_name} has no {attr!r}") from None
    if not callable(target):
        raise TypeError(f"entry {entry!r} is not callable (it is {type(target).__name__})")
    fn: StepFunction = target
    return fn


def _failing(message: str) -> StepFunction:
    """A step that fails with ``message``: how a broken entry or import reaches the job."""

    def step(job: Any) -> NoReturn:
        raise RuntimeError(message)

    return step


def _say(message: str) -> None:
    """One line on stderr (the pool's log before assignment, the job's log after)."""
    sys.stderr.write(f"{stamp(time.time())} [{TAG}] {message}\n")
    sys.stderr.flush()


def _redirect_output(log: str) -> None:
    """Point fds 1 and 2 at the job's log (append, 0600)."""
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
    finally:
        os.close(fd)


def _warm_up(paths: Sequence[str], modules: Sequence[str]) -> list[str]:
    """Put ``paths`` on ``sys.path`` and import ``modules``; the problems, as messages."""
    for path in reversed(paths):
        sys.path.insert(0, os.path.abspath(path))
    problems = []
    for name in modules:
        try:
            importlib.import_module(name)
        except BaseException as exc:  # a module may even sys.exit(): the step reports it
            if isinstance(exc, KeyboardInterrupt):
                raise
            problems.append(f"cannot import workflow module {name!r}: {exc!r}")
            traceback.print_exc()
    return problems


def _read_assignment(pipe: BinaryIO) -> bytes:
    """The next line from the pool's pipe, or ``b""`` at end of file."""
    try:
        return pipe.readline(MAX_ASSIGNMENT)
    except OSError:
        return b""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m supervisor.workflows.poolworker",
        description="a warm step worker: runs the jobs it reads on stdin (docs/workflows.md)",
    )
    parser.add_argument(
        "--path", action="append", default=[], metavar="DIR", help="added to sys.path"
    )
    parser.add_argument(
        "--import",
        dest="modules",
        action="append",
        default=[],
        metavar="MODULE",
        help="imported before waiting (the workflow modules)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Imported here, while warm, and not at the top: the supervisor imports this module
    # for ``Assignment`` and must not load the worker library it never runs.
    from jobvisor_worker._run import run_once  # noqa: PLC0415

    args = build_parser().parse_args(argv)
    problems = _warm_up(args.path, args.modules)
    assignments = os.fdopen(_private_stdin(), "rb")
    home = os.dup(2)  # the pool's log: where output between jobs goes
    os.set_inheritable(home, False)
    code = 0
    while True:
        ready = time.monotonic()
        line = _read_assignment(assignments)
        if not line:
            return code  # our supervisor is gone or the pool let us go: nothing owed
        try:
            assignment = parse_assignment(line)
        except BadAssignment as exc:
            _say(f"pid {os.getpid()}: {exc}; exiting")
            return EXIT_BAD_ASSIGNMENT
        try:
            _redirect_output(assignment.log)
        except OSError as exc:
            _say(f"pid {os.getpid()}: cannot open the job's log {assignment.log}: {exc}; exiting")
            return EXIT_BAD_ASSIGNMENT
        os.environ.update(assignment.env)
        waited = time.monotonic() - ready
        _say(f"worker {os.getpid()} waited {waited:.3f} s for this job; running {assignment.entry}")
        # Returns once the outcome is acked and the connection closed; the supervisor
        # then hands this process back to the pool (or kills it, if it was stopped).
        code = run_once(_step(assignment.entry, problems))
        _restore_output(home)


def _private_stdin() -> int:
    """Move the pool's pipe off fd 0 (to a close-on-exec fd of our own) and point fd 0 at
    /dev/null: a step that reads stdin must not eat the next assignment."""
    pipe = os.dup(0)
    os.set_inheritable(pipe, False)
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(null, 0)
    finally:
        os.close(null)
    return pipe


def _restore_output(home: int) -> None:
    """Between jobs, fds 1 and 2 point back at the pool's log: nothing written while
    idle lands in the last job's log."""
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
    os.dup2(home, 1)
    os.dup2(home, 2)


def _step(entry: str, problems: list[str]) -> StepFunction:
    if problems:
        message = "; ".join(problems)
        _say(message)
        return _failing(message)
    try:
        return resolve_entry(entry)
    except Exception as exc:
        message = f"cannot load entry {entry!r}: {exc}"
        _say(message)
        traceback.print_exc()
        return _failing(message)


if __name__ == "__main__":
    sys.exit(main())
