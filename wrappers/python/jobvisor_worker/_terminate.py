"""Stopping the whole job when it is not ours any more: exit codes and ``terminate``.

Two situations end a worker from inside the library (docs/protocol.md, "Reconnect" and "Handshake"):

* ``EXIT_UNREACHABLE`` (75, ``EX_TEMPFAIL``): no supervisor accepted us for the whole
  give-up window (``reconnect_interval * max_reconnect_attempts``, 60 s by default). A
  restarted supervisor has by now declared the job lost and may run a retry.
* ``EXIT_REFUSED`` (77, ``EX_NOPERM``): a supervisor answered our hello with an error that
  says the job is not ours (bad token, unknown job, wrong job, job not running,
  unsupported protocol version). Reconnecting cannot help.

In both cases a retry of the job may run (or already runs) elsewhere, so every process of
the job must stop, not only this one. The supervisor starts a worker as the leader of its
own process group; a job's helper processes inherit that group. When we lead our group we
SIGKILL every other member and then exit with the code, so the code stays visible to
whoever waits for us. Enumerating the group (via /proc, or psutil where there is no
/proc) can race with a process that forks while we look, so we repeat until a pass finds
no living member; if that does not converge, or we cannot enumerate at all,
``killpg(getpgrp(), SIGKILL)`` kills the whole group including us: the guarantee that no
process of this job survives matters more than the exit code. When we are not a group
leader the group is somebody else's (a shell, a test runner) and we only exit.
"""

from __future__ import annotations

import importlib
import os
import signal
import time
from typing import Any, Final, NoReturn

from jobvisor_worker._stderr import say

EXIT_UNREACHABLE: Final = 75
EXIT_REFUSED: Final = 77

_KILL_PASSES: Final = 50
_PASS_PAUSE: Final = 0.01


def terminate(code: int, reason: str) -> NoReturn:
    """Log ``reason``, kill the rest of our process group if we lead it, exit ``code``."""
    say(f"{reason}; stopping the job (exit {code})")
    me, pgrp = os.getpid(), os.getpgrp()
    if pgrp == me:
        try:
            converged = _kill_group_members(pgrp, me)
        except BaseException:  # anything at all: fall back to the sure way
            converged = False
        if not converged:
            try:
                os.killpg(pgrp, signal.SIGKILL)
            except OSError:
                pass
    os._exit(code)


def _kill_group_members(pgrp: int, me: int) -> bool:
    """SIGKILL every other living member of our group; False if that did not converge."""
    for _ in range(_KILL_PASSES):
        members = [pid for pid in _living_group_members(pgrp) if pid != me]
        if not members:
            return True
        for pid in members:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _reap_children()
        time.sleep(_PASS_PAUSE)
    return False


def _reap_children() -> None:
    # Our direct children stay zombies (still in the group) until reaped; reap them so
    # that the next pass does not count them. Nothing else in this process will wait.
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _living_group_members(pgrp: int) -> list[int]:
    try:
        names = os.listdir("/proc")
    except OSError:
        return _living_group_members_psutil(pgrp)
    members = []
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue  # exited meanwhile
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) >= 3 and int(fields[2]) == pgrp and fields[0] not in (b"Z", b"X"):
            members.append(int(name))
    return members


def _living_group_members_psutil(pgrp: int) -> list[int]:
    # Imported here: only where there is no /proc, and only when stopping the job.
    psutil: Any = importlib.import_module("psutil")
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgrp and proc.status() != psutil.STATUS_ZOMBIE:
                members.append(proc.pid)
        except (OSError, psutil.Error):
            continue
    return members
