"""A job's life end to end: HTTP in, a real worker process, progress, result, durability."""

from __future__ import annotations

from pathlib import Path

import protocol
from supervisor.testing import (
    ServerProcess,
    SupervisorThread,
    make_settings,
    stored_job,
    wait_for,
)
from tests.supervisor.serverconfig import write_config
from tests.supervisor.test_durability import _hold_workers


def test_http_job_runs_worker_with_live_progress_and_stored_result(start, worker, tmp_path):
    """A job submitted over HTTP runs a real worker whose progress shows while it runs."""
    sv = start({"demo": worker()})
    ready, go = tmp_path / "ready", tmp_path / "go"
    actions = [
        ["progress", 50, "half way"],
        ["touch", str(ready)],
        ["wait_file", str(go)],
        ["return", {"answer": 42}],
    ]
    job_id = sv.client.submit("demo", {"actions": actions})
    wait_for(ready.exists, message="worker to report progress")
    running = wait_for(lambda: (j := sv.client.get(job_id))["progress"]["percent"] == 50 and j)
    assert running["status"] == "running"
    assert running["process_state"] == "running"
    assert running["progress"]["message"] == "half way"
    assert running["pid"] > 0
    go.touch()
    done = sv.wait(job_id)
    assert done["status"] == "completed", done
    assert done["result"] == {"answer": 42}
    stored = sv.call(sv.sup.store.get, job_id)  # read back from the SQLite file
    assert stored is not None and stored.status.value == "completed"
    assert stored.result == {"answer": 42}


def test_worker_gets_its_ack_only_after_the_outcome_is_committed(tmp_path, marker):
    """A supervisor killed the instant its worker has the ack has the outcome in its store."""
    server = ServerProcess(write_config(tmp_path, marker)).start()
    try:
        job_id = server.client.submit("demo", {"actions": [["complete_then_kill_supervisor", 7]]})
        assert server.proc is not None
        server.proc.wait(timeout=60)  # the worker kills it as soon as complete() returns
    finally:
        server.kill()
    job = stored_job(tmp_path / "state" / "jobs.db", job_id)  # the lock died with it
    assert job is not None and job.status.value == "completed" and job.result == 7


def test_job_log_has_worker_output_protocol_logs_and_attempt_notes(start, worker):
    """The per-job log holds the worker's stdout/stderr, its log messages and our notes."""
    sv = start({"demo": worker()})
    job_id = sv.enqueue("demo", {"actions": [["log", "warn", "careful now"]]})
    sv.wait(job_id)
    text = wait_for(
        lambda: (
            (t := (sv.settings.log_dir / f"{job_id}.log").read_text())
            and "exited with code 0" in t
            and t
        )
    )
    assert "[warn] careful now" in text
    assert "attempt 1/3: starting" in text
    assert "attempt 1 completed" in text


def test_events_of_a_successful_job_in_order(start, worker):
    """spawned, progress, log, completed and job.<name>.completed arrive in order."""
    sv = start({"demo": worker()})
    job_id = sv.enqueue("demo", {"actions": [["progress", 10, "a"], ["log", "info", "b"]]})
    sv.wait(job_id)
    names = wait_for(lambda: (n := sv.event_names(job_id)) and "job.demo.completed" in n and n)
    assert names[0] == "job.external.spawned"
    assert "job.external.progress" in names and "job.external.log" in names
    assert names.index("job.completed") < names.index("job.demo.completed")


def test_progress_sent_just_before_the_outcome_reaches_subscribers_before_it(
    start, worker, tmp_path
):
    """Progress and completed in one read: subscribers see progress, then completed."""
    hold_file = tmp_path / "hold"
    sv = start({"held": worker("hold.sh", env={"HOLD_FILE": str(hold_file)})})
    job_id = sv.enqueue("held")
    [(sock, _)] = _hold_workers(hold_file, 1)
    with sock:
        sock.setblocking(True)
        sock.sendall(
            protocol.encode(protocol.Progress(percent=99.0, message="almost"))
            + protocol.encode(protocol.Completed(result="done"))
        )
        names = wait_for(lambda: (n := sv.event_names(job_id)) and "job.completed" in n and n)
    assert names.index("job.external.progress") < names.index("job.completed")


def test_scheduled_job_waits_for_run_at(start, worker):
    """A job with run_at in the future stays scheduled, then runs."""
    import time

    sv = start({"demo": worker()})
    run_at = time.time() + 1.0
    job_id = sv.client.submit("demo", {}, run_at=run_at)
    assert sv.client.get(job_id)["status"] == "scheduled"
    done = sv.wait(job_id)
    assert done["status"] == "completed"
    started = done["started_at"]
    from supervisor.views import parse_time

    assert parse_time(started) >= run_at - 0.05


def test_python_api_enqueue_get_by_name_and_running_external(start, worker, tmp_path):
    """get_by_name and get_running_external reflect the table."""
    gate = tmp_path / "gate"
    sv = start({"demo": worker()})
    job_id = sv.enqueue("demo", {"actions": [["wait_file", str(gate)]]})
    wait_for(lambda: sv.job(job_id)["process_state"] == "running")
    running = sv.call(lambda: [j.id for j in sv.sup.get_running_external()])
    assert running == [job_id]
    gate.touch()
    sv.wait(job_id)
    completed = sv.call(lambda: [j.id for j in sv.sup.get_by_name("demo")])
    assert completed == [job_id]
    assert Path(sv.settings.log_dir).is_dir()


def test_metrics_count_jobs_and_messages_in_prometheus_format(start, worker):
    """GET /metrics serves counters and gauges in the Prometheus text format."""
    from tests.supervisor.rawhttp import request

    sv = start({"demo": worker()})
    sv.wait(sv.enqueue("demo", {"actions": [["progress", 5, "a"], ["log", "info", "b"]]}))
    response = request(sv, "GET", "/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.body.decode()
    values = {
        line.split()[0]: float(line.split()[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert values["jobvisor_completed_total"] == 1
    assert values["jobvisor_spawned_total"] == 1
    assert values["jobvisor_worker_messages_total"] >= 4  # hello, started, progress, log, ...
    assert values['jobvisor_jobs{kind="demo",status="running"}'] == 0
    assert "# TYPE jobvisor_commits_total counter" in text


def test_states_doc_shows_the_transition_tables_the_code_enforces():
    """docs/states.md embeds exactly the tables of supervisor/states.py."""
    from supervisor.states import markdown

    doc = (Path(__file__).parents[2] / "docs" / "states.md").read_text()
    assert markdown() in doc


def test_a_job_submitted_after_a_restart_never_reuses_a_finished_jobs_seq(tmp_path, worker):
    """seq keeps growing across restarts, so the newest job is always listed first."""
    settings = make_settings(tmp_path / "state", {"demo": worker()})
    with SupervisorThread(settings) as first:
        done = first.enqueue("demo", {"actions": [["return", 1]]})
        first.wait(done)
        old_seq = first.call(lambda: first.sup.store.get(done)).seq
    with SupervisorThread(settings) as second:
        new = second.enqueue("demo", {"actions": [["hang"]]})
        assert second.call(lambda: second.sup.table.get(new)).seq > old_seq
        second.cancel(new)
