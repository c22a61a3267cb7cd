"""A worker for the slim package's test: it reports where its libraries came from.

Progress 50, one log, then the result ``{"echo": DATA, "library": PATH, "protocol":
PATH, "supervisor": BOOL}``: the files ``jobvisor_worker`` and ``protocol`` were imported
from, and whether the supervisor's package could be imported at all.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import jobvisor_worker
import protocol
from jobvisor_worker import Job, run_job


def main(job: Job) -> Any:
    job.progress(50, "half way")
    job.info("running from the slim package")
    return {
        "echo": job.data,
        "library": jobvisor_worker.__file__,
        "protocol": protocol.__file__,
        "supervisor": importlib.util.find_spec("supervisor") is not None,
    }


run_job(main)
