"""Every way an attempt can fail, and what the supervisor does about it."""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest

from supervisor.testing import process_gone, wait_for
from supervisor.views import parse_time


def test_failed_message_is_retried_until_max_attempts(start, worker):
    """A worker reporting failure is retried with backoff, then the job fails."""
    sv = start({"demo": worker(max_attempts=3, retry_delay=0.05)})
    job_id = sv.enqueue("demo", {"actions": [["raise", "boom"]]})
    job = sv.wait(job_id)
    assert job["status"] == "failed"
    assert job["attempts"] == 3
    assert job["error"]["message"] == "boom"
    assert "RuntimeError: boom" in job["error"]["stack"]
    names = sv.event_names(job_id)
    assert names.count("job.retrying") == 2
    assert names.count("job.failed") == 1


def test_per_job_max_attempts_overrides_the_kind(start, worker):
    """max_attempts given at submit time wins over the kind's."""
    sv = start({"demo": worker(max_attempts=5, retry_delay=0)})
    job_id = sv.client.submit("demo", {"actions": [["raise", "x"]]}, max_attempts=1)
    assert sv.wait(job_id)["attempts"] == 1


def test_nonzero_exit_fails_the_attempt_with_its_code(start, worker):
    """An exit without an outcome and a non-zero code fails with that code."""
    sv = start({"demo": worker(max_attempts=1)})
    job = sv.wait(sv.enqueue("demo", {"actions": [["exit", 3]]}))
    assert job["status"] == "failed"
    assert job["error"]["message"] == "exited with code 3"
    assert job["error"]["exit_code"] == 3


def test_a_worker_exit_seen_with_its_hangup_is_handled_once(start, worker, tmp_path):
    """Exit and hangup noticed in one poll: one "worker exited" line, one job.failed."""
    sv = start({"demo": worker(max_attempts=1)})
    gate = tmp_path / "gate"
    job_id = sv.enqueue("demo", {"actions": [["wait_file", str(gate)], ["exit", 3]]})
    job = wait_for(lambda: (j := sv.job(job_id))["process_state"] == "running" and j)

    def exit_while_the_loop_waits() -> None:
        gate.touch()
        wait_for(lambda: process_gone(job["pid"]), message="the worker to exit")

    sv.call(exit_while_the_loop_waits)  # its pidfd and its socket are both ready now
    assert sv.wait(job_id)["status"] == "failed"
    log_file = Path(sv.settings.log_dir) / f"{job_id}.log"
    text = wait_for(lambda: (t := log_file.read_text()) and "worker exited" in t and t)
    assert text.count("worker exited with code 3") == 1
    assert sv.event_names(job_id).count("job.failed") == 1


def test_exit_zero_without_outcome_fails(start, worker):
    """Exit 0 without completed/failed is a failure, said plainly."""
    sv = start({"demo": worker(max_attempts=1)})
    job = sv.wait(sv.enqueue("demo", {"actions": [["exit", 0]]}))
    assert job["status"] == "failed"
    assert job["error"]["message"] == "exited without reporting a result (exit code 0)"


def test_command_gone_after_start_fails_with_a_clear_error(start, tmp_path):
    """A worker command removed after the start-up check fails each attempt, saying why."""
    command = tmp_path / "worker.sh"
    command.write_text("#!/bin/sh\n")
    command.chmod(0o700)
    sv = start({"demo": {"command": str(command), "max_attempts": 2, "retry_delay": 0}})
    command.unlink()
    job = sv.wait(sv.enqueue("demo"))
    assert job["status"] == "failed"
    assert job["attempts"] == 2
    assert f"cannot start worker '{command}'" in job["error"]["message"]


def test_silent_worker_is_stale_at_one_timeout_and_killed_at_two(start, worker):
    """No message for heartbeat_timeout: job.stale; for twice that: killed, attempt fails."""
    timeout = 0.6
    sv = start({"quiet": worker("silent.py", heartbeat_timeout=timeout, max_attempts=1)})
    job_id = sv.enqueue("quiet")
    job = sv.wait(job_id, timeout=30)
    assert job["status"] == "failed"
    assert job["error"]["reason"] == "stale"
    assert "no message from the worker" in job["error"]["message"]
    events = {e.name: e for e in sv.events if e.data.get("id") == job_id}
    assert "job.stale" in events
    started = parse_time(job["started_at"])
    stale_after = events["job.stale"].time - started
    failed_after = events["job.failed"].time - started
    assert stale_after >= timeout
    assert failed_after >= 2 * timeout
    assert stale_after < failed_after
    assert process_gone(job["pid"])


def test_stopped_worker_is_killed_through_term_and_kill(start, worker):
    """A SIGSTOPped worker ignores TERM until KILL arrives a grace later."""
    sv = start({"frozen": worker(heartbeat_timeout=0.5, max_attempts=1)}, kill_grace=0.5)
    job_id = sv.enqueue("frozen", {"actions": [["stop"]]})
    job = sv.wait(job_id, timeout=30)
    assert job["error"]["reason"] == "stale"
    log = sv.settings.log_dir / f"{job_id}.log"
    wait_for(
        lambda: "attempt 1: worker killed by SIGKILL" in log.read_text(),
        message="the worker to die of SIGKILL",
    )


