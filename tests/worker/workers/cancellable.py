"""A worker that blocks in one way until it is cancelled (tests/worker/test_cancel.py).

The payload is ``{"block": HOW, "ready": PATH, "out": PATH}``: the worker (or its
child) creates ``ready`` once it is about to block, then blocks. HOW is one of:

* ``busy``: a pure-Python loop;
* ``sleep``: ``time.sleep(60)``;
* ``recv``: ``socket.recv`` on a socket nobody writes to;
* ``subprocess``: ``subprocess.run`` of a ``sleep 60`` (its pid written to ``out.child``);
* ``swallow``: ``time.sleep(60)`` in a loop that catches every ``Exception``;
* ``poll``: short sleeps until ``job.cancelled``.

Whatever ends the block, the worker appends the name of the exception that ended it
(or ``polled``) to ``out`` and lets it go on. ``JV_TEST_POLL=1`` runs ``run_job`` with
``interrupt_on_cancel=False``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from jobvisor_worker import Job, JobCancelled, run_job


def block(job: Job, how: str, ready: Path, out: Path) -> None:
    if how == "busy":
        n = 0
        while True:
            n += 1
    elif how == "sleep":
        time.sleep(60)
    elif how == "recv":
        left, _right = socket.socketpair()
        left.recv(1)
    elif how == "subprocess":
        child = out.with_suffix(".child")
        script = f'echo $$ > "{child}"; touch "{ready}"; exec sleep 60'
        subprocess.run(["sh", "-c", script], check=False)
    elif how == "swallow":  # a log-and-carry-on loop must not eat the cancel
        while True:
            try:
                time.sleep(60)
            except Exception as exc:
                print(f"carrying on after {exc!r}")
    elif how == "poll":
        while not job.cancelled:
            time.sleep(0.01)
        with out.open("a") as file:
            file.write("polled\n")
    else:
        raise ValueError(f"unknown block {how!r}")


def main(job: Job) -> Any:
    out, ready, how = Path(job.data["out"]), Path(job.data["ready"]), job.data["block"]
    if how != "subprocess":  # its child says when it is ready
        ready.touch()
    try:
        block(job, how, ready, out)
    except JobCancelled as exc:  # the clean-up a real job would do
        with out.open("a") as file:
            file.write(f"{type(exc).__name__}: {exc}\n")
        raise
    return {"unblocked": True}


run_job(main, interrupt_on_cancel=os.environ.get("JV_TEST_POLL") != "1")
