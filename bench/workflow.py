"""Workflow: what the engine costs per step, and how it carries many instances at once.

The supervisor is ``bench/wfhost.py``: a real ``Supervisor`` on its own loop thread in a
helper process (no HTTP route starts an instance yet), with the workflows
``bench.flows.chain:chain`` and ``orders:process_order`` (``examples/workflows/``),
``workflow_pool_size = POOL_SIZE`` and ``concurrency = CONCURRENCY``.

* Chain: instances of a chain of 20 no-op task steps, one at a time, each started once
  the warm pool is full. Beside the wall times, the CPU per step of the supervisor's loop
  thread (``time.thread_time`` on the loop) and of the step workers (psutil), which a
  busy machine moves less than it moves wall time.
  Per step = (instance duration) / 20 - (the same 20 handler
  calls in-process) / 20, the duration being the instance record's ``started_at`` ->
  ``finished_at``, the in-process cost measured in the helper in this run. p50 and p99
  over the instances, against a target of ``TARGET_MS`` per step (reported, not
  asserted). Also each step's own ``started_at`` -> ``finished_at``, how many steps took
  a waiting worker (the "waited N s" line of the step's log), and the **warm** per-step
  cost: the first ``POOL_SIZE`` steps of each instance, which take the full pool's
  workers: (that step's ``finished_at`` - the instance's ``started_at``) / POOL_SIZE,
  less the in-process handler cost. ``first_step_ms`` is the first step alone (instance
  start to its end), the one step with the full pool and no replacement starting yet.
* Orders: N ``process-order`` instances started in one loop iteration (even ones in
  stock: validate, choice, two parallel branches, complete; odd ones backordered),
  instances/s from the first start to the last finish (records' wall times), and the
  loop's lag meanwhile: how late a timer due every 10 ms on the supervisor's loop fired,
  against the same timer over an idle second just before.
"""

from __future__ import annotations

import sys
from typing import Any

from bench.child import ROOT, start_helper
from bench.flows.chain import CHAIN_STEPS
from bench.harness import Run
from bench.stats import percentile, summary

POOL_SIZE = 4
CONCURRENCY = 16
TARGET_MS = 5.0
EXAMPLES = ROOT / "examples" / "workflows"


def run(bench: Run) -> dict[str, Any]:
    chains = 5 if bench.quick else 30
    orders = 20 if bench.quick else 100
    bench.say(
        f"workflow: {chains} chains of {CHAIN_STEPS} no-op steps, {orders} orders at once "
        f"(pool {POOL_SIZE}, concurrency {CONCURRENCY})"
    )
    folder = bench.folder("workflow")
    config = bench.config(
        folder,
        {
            "concurrency": CONCURRENCY,
            "workflow_pool_size": POOL_SIZE,
            "python_path": [str(ROOT), str(EXAMPLES)],
            "workflows": ["bench.flows.chain:chain", "orders:process_order"],
        },
    )
    host = start_helper("bench.wfhost", {"config": str(config)}, folder=folder, env=bench.env)
    try:
        chain = host.ask(f"chain {chains}", timeout=60 + chains * 30)
        inproc = host.ask(f"inprocess {chains}")
        idle_lag = host.ask("lag 1.0")["lag_s"]
        order = host.ask(f"orders {orders}", timeout=120 + orders * 3)
    finally:
        host.stop()
    return {
        "params": {
            "chain_instances": chains,
            "chain_steps": CHAIN_STEPS,
            "order_instances": orders,
            "workflow_pool_size": POOL_SIZE,
            "concurrency": CONCURRENCY,
            "target_ms_per_step": TARGET_MS,
            "supervisor": "SupervisorThread in a helper process (bench/wfhost.py)",
            "loop_lag": "lateness of a 10 ms timer on the supervisor's loop",
            "python": sys.version.split()[0],
        },
        "figures": {
            "chain": _chain(chain, inproc),
            "orders": _orders(order, idle_lag),
        },
        "caveats": [
            "a step worker serves several steps in turn: once its outcome is acked and its "
            "connection closed, the runner hands it back to the pool, so a chain's steps "
            "take waiting workers and start no process",
            "each step still costs a new socket, a handshake (two round trips) and its "
            "outcome's commit and ack: wall time per step moves with the machine's load; "
            "the CPU per step (the supervisor's loop thread, the step workers) less so",
            f"at most {CONCURRENCY} step jobs run at once (concurrency); the orders' "
            "other steps wait for a slot",
        ],
        "error": None,
    }


def _chain(chain: dict[str, Any], inproc: dict[str, Any]) -> dict[str, Any]:
    statuses = chain["statuses"]
    durations = sorted(chain["durations_s"])
    handlers = sorted(inproc["durations_s"])
    handlers_median = percentile(handlers, 50)
    per_step = sorted((d - handlers_median) / CHAIN_STEPS for d in durations)
    p50 = percentile(per_step, 50) * 1000
    p99 = percentile(per_step, 99) * 1000
    warm = sorted(w - handlers_median / CHAIN_STEPS for w in chain["warm_prefix_per_step_s"])
    warm_p50 = percentile(warm, 50) * 1000
    return {
        "instances": len(statuses),
        "completed": statuses.count("completed"),
        "pool_size": chain["pool_size"],
        "per_step_ms_p50": round(p50, 3),
        "per_step_ms_p99": round(p99, 3),
        "met_target_p50": p50 <= TARGET_MS,
        "warm_per_step_ms_p50": round(warm_p50, 3),
        "warm_per_step_ms_p99": round(percentile(warm, 99) * 1000, 3),
        "warm_met_target_p50": warm_p50 <= TARGET_MS,
        "first_step_ms": summary(chain["first_step_s"], 1000, 2),
        "warm_steps": chain["warm_steps"],
        "steps": chain["steps"],
        "instance_ms": summary(durations, 1000, 1),
        "step_ms": summary(chain["step_durations_s"], 1000, 2),
        "inprocess_chain_us": summary(handlers, 1e6, 2),
        # CPU, not wall time: what a step costs whatever else the machine is doing.
        "loop_cpu_ms_per_step": round(chain["loop_cpu_s"] * 1000 / max(chain["steps"], 1), 3),
        "workers_cpu_ms_per_step": round(chain["workers_cpu_s"] * 1000 / max(chain["steps"], 1), 3),
    }


def _orders(order: dict[str, Any], idle_lag: list[float]) -> dict[str, Any]:
    instances = order["instances"]
    statuses = [i["status"] for i in instances]
    starts = [i["started_at"] for i in instances if i["started_at"] is not None]
    ends = [i["finished_at"] for i in instances if i["finished_at"] is not None]
    span = max(ends) - min(starts) if starts and ends else float("nan")
    latencies = [
        i["finished_at"] - i["started_at"]
        for i in instances
        if i["started_at"] is not None and i["finished_at"] is not None
    ]
    return {
        "instances": len(instances),
        "completed": statuses.count("completed"),
        "span_s": round(span, 3),
        "instances_per_s": round(len(instances) / span, 2),
        "instance_ms": summary(latencies, 1000, 1),
        "loop_lag_ms": summary(order["lag_s"], 1000, 2),
        "idle_loop_lag_ms": summary(idle_lag, 1000, 2),
    }
