"""Finding the job's process group members, the step before killing them on give-up."""

from __future__ import annotations

import os
import subprocess
import sys

from jobvisor_worker._terminate import _living_group_members, _living_group_members_psutil


def test_proc_and_psutil_agree_on_the_group_members():
    """Both ways of listing a process group find a child in it, and this process."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        pgrp = os.getpgrp()
        from_proc = set(_living_group_members(pgrp))
        from_psutil = set(_living_group_members_psutil(pgrp))
        assert {os.getpid(), child.pid} <= from_proc
        assert {os.getpid(), child.pid} <= from_psutil
    finally:
        child.kill()
        child.wait()


def test_zombies_are_not_counted():
    """A dead child not yet reaped is no longer a member to kill."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # dead, not reaped
    try:
        assert child.pid not in _living_group_members(os.getpgrp())
        assert child.pid not in _living_group_members_psutil(os.getpgrp())
    finally:
        child.wait()
