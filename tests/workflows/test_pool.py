"""The warm pool of step workers with a real supervisor (docs/workflows.md, "Where code runs")."""

from __future__ import annotations

import logging
import os
import shutil
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from supervisor.testing import (
    SupervisorThread,
    make_settings,
    process_gone,
    wait_for,
)
from supervisor.workflows.pool import WarmPool
from tests.workflows.poolhelpers import step_kind, wait_warm

log = logging.getLogger(__name__)

Pooled = Callable[..., tuple[SupervisorThread, WarmPool]]


@pytest.fixture
def ready_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "ready"
    folder.mkdir()
    return folder


@pytest.fixture
def pooled(tmp_path: Path, marker: str, ready_dir: Path) -> Iterator[Pooled]:
    """Start a supervisor with a ``step`` kind served by a warm pool (both stopped at teardown)."""
    started: list[tuple[SupervisorThread, WarmPool]] = []

    def run(
        entry: str = "poolsteps:run",
        *,
        size: int | None = None,
        modules: tuple[str, ...] = ("poolsteps",),
        kind: dict[str, Any] | None = None,
        state: str = "state",
        **options: Any,
    ) -> tuple[SupervisorThread, WarmPool]:
        jobs = {"step": step_kind(marker, ready_dir, modules, **(kind or {}))}
        sv = SupervisorThread(make_settings(tmp_path / state, jobs, **options)).start()
        pool = WarmPool(entry, size=size)
        started.append((sv, pool))
        sv.call(pool.install, sv.sup.runner, "step")
        return sv, pool

    yield run
    for sv, pool in started:
        sv.stop()
        pool.close()
        if sv.settings.socket_dir is not None:
            shutil.rmtree(sv.settings.socket_dir, ignore_errors=True)


def log_text(sv: SupervisorThread, job_id: str) -> str:
    return (sv.settings.log_dir / f"{job_id}.log").read_text()


def test_step_runs_in_a_worker_started_before_it_was_submitted(pooled, ready_dir):
    """A step is handed to a waiting worker, completes, and the pool refills to its size."""
    sv, pool = pooled(size=2)
    waiting = wait_warm(sv, pool, ready_dir, 2)
    started = {pid: psutil.Process(pid).create_time() for pid in waiting}
    submitted = time.time()
    job_id = sv.enqueue("step", {"result": 7})
    job = sv.wait(job_id)
    assert job["status"] == "completed", job
    pid = job["result"]["pid"]
    assert pid in waiting and started[pid] < submitted
    assert job["result"]["result"] == 7
    assert (pool.warm_starts, pool.cold_starts) == (1, 0)
    refilled = wait_warm(sv, pool, ready_dir, 2)
    assert pid in refilled  # handed back after its job: it waits again
    assert "attempt 1/3: starting" in log_text(sv, job_id)


def test_worker_output_lands_in_the_job_log_not_the_pool_log(pooled, ready_dir):
    """What a step prints on stdout and stderr is in its job's log, and not in the pool's."""
    sv, pool = pooled(size=1)
    wait_warm(sv, pool, ready_dir, 1)
    job_id = sv.enqueue("step", {"print": "hello-from-a-step"})
    assert sv.wait(job_id)["status"] == "completed"
    text = log_text(sv, job_id)
    assert "stdout: hello-from-a-step" in text
    assert "stderr: hello-from-a-step" in text
    assert "[poolworker] worker" in text and "running poolsteps:run" in text
    assert "hello-from-a-step" not in pool.log_path.read_text()
    assert oct(os.stat(sv.settings.log_dir / f"{job_id}.log").st_mode & 0o777) == "0o600"


def test_size_zero_always_starts_cold(pooled):
    """With ``workflow_pool_size = 0`` nothing waits, and each step's worker is spawned cold."""
    sv, pool = pooled(workflow_pool_size=0)
    assert pool.size == 0
    ids = [sv.enqueue("step", {"result": n}) for n in range(2)]
    results = [sv.wait(job_id) for job_id in ids]
    assert [job["status"] for job in results] == ["completed", "completed"]
    assert [job["result"]["result"] for job in results] == [0, 1]
    assert (pool.warm_starts, pool.cold_starts) == (0, 2)
    assert sv.call(pool.idle_pids) == []


def test_exhausted_pool_falls_back_to_cold_start(pooled, ready_dir, tmp_path):
    """Three steps at once with one waiting worker: one starts warm, two cold, all complete."""
    sv, pool = pooled(size=1)
    (waiting,) = wait_warm(sv, pool, ready_dir, 1)
    gate = tmp_path / "go"
    steps = [{"touch": str(tmp_path / f"started-{n}"), "wait_file": str(gate)} for n in range(3)]
    # Submitted in one loop turn, so they start in one batch, before any refill.
    ids = sv.call(lambda: [sv.sup.enqueue("step", data).id for data in steps])
    wait_for(lambda: all((tmp_path / f"started-{n}").exists() for n in range(3)))
    assert (pool.warm_starts, pool.cold_starts) == (1, 2)
    gate.touch()
    pids = [sv.wait(job_id)["result"]["pid"] for job_id in ids]
    assert waiting in pids and len(set(pids)) == 3


