"""A worker using ``connect`` directly; it touches JV_TEST_ACKED once complete() returned."""

from __future__ import annotations

import os
from pathlib import Path

from jobvisor_worker import connect

if __name__ == "__main__":
    with connect() as job:
        job.progress(100, "done")
        job.complete({"explicit": True, "payload": job.data})
        Path(os.environ["JV_TEST_ACKED"]).touch()
