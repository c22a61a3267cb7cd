"""Example worker: fails its first attempt (as a flaky upstream would), then succeeds."""

import time

from jobvisor_worker import Job, run_job


def main(job: Job) -> dict:
    job.info(f"attempt {job.attempt}: importing {job.data.get('source', 'feed.csv')}")
    time.sleep(0.3)
    if job.attempt == 1:
        raise ConnectionError("upstream timed out (this example always fails attempt 1)")
    job.progress(100, "imported")
    return {"rows": 1234, "attempt": job.attempt}


if __name__ == "__main__":
    run_job(main)
