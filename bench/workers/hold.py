"""A real Python-library worker that holds its job open until told to finish.

Used by the reconnect section for N <= 100: it connects with ``jobvisor_worker.connect``
(so reconnection after a supervisor restart is the library's own: retry every ~20 ms,
hello, started, replay) and completes once the file named by ``BENCH_FINISH_FILE``
exists. The library notes each re-attach on stderr (the job's log file) with the time
its welcome arrived; the bench reads those lines.
"""

import os
import time
from pathlib import Path

from jobvisor_worker import connect

finish = Path(os.environ["BENCH_FINISH_FILE"])
with connect() as job:
    while not finish.exists() and not job.cancelled:
        time.sleep(0.2)
    job.complete({"held": True})
