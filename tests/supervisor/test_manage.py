"""Managing jobs over HTTP and the CLI (docs/http-api.md, "Managing jobs"): retry and delete,
against a real supervisor running real workers, on both transports."""

from __future__ import annotations

import time

import pytest

from supervisor.client import ClientError
from supervisor.joblogs import log_path
from supervisor.testing import wait_for
from tests.supervisor.test_cli import jobvisor

FAIL_FIRST = {"actions": [["on_attempt", 1, "raise", "boom"], ["return", {"second": True}]]}


def refused(call) -> ClientError:
    """The ``ClientError`` that ``call()`` raises (it must raise one)."""
    with pytest.raises(ClientError) as info:
        call()
    return info.value


@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_retry_of_a_failed_job_runs_it_again_under_the_same_id_and_completes(
    start, worker, transport
):
    """A failed job retried over HTTP runs a second attempt, same id, and completes."""
    sv = start({"demo": worker(max_attempts=1)}, transport=transport)
    client = sv.client
    job_id = client.submit("demo", FAIL_FIRST)
    assert sv.wait(job_id)["status"] == "failed"

    retried = client.retry(job_id)
    assert (retried["id"], retried["status"], retried["error"]) == (job_id, "pending", None)
    done = sv.wait(job_id, "completed")
    assert done["attempts"] == 2 and done["result"] == {"second": True}
    assert done["max_attempts"] == 2  # one attempt made, then the kind's one more
    names = sv.event_names(job_id)
    assert names.index("job.failed") < names.index("job.requeued") < names.index("job.completed")
    text = log_path(sv.settings.log_dir, job_id).read_text()
    assert "attempt 1/1" in text and "retry requested (failed before)" in text
    assert "attempt 2/2" in text  # one log, both attempts, in order


@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_retry_of_a_cancelled_job_runs_it_and_completes(start, worker, transport):
    """A job cancelled before it ever ran, retried with max_attempts, runs once and completes."""
    sv = start({"demo": worker()}, transport=transport)
    client = sv.client
    job_id = client.submit("demo", {"actions": []}, run_at=time.time() + 3600)
    client.cancel(job_id, "not now")
    retried = client.retry(job_id, max_attempts=5)
    assert retried["status"] == "pending" and retried["max_attempts"] == 5
    done = sv.wait(job_id, "completed")
    assert done["attempts"] == 1 and done["result"] == {"ok": True}


def test_retry_refuses_running_completed_and_unknown_jobs_clearly(start, worker, tmp_path):
    """Retrying a running or completed job is a 409 naming its status; an unknown id a 404;
    a bad max_attempts a 400; the running job carries on and completes."""
    sv = start({"demo": worker()})
    client = sv.client
    gate = tmp_path / "gate"
    running = client.submit("demo", {"actions": [["wait_file", str(gate)]]})
    wait_for(lambda: sv.job(running)["process_state"] == "running", message="worker connected")

    error = refused(lambda: client.retry(running))
    assert (error.status, error.code) == (409, "not_retryable")
    assert f"job {running} is running; only a failed or cancelled job" in error.message

    done = sv.wait(client.submit("demo", {"actions": []}))
    error = refused(lambda: client.retry(done["id"]))
    assert error.status == 409 and "is completed" in error.message

    error = refused(lambda: client.retry("0" * 20))
    assert (error.status, error.code) == (404, "job_not_found")

    failed = client.submit("demo", {"actions": [["raise", "x"]]}, max_attempts=1)
    sv.wait(failed)
    error = refused(lambda: client.retry(failed, max_attempts=0))
    assert error.status == 400 and "max_attempts" in error.message
    assert sv.job(failed)["status"] == "failed"  # a refused retry changes nothing

    gate.touch()
    assert sv.wait(running)["status"] == "completed"


@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_delete_removes_a_finished_job_and_its_log_then_404(start, worker, transport):
    """DELETE /jobs/{id} removes a finished job and its log file; it is a 404 afterwards."""
    sv = start({"demo": worker()}, transport=transport)
    client = sv.client
    job_id = client.submit("demo", {"actions": [["log", "info", "hello"]]})
    sv.wait(job_id)
    log = log_path(sv.settings.log_dir, job_id)
    wait_for(lambda: client.get(job_id)["process_state"] == "exited", message="worker gone")
    assert log.exists()

    assert client.delete(job_id) == {"deleted": job_id, "status": "completed"}
    assert not log.exists()
    assert refused(lambda: client.get(job_id)).status == 404
    assert refused(lambda: client.delete(job_id)).status == 404
    assert job_id not in [job["id"] for job in client.list()]
    assert "job.deleted" in sv.event_names(job_id)


