"""A worker whose behaviour is a list of steps in the job's payload (tests/worker).

The payload is ``{"steps": [[op, arg, ...], ...]}``; JV_TEST_OPTIONS (JSON) holds keyword
arguments for ``run_job``. Each op is one thing a real job does, so a test can script a
worker without writing a new file for every case.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from jobvisor_worker import Job, run_job


def wait_until(predicate: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"step timed out after {timeout} s")
        time.sleep(0.01)


def main(job: Job) -> Any:
    for op, *args in job.data["steps"]:
        if op == "progress":
            percent, message, data = [*args, None, None][:3]
            job.progress(percent, message, **(data or {}))
        elif op == "log":
            level, message, data = [*args, None][:3]
            job.log(level, message, **(data or {}))
        elif op == "logs":  # many numbered logs
            level, prefix, count = args
            for i in range(count):
                job.log(level, f"{prefix}{i}")
        elif op == "sleep":
            time.sleep(args[0])
        elif op == "touch":
            Path(args[0]).touch()
        elif op == "wait_file":
            wait_until(Path(args[0]).exists, args[1] if len(args) > 1 else 20)
        elif op == "on_cancel_touch":
            path = Path(args[0])
            job.on_cancel(path.touch)
        elif op == "on_cancel_raise":
            job.on_cancel(lambda: 1 / 0)
        elif op == "wait_cancel":
            if not job.cancel_event.wait(args[0]):
                raise TimeoutError("no cancel arrived")
        elif op == "spawn_sleeper":  # a helper process in the job's process group
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
            Path(args[0]).write_text(str(child.pid))
        elif op == "raise":
            raise ValueError(args[0])
        elif op == "raise_repeat":  # an error message of args[1] copies of args[0]
            raise ValueError(args[0] * args[1])
        elif op == "return":
            return args[0]
        elif op == "complete":  # report it ourselves, waiting for the ack in the function
            job.complete(args[0])
        elif op == "return_unencodable":  # msgpack has no encoding for an object()
            return {"value": object()}
        elif op == "return_repeat":  # a string of args[1] copies of args[0]
            return args[0] * args[1]
        elif op == "return_identity":
            return {"id": job.id, "name": job.name, "data": job.data, "attempt": job.attempt}
        elif op == "return_cancel":
            return {"cancelled": job.cancelled, "reason": job.cancel_reason}
        else:
            raise ValueError(f"unknown step {op!r}")
    return None


if __name__ == "__main__":
    run_job(main, **json.loads(os.environ.get("JV_TEST_OPTIONS", "{}")))