def test_job_timeout_kills_the_worker(start, worker):
    """A job running past its timeout is killed and the attempt fails."""
    sv = start({"slow": worker(timeout=0.5, max_attempts=1)})
    t0 = time.monotonic()
    job = sv.wait(sv.enqueue("slow", {"actions": [["hang"]]}))
    assert job["status"] == "failed"
    assert job["error"]["reason"] == "timeout"
    assert job["error"]["message"] == "timed out after 0.5 s"
    assert time.monotonic() - t0 >= 0.5


def test_cancel_running_job_stops_its_worker(start, worker, tmp_path):
    """Cancelling a running job records cancelled at once and stops the process."""
    ready = tmp_path / "ready"
    sv = start({"demo": worker()})
    job_id = sv.enqueue("demo", {"actions": [["touch", str(ready)], ["hang"]]})
    wait_for(ready.exists)
    pid = sv.job(job_id)["pid"]
    cancelled = sv.client.cancel(job_id, "user asked")
    assert cancelled["status"] == "cancelled"
    assert cancelled["error"]["message"] == "user asked"
    wait_for(lambda: not psutil.pid_exists(pid), message="worker to be stopped and reaped")
    assert sv.job(job_id)["status"] == "cancelled"
    assert "job.cancelled" in sv.event_names(job_id)


def test_cancel_pending_job_never_starts_it(start, worker, tmp_path):
    """A pending job that is cancelled is never spawned."""
    gate = tmp_path / "gate"
    sv = start({"demo": worker()}, concurrency=1)
    first = sv.enqueue("demo", {"actions": [["wait_file", str(gate)]]})
    second = sv.enqueue("demo")
    wait_for(lambda: sv.job(first)["status"] == "running")
    assert sv.job(second)["status"] == "pending"
    assert sv.client.cancel(second)["status"] == "cancelled"
    gate.touch()
    sv.wait(first)
    assert sv.job(second)["attempts"] == 0
    assert "job.external.spawned" not in sv.event_names(second)


def test_cancel_finished_or_unknown_job_is_an_error(start, worker):
    """Cancel of a finished job is 409, of an unknown id 404."""
    from supervisor.client import ClientError

    sv = start({"demo": worker()})
    job_id = sv.enqueue("demo")
    sv.wait(job_id)
    with pytest.raises(ClientError) as finished:
        sv.client.cancel(job_id)
    assert finished.value.status == 409
    with pytest.raises(ClientError) as unknown:
        sv.client.cancel("nope")
    assert unknown.value.status == 404


def test_retries_back_off(start, worker, tmp_path):
    """Attempts are spaced by retry_delay * retry_backoff ** (n - 1)."""
    stamps = tmp_path / "stamps"
    sv = start({"flaky": worker(max_attempts=3, retry_delay=0.3, retry_backoff=2.0)})
    job = sv.wait(
        sv.enqueue("flaky", {"actions": [["touch", str(stamps)], ["raise", "no"]]}), timeout=30
    )
    assert job["attempts"] == 3
    times = [float(line.split()[2]) for line in stamps.read_text().splitlines()]
    assert len(times) == 3
    assert times[1] - times[0] >= 0.3
    assert times[2] - times[1] >= 0.6


def _stamp(path: str) -> float:
    """The time a scripted worker's ``touch`` wrote into ``path``."""
    return float(Path(path).read_text().split()[2])


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    best = current = 0
    for _, step in edges:
        current += step
        best = max(best, current)
    return best


def test_global_and_per_kind_concurrency_are_respected(start, worker, tmp_path):
    """Never more workers at once than concurrency, nor of one kind than its own limit."""
    sv = start({"a": worker(concurrency=1), "b": worker()}, concurrency=3)
    runs: dict[str, list[tuple[float, float]]] = {"a": [], "b": []}
    ids = []
    for i in range(8):
        kind = "a" if i % 2 else "b"
        stamp = tmp_path / f"{kind}-{i}"
        ids.append(
            (
                kind,
                stamp,
                sv.enqueue(
                    kind,
                    {
                        "actions": [
                            ["touch", f"{stamp}.start"],
                            ["sleep", 0.3],
                            ["touch", f"{stamp}.end"],
                        ]
                    },
                ),
            )
        )
    for kind, stamp, job_id in ids:
        assert sv.wait(job_id)["status"] == "completed"
        begin = _stamp(f"{stamp}.start")
        end = _stamp(f"{stamp}.end")
        runs[kind].append((begin, end))
    assert _max_overlap(runs["a"]) == 1
    assert _max_overlap(runs["a"] + runs["b"]) <= 3
    assert _max_overlap(runs["b"]) >= 2  # b was not held back by a's limit


def test_pending_jobs_start_in_fifo_order(start, worker, tmp_path):
    """With one slot, jobs run in the order they were submitted."""
    order = tmp_path / "order"
    gate = tmp_path / "gate"
    sv = start({"demo": worker()}, concurrency=1)
    first = sv.enqueue("demo", {"actions": [["wait_file", str(gate)]]})
    ids = [sv.enqueue("demo", {"actions": [["touch", f"{order}-{i}"]]}) for i in range(5)]
    wait_for(lambda: sv.job(first)["status"] == "running")
    gate.touch()
    for job_id in ids:
        sv.wait(job_id)
    starts = [_stamp(f"{order}-{i}") for i in range(5)]
    assert starts == sorted(starts)