def test_delete_of_an_active_job_is_a_409_and_the_job_runs_on(start, worker, tmp_path):
    """Deleting a running or pending job is refused with 409 job_active; both go on to complete."""
    sv = start({"demo": worker(concurrency=1)})
    client = sv.client
    gate = tmp_path / "gate"
    running = client.submit("demo", {"actions": [["wait_file", str(gate)]]})
    pending = client.submit("demo", {"actions": []})
    wait_for(lambda: sv.job(running)["status"] == "running", message="first job running")
    for job_id, status in ((running, "running"), (pending, "pending")):
        error = refused(lambda j=job_id: client.delete(j))
        assert (error.status, error.code) == (409, "job_active")
        assert f"is {status}; cancel it first" in error.message
    gate.touch()
    assert sv.wait(running)["status"] == sv.wait(pending)["status"] == "completed"
    assert log_path(sv.settings.log_dir, running).exists()


def test_cli_retry_and_delete(start, worker, tmp_path):
    """``jobvisor retry ID`` queues a failed job again; ``jobvisor delete ID`` removes it;
    a refused one exits 2 with the server's message."""
    sv = start({"demo": worker(max_attempts=1)})
    job_id = sv.client.submit("demo", FAIL_FIRST)
    sv.wait(job_id)

    done = jobvisor("retry", job_id, sv=sv, cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, f"{job_id} pending\n"), done.stderr
    sv.wait(job_id, "completed")
    again = jobvisor("retry", job_id, sv=sv, cwd=tmp_path)
    assert again.returncode == 2 and "only a failed or cancelled job" in again.stderr

    wait_for(lambda: sv.job(job_id)["process_state"] == "exited", message="worker gone")
    gone = jobvisor("delete", job_id, sv=sv, cwd=tmp_path)
    assert (gone.returncode, gone.stdout) == (0, f"{job_id} deleted\n"), gone.stderr
    missing = jobvisor("delete", job_id, sv=sv, cwd=tmp_path)
    assert missing.returncode == 2 and "no job with id" in missing.stderr


def test_retry_and_delete_refuse_a_step_job_of_an_active_workflow_instance(start, worker):
    """A failed job that an active instance's step names is the workflow's to retry: a
    manual retry or delete of it is a 409 saying so, and it stays failed."""
    from supervisor.workflows.records import InstanceStatus, StepState, StepStatus
    from tests.workflows.store_factories import make_instance

    sv = start({"demo": worker(max_attempts=1)})
    client = sv.client
    job_id = client.submit("demo", {"actions": [["raise", "no"]]})
    sv.wait(job_id)
    wait_for(lambda: sv.job(job_id)["process_state"] == "exited", message="worker gone")
    instance = make_instance(
        status=InstanceStatus.RUNNING,
        steps={"a": StepState(status=StepStatus.WAITING_RETRY, job_id=job_id)},
    )
    sv.call(lambda: sv.sup.instances.load(instance))
    error = refused(lambda: client.retry(job_id))
    assert error.status == 409 and "step of a workflow instance that is still active" in (
        error.message
    )
    error = refused(lambda: client.delete(job_id))
    assert error.status == 409 and "step of a workflow instance that is still active" in (
        error.message
    )
    assert sv.job(job_id)["status"] == "failed"


def test_the_embedded_api_retries_and_deletes(start, worker):
    """SupervisorThread.retry and .delete do in-process what the HTTP routes do."""
    from supervisor.errors import JobNotFound

    sv = start({"demo": worker(max_attempts=1)}, http="")
    job_id = sv.enqueue("demo", FAIL_FIRST)
    sv.wait(job_id)
    assert sv.retry(job_id)["status"] == "pending"
    assert sv.wait(job_id)["status"] == "completed"
    wait_for(lambda: sv.job(job_id)["process_state"] == "exited", message="worker gone")
    sv.delete(job_id)
    with pytest.raises(JobNotFound):
        sv.delete(job_id)
