"""The ``workflow`` section's supervisor: ``python -m bench.wfhost SPEC.json``.

Until the workflow HTTP routes exist nothing outside a supervisor's process can start an
instance, so this helper runs one: a real ``Supervisor`` on its own loop thread
(``SupervisorThread``, as an embedding program would), with the config file the spec
names, and starts instances on the loop with ``engine.start(name, input)``. The driver
(``bench/workflow.py``) talks to it like to the other helpers (``bench/child.py``): one
command per line on stdin, one JSON answer per line on stdout.

Commands:

* ``chain COUNT``: COUNT instances of ``bench-chain`` one after another, each started once
  the warm pool is full again; answers each instance's duration (its record's
  ``started_at`` -> ``finished_at``), every step's (``finished_at - started_at``), the
  first step's end after the instance's start, and which steps took a waiting worker.
* ``inprocess COUNT``: the chain's handlers called in this process, COUNT times 20 calls;
  answers each set's duration.
* ``orders COUNT``: COUNT ``process-order`` instances started in one loop iteration;
  answers their records' times and the loop's lag while they ran.
* ``lag SECONDS``: the loop's lag over that long with nothing to do (the idle baseline).

**Loop lag** is measured inside this process, on the loop: a timer due every
``LAG_PERIOD`` seconds records how late it fired (``monotonic() - deadline``). A loop
iteration that runs long (a big commit, many step jobs settling) makes it late.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from bench.child import reply
from bench.flows import chain as chain_flow
from supervisor import joblogs
from supervisor.config import load_config
from supervisor.events import Event
from supervisor.testing import SupervisorThread, wait_for
from supervisor.workflows.engine import WorkflowEngine
from supervisor.workflows.records import InstanceRecord

LAG_PERIOD = 0.01
IDLE_CHECK = 0.05
WAITED = re.compile(r"\[poolworker\] worker \d+ waited ([0-9.]+) s")
FINAL = ("workflow.completed", "workflow.failed", "workflow.cancelled")


class Host:
    def __init__(self, config: Path) -> None:
        self.sv = SupervisorThread(load_config(config)).start()
        assert self.sv.engine is not None
        self.engine: WorkflowEngine = self.sv.engine
        self._lock = threading.Lock()
        self._finished: set[str] = set()
        self._lag: list[float] | None = None  # samples while recording
        self.sv.call(lambda: self.sv.sup.on("workflow.*", self._on_event))
        self.sv.call(lambda: self._arm_lag(time.monotonic() + LAG_PERIOD))

    # --- on the loop thread ------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        if event.name in FINAL and event.data.get("parent_id") is None:
            with self._lock:
                self._finished.add(event.data["id"])

    def _arm_lag(self, deadline: float) -> None:
        def fired() -> None:
            now = time.monotonic()
            samples = self._lag  # swapped by the main thread; appending to the old is harmless
            if samples is not None:
                samples.append(now - deadline)
            self._arm_lag(max(deadline + LAG_PERIOD, now + LAG_PERIOD / 2))

        self.sv.sup.loop.call_at(("bench", "lag"), deadline, fired)

    # --- commands (main thread) ----------------------------------------------------------------

    def handle(self, line: str) -> dict[str, Any]:
        command, _, arg = line.partition(" ")
        if command == "chain":
            return self.chain(int(arg))
        if command == "inprocess":
            return self.inprocess(int(arg))
        if command == "orders":
            return self.orders(int(arg))
        if command == "lag":
            return {"lag_s": self.idle_lag(float(arg))}
        raise ValueError(f"unknown command {line!r}")

    def _pool_ready(self) -> bool:
        """The warm pool holds its ``size`` workers and each is ready: blocked reading its
        assignment (sleeping, no CPU used over ``IDLE_CHECK`` s), its imports done. The
        pool itself only knows it started them."""
        pool = self.engine.pool
        if pool is None:
            return True
        pids = self.sv.call(pool.idle_pids)
        if len(pids) < pool.size:
            return False
        try:
            procs = [psutil.Process(pid) for pid in pids]
            before = [sum(p.cpu_times()[:2]) for p in procs]
            time.sleep(IDLE_CHECK)
            after = [sum(p.cpu_times()[:2]) for p in procs]
            sleeping = all(p.status() == psutil.STATUS_SLEEPING for p in procs)
        except psutil.Error:  # one just exited or was taken: look again
            return False
        return sleeping and before == after

    def _wait_finished(self, ids: list[str], timeout: float) -> None:
        def done() -> bool:
            with self._lock:
                return self._finished.issuperset(ids)

        wait_for(done, timeout, 0.01, f"{len(ids)} workflow instances to finish")

    def _records(self, ids: list[str]) -> list[InstanceRecord]:
        def read() -> list[InstanceRecord]:
            found = []
            for instance_id in ids:
                record = self.engine.get(instance_id)
                if record is None:
                    raise RuntimeError(f"no workflow instance {instance_id}")
                found.append(record.copy())
            return found

        return self.sv.call(read)

    def chain(self, count: int) -> dict[str, Any]:
        self.sv.call(self.engine.ensure_step_kind)  # the pool starts filling now
        durations, steps, statuses, warm_spans, warm_flags, firsts = [], [], [], [], [], []
        size = self.engine.pool.size if self.engine.pool is not None else 0
        loop_cpu = workers_cpu = 0.0
        for i in range(count):
            wait_for(self._pool_ready, 60, 0.02, "the warm pool's workers to be ready")
            workers_before, started_cpu = self._workers_cpu(), self.sv.call(time.thread_time)
            instance_id = self.sv.call(lambda i=i: self.engine.start("bench-chain", {"i": i}).id)
            self._wait_finished([instance_id], 120)
            loop_cpu += self.sv.call(time.thread_time) - started_cpu
            workers_cpu += _cpu_spent(workers_before, self._workers_cpu())
            (record,) = self._records([instance_id])
            statuses.append(record.status.value)
            if record.started_at is not None and record.finished_at is not None:
                durations.append(record.finished_at - record.started_at)
            states = list(record.steps.values())
            for state in states:
                if state.started_at is not None and state.finished_at is not None:
                    steps.append(state.finished_at - state.started_at)
                warm_flags.append(self._warm(state.job_id))
            if states and states[0].finished_at is not None and record.started_at is not None:
                firsts.append(states[0].finished_at - record.started_at)
            if 0 < size <= len(states) and record.started_at is not None:
                last = states[size - 1].finished_at
                if last is not None:  # the first ``size`` steps took the full pool's workers
                    warm_spans.append((last - record.started_at) / size)
        return {
            "durations_s": durations,
            "step_durations_s": steps,
            "statuses": statuses,
            "pool_size": size,
            "warm_prefix_per_step_s": warm_spans,
            "first_step_s": firsts,
            "warm_steps": sum(1 for flag in warm_flags if flag),
            "steps": len(warm_flags),
            "loop_cpu_s": loop_cpu,
            "workers_cpu_s": workers_cpu,
        }

    def _workers_cpu(self) -> dict[tuple[int, float], float]:
        """CPU seconds (user + system) of every step worker alive now, by (pid, start
        time); between two readings around one instance, what its steps cost them."""
        spent = {}
        for child in psutil.Process().children(recursive=True):
            try:
                with child.oneshot():
                    spent[(child.pid, child.create_time())] = sum(child.cpu_times()[:2])
            except psutil.Error:
                continue
        return spent

    def _warm(self, job_id: str | None) -> bool:
        """Whether the step's worker was waiting before it got the job: its log's first
        line says how long it waited (docs/workflows.md, "The pool worker"); a worker
        spawned cold reads an assignment already written, and waited 0.000 s."""
        if job_id is None:
            return False
        path = joblogs.log_path(self.sv.settings.log_dir, job_id)
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False
        found = WAITED.search(text)
        return found is not None and float(found.group(1)) >= 0.001

    def inprocess(self, count: int) -> dict[str, Any]:
        durations = []
        for i in range(count):
            value: Any = {"i": i}
            began = time.perf_counter()
            for handler in chain_flow.handlers:
                value = handler(value, None)
            durations.append(time.perf_counter() - began)
        return {"durations_s": durations}

    def orders(self, count: int) -> dict[str, Any]:
        self.sv.call(self.engine.ensure_step_kind)
        wait_for(self._pool_ready, 60, 0.02, "the warm pool's workers to be ready")
        inputs = [
            {"order_id": f"B-{i}", "sku": "widget", "quantity": 2 if i % 2 == 0 else 500}
            for i in range(count)
        ]
        with self._lock:
            self._lag = []
        began = time.time()
        ids = self.sv.call(lambda: [self.engine.start("process-order", data).id for data in inputs])
        self._wait_finished(ids, 60 + count * 2.0)
        ended = time.time()
        with self._lock:
            lag, self._lag = self._lag or [], None
        records = self._records(ids)
        return {
            "requested_at": began,
            "seen_finished_at": ended,
            "instances": [
                {
                    "status": r.status.value,
                    "started_at": r.started_at,
                    "finished_at": r.finished_at,
                }
                for r in records
            ],
            "lag_s": lag,
        }

    def idle_lag(self, seconds: float) -> list[float]:
        with self._lock:
            self._lag = []
        time.sleep(seconds)  # a window of idle loop: nothing to wait for
        with self._lock:
            lag, self._lag = self._lag or [], None
        return lag


def _cpu_spent(
    before: dict[tuple[int, float], float], after: dict[tuple[int, float], float]
) -> float:
    """CPU spent between two ``_workers_cpu`` readings by the processes alive at the second
    (a worker that exited in between is missed: the chain's workers are reused, not replaced)."""
    return sum(cpu - before.get(key, 0.0) for key, cpu in after.items())


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    host = Host(Path(spec["config"]))
    reply({"ready": True})
    for raw in sys.stdin:
        line = raw.strip()
        if not line:
            continue
        try:
            answer = host.handle(line)
        except Exception as exc:
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        reply(answer)
    host.sv.stop()


if __name__ == "__main__":
    main()
