"""Example worker: computes a SHA-256 over generated data, in chunks, with progress.

``pause`` (seconds, default 0) waits after each 8 MiB, as a slow disk would: the demo
uses it so that its jobs run long enough to be watched.
"""

import hashlib
import time

from jobvisor_worker import Job, run_job


def main(job: Job) -> dict:
    megabytes = int(job.data.get("megabytes", 64))
    pause = float(job.data.get("pause", 0))
    digest = hashlib.sha256()
    chunk = bytes(range(256)) * 4096  # 1 MiB
    for i in range(megabytes):
        digest.update(chunk)
        if i % 8 == 7 or i == megabytes - 1:
            job.progress(100 * (i + 1) / megabytes, f"{i + 1}/{megabytes} MiB")
            time.sleep(pause)
    return {"sha256": digest.hexdigest(), "megabytes": megabytes}


if __name__ == "__main__":
    run_job(main)
