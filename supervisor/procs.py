"""Worker processes: spawning them detached, knowing them again, noticing their exit.

Kernel facts this relies on (Linux):

* ``start_new_session=True`` makes the worker a session and process-group leader, so
  signals aimed at the supervisor's group (Ctrl-C in a terminal, a service manager's
  TERM to the group) do not reach it, and ``killpg(pid)`` reaches the worker's own
  children too. Its stdout/stderr are a file, never a pipe: a pipe would fill up (or
  deliver SIGPIPE) once the supervisor is gone.
* ``pidfd_open`` gives a file descriptor that becomes readable when the process exits,
  for any process, not only our children. The loop selects on it, so exits are noticed
  without polling, adopted orphans included. Where pidfds are unavailable the loop
  falls back to polling with psutil (``ProcessHandle.pidfd is None``).
* A PID alone does not name a process: PIDs are recycled. A process is identified by
  (pid, start time); psutil reads the start time from /proc. The pidfd is opened first
  and the start time checked after, so the pidfd cannot refer to a recycled PID.
* A process group outlives its leader while any member lives, and Linux does not hand
  out a PID that is still some group's ID. So once the worker (a group leader) has
  exited, ``killpg(pid)`` reaches exactly the children it left behind, and nobody
  else. Whether the worker leads its group is known for ours (we made it so) and
  checked for an adopted one while it is alive and identified (``adopt``); a worker
  that does not lead a group is only ever signalled itself, never a group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence

import psutil

# Start times come from /proc in clock ticks (1/100 s); two readings of one process
# agree exactly, and two processes on one PID are far further apart than this.
_START_TOLERANCE = 0.05


def start_time(pid: int) -> float | None:
    """The process's start time (seconds since the epoch), or ``None`` if it is gone."""
    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, ValueError):
        return None


def same_process(pid: int, expected_start: float | None) -> bool:
    """True when ``pid`` is alive and is the process that started at ``expected_start``."""
    if expected_start is None:
        return False
    actual = start_time(pid)
    if actual is None:
        return False
    with contextlib.suppress(psutil.Error):
        if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return False
    return abs(actual - expected_start) <= _START_TOLERANCE


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "exited (exit status unknown: adopted after a supervisor restart)"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name}"
    return f"exited with code {returncode}"


class ProcessHandle:
    """One worker process: ours (``popen`` set) or adopted after a restart."""

    __slots__ = ("exited", "leads_group", "pid", "pidfd", "popen", "returncode", "start_time")

    def __init__(
        self, pid: int, start: float | None, popen: subprocess.Popen[bytes] | None = None
    ) -> None:
        self.pid = pid
        self.start_time = start
        self.popen = popen
        self.pidfd: int | None = None
        self.exited = False
        self.returncode: int | None = None
        # Its process group is its own: signals and the final sweep go to the group.
        self.leads_group = popen is not None

    @classmethod
    def adopt(cls, pid: int, expected_start: float | None) -> ProcessHandle | None:
        """A handle on an existing process, or ``None`` unless it is the one we expect."""
        handle = cls(pid, expected_start)
        handle.open_pidfd()
        if not same_process(pid, expected_start):
            handle.close()
            return None
        with contextlib.suppress(OSError):
            handle.leads_group = os.getpgid(pid) == pid
        return handle

    def open_pidfd(self) -> None:
        if not hasattr(os, "pidfd_open"):
            return
        try:
            self.pidfd = os.pidfd_open(self.pid)
        except OSError:  # ESRCH: already gone; ENOSYS/EPERM: fall back to polling
            self.pidfd = None

    def poll(self) -> bool:
        """Check (without blocking) whether the process has exited; reaps our children."""
        if self.exited:
            return True
        if self.popen is not None:
            code = self.popen.poll()
            if code is None:
                return False
            self.returncode = code
        elif same_process(self.pid, self.start_time):
            return False
        self.exited = True
        return True

    def signal_group(self, sig: int) -> None:
        """Send ``sig`` to the worker's process group (or, if it leads none, to the
        worker alone) while it lives; never raises."""
        if self.poll():
            return
        try:
            if self.leads_group:
                os.killpg(self.pid, sig)
            else:
                os.kill(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def kill_leftovers(self) -> None:
        """The worker has exited: SIGKILL what is left of its process group, so nothing
        it started runs beside a retry (see the module docstring for why this is safe)."""
        if self.leads_group:
            with contextlib.suppress(OSError):
                os.killpg(self.pid, signal.SIGKILL)

    def close(self) -> None:
        if self.pidfd is not None:
            with contextlib.suppress(OSError):
                os.close(self.pidfd)
            self.pidfd = None


def spawn(
    argv: Sequence[str], *, cwd: str | None, env: Mapping[str, str], log_fd: int
) -> ProcessHandle:
    """Start a detached worker writing stdout+stderr to ``log_fd``. Raises ``OSError``."""
    return _start(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, log_fd=log_fd)


def spawn_waiting(
    argv: Sequence[str], *, cwd: str | None, env: Mapping[str, str], log_fd: int
) -> tuple[ProcessHandle, int]:
    """Start a detached worker like ``spawn``, but with a pipe for its standard input.

    Returns the handle and the pipe's write end, which only the caller holds: it is
    close-on-exec and non-blocking, so no other child inherits it (the worker sees
    end-of-file exactly when the caller closes it or dies) and a write never stalls
    the caller's loop. Used by the warm pool to hand a waiting worker its job.
    Raises ``OSError``.
    """
    read_end, write_end = os.pipe()  # both close-on-exec (PEP 446)
    try:
        handle = _start(argv, cwd=cwd, env=env, stdin=read_end, log_fd=log_fd)
    except BaseException:
        os.close(write_end)
        raise
    finally:
        os.close(read_end)  # the child holds its own copy as fd 0
    os.set_blocking(write_end, False)
    return handle, write_end


def _start(
    argv: Sequence[str], *, cwd: str | None, env: Mapping[str, str], stdin: int, log_fd: int
) -> ProcessHandle:
    popen = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env),
        stdin=stdin,
        stdout=log_fd,
        stderr=log_fd,
        start_new_session=True,
        close_fds=True,
    )
    handle = ProcessHandle(popen.pid, None, popen)
    handle.open_pidfd()
    handle.start_time = start_time(popen.pid)
    return handle
