"""Worker import: what ``import jobvisor_worker`` adds to a Python job's start.

Fresh interpreters (``sys.executable -c ...``, the bench's own environment), ``RUNS``
of each command, interleaved so that the machine's load moves them alike:

* ``pass``: the bare interpreter start (the floor of every Python job);
* ``msgpack``: ``import msgpack``, the one dependency the library cannot do without;
* ``jobvisor_worker``: ``import jobvisor_worker``;
* ``with_wire_layer``: ``import jobvisor_worker`` plus what ``connect()`` loads before its
  hello (``_session`` with the ``protocol`` package and ``hmac``, ``_transport`` with
  ``socket`` and ``selectors``): what a job pays in all before it speaks.

Figures: median and p90 of each, and of the per-round difference jobvisor_worker -
msgpack (the rounds are interleaved, so each difference compares neighbours), against the
target ``TARGET_MS``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

from bench.child import ROOT
from bench.harness import Run
from bench.stats import percentile

TARGET_MS = 10.0
COMMANDS = {
    "pass": "pass",
    "msgpack": "import msgpack",
    "jobvisor_worker": "import jobvisor_worker",
    # What the first Job() adds (job.py): the session (protocol, hmac) and the transport.
    "with_wire_layer": "import jobvisor_worker._session, jobvisor_worker._transport",
}


def run(bench: Run) -> dict[str, Any]:
    runs = 15 if bench.quick else 60
    bench.say(f"worker-import: {runs} fresh interpreters per command, interleaved")
    env = {**bench.env, "PYTHONPATH": str(ROOT / "wrappers" / "python") + ":" + str(ROOT)}
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(runs):
        for name, code in COMMANDS.items():
            times[name].append(_time(code, env))
    over = [j - m for j, m in zip(times["jobvisor_worker"], times["msgpack"], strict=True)]
    over_ms = _quantiles(over)
    return {
        "params": {
            "runs": runs,
            "commands": {name: f"python -c {code!r}" for name, code in COMMANDS.items()},
            "target_over_msgpack_ms": TARGET_MS,
            "python": sys.version.split()[0],
        },
        "figures": {
            "ms": {name: _quantiles(samples) for name, samples in times.items()},
            "over_msgpack_ms": over_ms,
            "met_target": over_ms["median"] <= TARGET_MS,
        },
        "caveats": [
            "wall time of a whole interpreter run (start, import, exit) on a shared machine; "
            "the difference of neighbours cancels most of the load, not all of it",
            "with_wire_layer is paid by every job at connect(): the protocol package's "
            "message dataclasses (and the dataclasses module itself) are most of it",
        ],
        "error": None,
    }


def _time(code: str, env: dict[str, str]) -> float:
    began = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    return time.perf_counter() - began


def _quantiles(samples: list[float]) -> dict[str, float]:
    data = sorted(s * 1000 for s in samples)
    return {"median": round(percentile(data, 50), 2), "p90": round(percentile(data, 90), 2)}
