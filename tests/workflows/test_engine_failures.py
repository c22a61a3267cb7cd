"""Retries, step timeouts and workflow timeouts (docs/workflows.md, "The engine")."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from supervisor.testing import process_gone, wait_for
from tests.workflows.enginehelpers import Flows

FAILING = """
import os
import time
from supervisor.workflows import workflow


def flaky(value, ctx):
    count("flaky")
    if len((COUNTS / "flaky").read_text()) < 3:
        raise ConnectionError("carrier unreachable")
    return {"ok": True}


def broken(value, ctx):
    count("broken")
    raise ConnectionError("always down")


def wrong(value, ctx):
    count("wrong")
    raise ValueError("bad card")


def slow(value, ctx):
    count("slow")
    (COUNTS / f"pid-{len((COUNTS / 'slow').read_text())}").write_text(str(os.getpid()))
    time.sleep(60)


quick = {"interval": 0.2, "backoff_rate": 2.0}
flows = [
    workflow("flaky").task("t", handler=flaky, retry={"max_attempts": 3, **quick}).build(),
    workflow("broken").task("t", handler=broken, retry={"max_attempts": 2, **quick}).build(),
    workflow("picky")
    .task("t", handler=wrong, retry={"max_attempts": 3, "retry_on": ["ConnectionError"], **quick})
    .build(),
    workflow("slow-step")
    .task("t", handler=slow, timeout=2, retry={"max_attempts": 2, "interval": 0.1})
    .build(),
    workflow("slow-flow").timeout(3).task("t", handler=slow).build(),
]
"""


@pytest.fixture
def flows(flows_with: Callable[..., Flows]) -> Flows:
    """A supervisor with the FAILING workflows."""
    return flows_with(FAILING)


def test_a_failing_step_is_retried_with_backoff_then_succeeds(flows: Flows) -> None:
    """Two ConnectionErrors are retried after 0.2 then 0.4 s; the third attempt completes."""
    instance_id = flows.start("flaky", {})
    done = flows.wait(instance_id)
    assert done.status == "completed", done.error
    assert flows.runs("flaky") == 3
    assert done.steps["t"].attempts == 3
    retries = [e for e in flows.sv.events if e.name == "workflow.step.retry"]
    assert [e.data["delay"] for e in retries] == [0.2, 0.4]
    assert retries[0].data["error"]["error_type"] == "ConnectionError"
    assert flows.events(instance_id).count("workflow.step.retry") == 2


def test_retries_run_out_and_the_instance_fails(flows: Flows) -> None:
    """After max_attempts failures the step and the instance fail with the last error."""
    done = flows.wait(flows.start("broken", {}))
    assert done.status == "failed"
    assert flows.runs("broken") == 2
    assert done.steps["t"].status == "failed"
    assert done.error is not None
    assert done.error["message"] == "broken/t: ConnectionError: always down"


def test_retry_on_retries_only_the_named_errors(flows: Flows) -> None:
    """A ValueError is not in retry_on: one attempt, then failure."""
    done = flows.wait(flows.start("picky", {}))
    assert done.status == "failed"
    assert flows.runs("wrong") == 1
    assert done.error is not None
    assert done.error["error_type"] == "ValueError"


def _pid(flows: Flows, run: int) -> int:
    path = flows.counts / f"pid-{run}"
    return int(wait_for(lambda: path.exists() and path.read_text(), message=str(path)))


def test_a_step_timeout_stops_the_attempt_and_retries_it(flows: Flows) -> None:
    """Each attempt of a 2 s step is stopped at 2 s as StepTimeout, retried once, then fails."""
    done = flows.wait(flows.start("slow-step", {}), timeout=30)
    assert done.status == "failed"
    assert flows.runs("slow") == 2
    assert done.error is not None
    assert done.error["message"] == "slow-step/t: StepTimeout: step timed out after 2 s"
    for run in (1, 2):
        pid = _pid(flows, run)
        wait_for(lambda pid=pid: process_gone(pid), message=f"worker {pid} to stop")


def test_a_workflow_timeout_cancels_the_running_step_and_fails(flows: Flows) -> None:
    """The instance fails "timed out after 3 s" and its step's worker stops."""
    instance_id = flows.start("slow-flow", {})
    done = flows.wait(instance_id, timeout=30)
    assert done.status == "failed"
    assert done.error is not None
    assert done.error["message"] == "timed out after 3 s"
    assert done.steps["t"].status == "cancelled"
    pid = _pid(flows, 1)
    wait_for(lambda: process_gone(pid), message=f"worker {pid} to stop")
    job = flows.sv.job(done.steps["t"].job_id or "")
    assert job["status"] == "cancelled"
