"""A CPU-bound (or idle) Python worker for the busy-worker bench section.

``job.data``: ``mode`` ("busy": call ``progress`` in a tight loop; "idle": call it every
``every`` seconds and sleep between), ``seconds`` of that, then ``spin`` seconds of a pure
Python loop that calls nothing of the library (only the I/O thread's heartbeats speak).
Each progress carries ``t``, the wall time of the call, so the supervisor side can tell how
long it took to arrive. The result counts the calls made.
"""

from __future__ import annotations

import time
from typing import Any

from jobvisor_worker import Job, run_job


def main(job: Job) -> dict[str, Any]:
    mode, seconds = job.data["mode"], float(job.data["seconds"])
    every = float(job.data.get("every", 0.01))
    calls = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        calls += 1
        job.progress(calls % 100, t=time.time())
        if mode == "idle":
            time.sleep(every)
    spun = 0
    end = time.monotonic() + float(job.data.get("spin", 0.0))
    while time.monotonic() < end:
        spun += 1  # the main thread never blocks: the I/O thread only gets the GIL's turns
    return {"calls": calls, "spun": spun}


if __name__ == "__main__":
    run_job(main)
