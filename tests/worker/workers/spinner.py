"""A CPU-bound worker: its main thread never blocks, so the library's I/O thread only runs
when the interpreter hands it the GIL (or when ``progress()`` writes from this thread).

``job.data``: ``folder``, where the test drops files. Until ``stop`` exists it calls
``progress(n % 100, "spinning", n=n)`` in a tight loop; then it reports
``progress(100, "last", n=n)`` once and spins in pure Python, calling nothing of the
library, until ``finish`` exists; then it returns ``{"calls": n}``. Each phase gives up
after a minute, so that a broken test cannot leave it spinning.
"""

from __future__ import annotations

import os
import time
from typing import Any

from jobvisor_worker import Job, run_job

CHECK_EVERY = 1000  # calls between looks at the folder: the loop stays a tight one


def _spin_until(path: str, job: Job | None) -> int:
    n = 0
    give_up = time.monotonic() + 60
    while True:
        n += 1
        if job is not None:
            job.progress(n % 100, "spinning", n=n)
        if n % CHECK_EVERY == 0 and (os.path.exists(path) or time.monotonic() > give_up):
            return n


def main(job: Job) -> Any:
    folder = job.data["folder"]
    calls = _spin_until(os.path.join(folder, "stop"), job)
    job.progress(100, "last", n=calls)
    _spin_until(os.path.join(folder, "finish"), None)
    return {"calls": calls}


run_job(main)