def test_cancelling_a_step_stops_only_its_worker(pooled, ready_dir, tmp_path):
    """Cancel one of two running steps: its worker exits; the other step and the idle
    workers are untouched."""
    sv, pool = pooled(size=2)
    wait_warm(sv, pool, ready_dir, 2)
    gate = tmp_path / "go"
    ids = [
        sv.enqueue("step", {"touch": str(tmp_path / f"started-{n}"), "wait_file": str(gate)})
        for n in range(2)
    ]
    wait_for(lambda: all((tmp_path / f"started-{n}").exists() for n in range(2)))
    first, second = (sv.job(job_id)["pid"] for job_id in ids)
    idle = wait_warm(sv, pool, ready_dir, 2)
    sv.cancel(ids[0], "not needed")
    wait_for(lambda: process_gone(first), message=f"worker {first} to exit")
    assert not process_gone(second)
    assert not any(process_gone(pid) for pid in idle)
    gate.touch()
    assert sv.wait(ids[1])["status"] == "completed"
    assert sv.job(ids[0])["status"] == "cancelled"


def test_a_waiting_worker_that_dies_is_replaced(pooled, ready_dir):
    """kill -9 of an idle worker: the pool notices (its pidfd) and starts another."""
    sv, pool = pooled(size=2)
    victim, survivor = wait_warm(sv, pool, ready_dir, 2)
    psutil.Process(victim).kill()
    pids = wait_for(
        lambda: (p := wait_warm(sv, pool, ready_dir, 2)) and victim not in p and p,
        message="a replacement",
    )
    assert survivor in pids
    assert pool.idle_deaths == 1
    job_id = sv.enqueue("step", {"result": "after"})
    assert sv.wait(job_id)["status"] == "completed"


def test_the_token_is_in_no_argv_environment_block_or_log(pooled, ready_dir, tmp_path):
    """The token crosses only the pipe: not in the worker's argv, its initial environment
    (/proc/PID/environ) or any file of the logs folder."""
    sv, pool = pooled(size=2)
    wait_warm(sv, pool, ready_dir, 2)
    gate = tmp_path / "go"
    token_file = tmp_path / "token"
    job_id = sv.enqueue(
        "step",
        {"token_to": str(token_file), "wait_file": str(gate), "print": "some output"},
    )
    wait_for(token_file.exists)
    token = wait_for(token_file.read_text)
    process = psutil.Process(sv.job(job_id)["pid"])
    assert token not in " ".join(process.cmdline())
    assert token not in "\n".join(f"{k}={v}" for k, v in process.environ().items())
    assert process.environ().get("JOBVISOR_JOB_ID") is None  # assigned later, in-process
    gate.touch()
    assert sv.wait(job_id)["status"] == "completed"
    sv.stop()  # its last log lines are written
    for path in sv.settings.log_dir.iterdir():
        assert token.encode() not in path.read_bytes(), path


def test_an_entry_that_cannot_be_loaded_fails_the_step_saying_so(pooled):
    """An entry naming nothing fails the step with a message naming the entry."""
    sv, _pool = pooled("poolsteps:nope", size=1, kind={"max_attempts": 1})
    job = sv.wait(sv.enqueue("step", {}))
    assert job["status"] == "failed"
    assert "poolsteps:nope" in job["error"]["message"]
    assert "cannot load entry 'poolsteps:nope'" in log_text(sv, job["id"])


def test_a_workflow_module_that_cannot_be_imported_fails_the_step_saying_so(pooled):
    """A warm-up import that raised fails each step with a message naming the module."""
    modules = ("poolsteps", "brokensteps")
    sv, _pool = pooled(size=1, modules=modules, kind={"max_attempts": 1})
    job = sv.wait(sv.enqueue("step", {}))
    assert job["status"] == "failed"
    assert "brokensteps" in job["error"]["message"]
    assert "broken on purpose" in log_text(sv, job["id"])


def _step_latencies(
    sv: SupervisorThread, pool: WarmPool, ready_dir: Path, count: int
) -> list[float]:
    """Seconds from submission to ``job.completed`` for ``count`` steps one after another."""
    done: dict[str, float] = {}

    def completed(event: Any) -> None:
        done[event.data["id"]] = time.monotonic()  # on the loop, after the commit

    sv.on("job.completed", completed)
    latencies = []
    for _ in range(count):
        if pool.size:
            wait_warm(sv, pool, ready_dir, pool.size)
        before = time.monotonic()
        job_id = sv.enqueue("step", None)
        wait_for(lambda j=job_id: j in done, message=f"job {job_id} to complete")
        latencies.append(done[job_id] - before)
    return latencies


