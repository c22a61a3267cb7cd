"""Step functions for the warm-pool tests, imported by the pool worker via ``--path``.

Importing the module marks the worker warm: with ``POOLSTEPS_READY_DIR`` set, it
touches ``<dir>/<pid>`` once its imports are done. ``run`` follows ``job.data``:

    {"print": TEXT, "count_to": PATH, "touch": PATH, "wait_file": PATH, "token_to": PATH,
     "result": ANY}

(``count_to`` appends one line per run: the tests count how often a step ran.)
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

_ready = os.environ.get("POOLSTEPS_READY_DIR")
if _ready:
    Path(_ready, str(os.getpid())).touch()


def run(job: Any) -> dict[str, Any]:
    data = job.data or {}
    if "print" in data:
        print(f"stdout: {data['print']}", flush=True)
        print(f"stderr: {data['print']}", file=sys.stderr, flush=True)
    if "count_to" in data:
        with open(data["count_to"], "a") as counter:
            counter.write(f"{os.getpid()}\n")
    if "token_to" in data:
        Path(data["token_to"]).write_text(os.environ["JOBVISOR_TOKEN"])
    if "touch" in data:
        Path(data["touch"]).touch()
    if "wait_file" in data:
        while not Path(data["wait_file"]).exists():
            time.sleep(0.02)
    return {"pid": os.getpid(), "result": data.get("result")}


def noop(job: Any) -> None:
    return None


def boom(job: Any) -> None:
    raise RuntimeError("boom: this step fails on purpose")


not_callable = 42
