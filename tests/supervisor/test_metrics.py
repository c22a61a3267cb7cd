"""GET /metrics (docs/metrics.md): Prometheus text that a Prometheus parser reads, with
per-kind histograms that move when real jobs run, and settled totals that survive a
``kill -9`` of a real ``jobvisor serve``."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from supervisor.client import Client
from supervisor.testing import ServerProcess, wait_for
from tests.supervisor.rawhttp import request
from tests.supervisor.serverconfig import write_config

HISTOGRAMS = {
    "jobvisor_queue_wait_seconds": ("kind",),
    "jobvisor_run_time_seconds": ("kind",),
    "jobvisor_spawn_latency_seconds": ("kind",),
    "jobvisor_commit_seconds": (),
    "jobvisor_loop_iteration_seconds": (),
}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition, parsed by prometheus_client's own parser."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def settled(values: dict, kind: str, status: str) -> float:
    return values.get(("jobvisor_jobs_settled_total", (("kind", kind), ("status", status))), 0.0)


@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_metrics_parse_with_per_kind_histograms_that_moved(start, worker, transport):
    """After real jobs ran, every histogram is present, typed histogram, with counts that
    moved; the gauges and settled totals carry the job kind as a label."""
    sv = start({"demo": worker(), "other": worker(max_attempts=1)}, transport=transport)
    before = {f.name: f for f in text_string_to_metric_families(sv.client.metrics())}
    for name in HISTOGRAMS:
        assert before[name.removesuffix("_total")].type == "histogram"
    for kind, data in (
        ("demo", {"actions": [["progress", 50, "half"]]}),
        ("demo", {"actions": []}),
        ("other", {"actions": [["raise", "no"]]}),
    ):
        job_id = sv.enqueue(kind, data)
        sv.wait(job_id)  # and its run time is observed when its process is gone:
        wait_for(lambda j=job_id: sv.job(j)["process_state"] == "exited", message="worker gone")

    response = request(sv, "GET", "/metrics")
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    values = samples(response.body.decode())
    for kind, runs in (("demo", 2), ("other", 1)):
        for name in ("jobvisor_queue_wait_seconds", "jobvisor_run_time_seconds"):
            assert values[f"{name}_count", (("kind", kind),)] == runs
            assert values[f"{name}_bucket", (("kind", kind), ("le", "+Inf"))] == runs
        assert values["jobvisor_spawn_latency_seconds_count", (("kind", kind),)] == runs
    assert values["jobvisor_run_time_seconds_sum", (("kind", "demo"),)] > 0
    assert values["jobvisor_commit_seconds_count", ()] >= 6  # a start and an outcome per job
    assert values["jobvisor_loop_iteration_seconds_count", ()] > 0
    assert settled(values, "demo", "completed") == 2
    assert settled(values, "other", "failed") == 1
    for status in ("pending", "scheduled", "running"):
        assert values["jobvisor_jobs", (("kind", "other"), ("status", status))] == 0
    assert values["jobvisor_workers_connected", (("kind", "demo"),)] == 0
    assert values["jobvisor_jobs_stale", (("kind", "demo"),)] == 0
    assert values["jobvisor_sse_clients_dropped_total", ()] == 0


def test_settled_totals_survive_kill_9_deletion_and_retry(tmp_path, marker):
    """jobs_settled_total goes on after a kill -9 and restart, from what the store holds,
    and a deleted or retried job still counts where it settled."""
    config = write_config(tmp_path, marker, kind="max_attempts = 1")
    server = ServerProcess(config).start()
    try:
        client: Client = server.client
        done = client.submit("demo", {"actions": []})
        failed = client.submit("demo", {"actions": [["on_attempt", 1, "raise", "x"]]})
        client.wait(done)
        client.wait(failed)
        wait_for(lambda: client.get(done)["process_state"] == "exited", message="worker gone")
        client.delete(done)  # its row is gone; it still completed once
        first = samples(client.metrics())
        assert (settled(first, "demo", "completed"), settled(first, "demo", "failed")) == (1, 1)

        server.kill()  # SIGKILL: nothing flushed on the way out
        server = ServerProcess(config).start()
        client = server.client
        after = samples(client.metrics())
        assert (settled(after, "demo", "completed"), settled(after, "demo", "failed")) == (1, 1)
        assert after["jobvisor_completed_total", ()] == 0  # a process counter starts again

        client.retry(failed)  # it failed once and now completes: it counts in both
        client.wait(failed)
        server.kill()
        server = ServerProcess(config).start()
        last = samples(server.client.metrics())
        assert (settled(last, "demo", "completed"), settled(last, "demo", "failed")) == (2, 1)
    finally:
        server.kill()