@pytest.mark.slow
def test_warm_and_cold_step_latency_is_measured(pooled, ready_dir):
    """Measure (no assertion on speed) submission-to-completion of 20 steps, warm and cold."""
    figures = {}
    for label, size, state in (("warm", 2, "state-warm"), ("cold", 0, "state-cold")):
        sv, pool = pooled("poolsteps:noop", size=size, state=state)
        latencies = _step_latencies(sv, pool, ready_dir, 20)
        figures[label] = latencies
        assert (pool.warm_starts if size else pool.cold_starts) == 20
        sv.stop()
    for label, latencies in figures.items():
        ms = sorted(x * 1000 for x in latencies)
        line = (
            f"{label} steps: p50 {statistics.median(ms):.1f} ms, mean {statistics.mean(ms):.1f} ms,"
            f" min {ms[0]:.1f} ms, max {ms[-1]:.1f} ms over {len(ms)}"
        )
        print(line)
        log.warning(line)


def test_a_chain_of_steps_reuses_one_worker(pooled, ready_dir):
    """With a pool of one, consecutive steps run in the same process, each completed."""
    sv, pool = pooled(size=1)
    (first,) = wait_warm(sv, pool, ready_dir, 1)
    pids = []
    for n in range(5):
        job = sv.wait(sv.enqueue("step", {"result": n}))
        assert job["status"] == "completed" and job["result"]["result"] == n, job
        pids.append(job["result"]["pid"])
        wait_for(lambda: sv.call(pool.idle_pids) == [first], message="the worker to wait again")
    assert pids == [first] * 5
    assert pool.reuses == 5 and pool.cold_starts == 0
    assert f"worker {first} released" in log_text(sv, job["id"])


def test_a_failed_step_releases_its_worker_too(pooled, ready_dir):
    """A step that raises fails, and its sound worker serves the next step."""
    sv, pool = pooled("poolsteps:boom", size=1)
    (first,) = wait_warm(sv, pool, ready_dir, 1)
    failed = sv.wait(sv.enqueue("step", {}), "failed")
    assert "boom" in failed["error"]["message"]
    wait_for(lambda: sv.call(pool.idle_pids) == [first], message="the worker to wait again")
    assert pool.reuses == failed["attempts"] and pool.cold_starts == 0


def test_a_reused_workers_next_job_output_goes_to_that_jobs_log_only(pooled, ready_dir):
    """Two steps in one worker: each one's output is in its own log, none in the other's
    or the pool's."""
    sv, pool = pooled(size=1)
    wait_warm(sv, pool, ready_dir, 1)
    one = sv.wait(sv.enqueue("step", {"print": "first-step-output"}))
    wait_for(lambda: len(sv.call(pool.idle_pids)) == 1, message="the worker to wait again")
    two = sv.wait(sv.enqueue("step", {"print": "second-step-output"}))
    assert one["result"]["pid"] == two["result"]["pid"]
    first, second = log_text(sv, one["id"]), log_text(sv, two["id"])
    assert "stdout: first-step-output" in first and "stderr: first-step-output" in first
    assert "stdout: second-step-output" in second and "stderr: second-step-output" in second
    assert "second-step-output" not in first and "first-step-output" not in second
    pool_log = pool.log_path.read_text()
    assert "first-step-output" not in pool_log and "second-step-output" not in pool_log


def test_cancelling_a_step_in_a_reused_worker_kills_it_and_the_pool_replaces_it(
    pooled, ready_dir, tmp_path
):
    """Cancel a step running in a worker that already served one: the worker is killed,
    not reused, and a new one waits in its place."""
    sv, pool = pooled(size=1)
    (worker,) = wait_warm(sv, pool, ready_dir, 1)
    assert sv.wait(sv.enqueue("step", {}))["result"]["pid"] == worker
    wait_for(lambda: sv.call(pool.idle_pids) == [worker], message="the worker to wait again")
    started = tmp_path / "started"
    job_id = sv.enqueue("step", {"touch": str(started), "wait_file": str(tmp_path / "never")})
    wait_for(started.exists, message="the step to start")
    assert sv.job(job_id)["pid"] == worker
    sv.cancel(job_id, "not needed")
    wait_for(lambda: process_gone(worker), message=f"worker {worker} to be killed")
    assert sv.wait(job_id, "cancelled")["status"] == "cancelled"
    (replacement,) = wait_warm(sv, pool, ready_dir, 1)
    assert replacement != worker
    after = sv.wait(sv.enqueue("step", {"result": "after"}))
    assert after["status"] == "completed" and after["result"]["pid"] == replacement
