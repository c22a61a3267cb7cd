"""Parallel branches, cancel and resume (docs/workflows.md, "The engine")."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from supervisor.testing import process_gone, wait_for
from supervisor.workflows.errors import InstanceFinished, InstanceNotResumable
from tests.workflows.enginehelpers import Flows

CONTROL = """
import os
import time
from supervisor.workflows import workflow


def hang(value, ctx):
    count("hang")
    (COUNTS / "hang-pid").write_text(str(os.getpid()))
    time.sleep(60)


def fail_soon(value, ctx):
    count("fail_soon")
    time.sleep(0.3)
    raise RuntimeError("branch b broke")


def fail_after_hang(value, ctx):
    count("fail_after_hang")
    for _ in range(400):  # until branch a's step runs (at most 20 s)
        if (COUNTS / "hang-pid").exists():
            break
        time.sleep(0.05)
    raise RuntimeError("branch b broke")


def finish(value, ctx):
    count("finish")
    time.sleep(0.5)
    return {"value": value}


def first(value, ctx):
    count("first")
    return {"n": value["n"] + 1}


def gate(value, ctx):
    count("gate")
    if (COUNTS / "closed").exists():
        raise RuntimeError("gate closed")
    return {"passed": value["n"]}


def fan_a(value, ctx):
    count("fan_a")
    return {"a": value["n"]}


def fan_b(value, ctx):
    count("fan_b")
    if (COUNTS / "closed").exists():
        raise RuntimeError("b closed")
    return {"b": value["n"]}


flows = [
    workflow("fast")
    .parallel("both", branches=[
        workflow.branch("a").task("hang", handler=hang).build(),
        workflow.branch("b").task("fail", handler=fail_after_hang).build(),
    ])
    .build(),
    workflow("patient")
    .parallel("both", on_error="wait-all", branches=[
        workflow.branch("a").task("finish", handler=finish).build(),
        workflow.branch("b").task("fail", handler=fail_soon).build(),
    ])
    .build(),
    workflow("hanging").task("hang", handler=hang).build(),
    workflow("gated").task("first", handler=first).task("gate", handler=gate).build(),
    workflow("fan")
    .task("first", handler=first)
    .parallel("split", on_error="wait-all", branches=[  # a always completes before b fails
        workflow.branch("a").task("fan_a", handler=fan_a).build(),
        workflow.branch("b").task("fan_b", handler=fan_b).build(),
    ])
    .build(),
]
"""


@pytest.fixture
def flows(flows_with: Callable[..., Flows]) -> Flows:
    """A supervisor with the CONTROL workflows."""
    return flows_with(CONTROL)


def _hang_pid(flows: Flows) -> int:
    path = flows.counts / "hang-pid"
    return int(wait_for(lambda: path.exists() and path.read_text(), message="hang's PID"))


def test_fail_fast_cancels_the_other_branch_and_stops_its_worker(flows: Flows) -> None:
    """Branch b fails: branch a is cancelled, its worker stops, the instance fails."""
    done = flows.wait(flows.start("fast", {}))
    assert done.status == "failed"
    assert done.error is not None and "branch 'b'" in done.error["message"]
    pid = _hang_pid(flows)
    wait_for(lambda: process_gone(pid), message="branch a's worker to stop")
    children = flows.sv.call(lambda: [c.copy() for c in flows.engine.children(done.id)])
    assert {c.branch: c.status for c in children} == {"a": "cancelled", "b": "failed"}


def test_wait_all_lets_every_branch_finish_then_fails(flows: Flows) -> None:
    """Branch a completes although b failed first; then the step fails with b's error."""
    done = flows.wait(flows.start("patient", {"n": 1}))
    assert done.status == "failed"
    assert flows.runs("finish") == 1
    children = flows.sv.call(lambda: [c.copy() for c in flows.engine.children(done.id)])
    assert {c.branch: c.status for c in children} == {"a": "completed", "b": "failed"}
    assert done.error is not None
    assert "branch 'b': " in done.error["message"] and "branch b broke" in done.error["message"]
    assert set(done.error["errors"]) == {"b"}


def test_cancel_stops_a_running_instance_and_its_worker(flows: Flows) -> None:
    """Cancelling a running instance cancels its step's job; the worker process stops."""
    instance_id = flows.start("hanging", {})
    pid = _hang_pid(flows)
    cancelled = flows.sv.call(lambda: flows.engine.cancel(instance_id, "no longer needed").copy())
    assert cancelled.status == "cancelled"
    assert cancelled.steps["hang"].status == "cancelled"
    wait_for(lambda: process_gone(pid), message="the step's worker to stop")
    assert flows.events(instance_id)[-1] == "workflow.cancelled"
    with pytest.raises(InstanceFinished):
        flows.sv.call(lambda: flows.engine.cancel(instance_id))


def test_resume_reruns_only_the_step_that_failed(flows: Flows) -> None:
    """A failed instance resumed continues at its failed step; the first step is not re-run."""
    (flows.counts / "closed").write_text("")
    instance_id = flows.start("gated", {"n": 1})
    assert flows.wait(instance_id).status == "failed"
    with pytest.raises(InstanceFinished):
        flows.sv.call(lambda: flows.engine.cancel(instance_id))
    (flows.counts / "closed").unlink()
    flows.sv.call(lambda: flows.engine.resume(instance_id))
    done = flows.wait(instance_id, "completed", "failed")
    assert done.status == "completed", done.error
    assert done.output == {"passed": 2}
    assert (flows.runs("first"), flows.runs("gate")) == (1, 2)
    with pytest.raises(InstanceNotResumable):
        flows.sv.call(lambda: flows.engine.resume(instance_id))  # completed: final


def test_resume_of_a_parallel_step_reruns_only_the_failed_branch(flows: Flows) -> None:
    """Branch a completed, b failed (wait-all): resume runs b again, not a, and keys by branch."""
    (flows.counts / "closed").write_text("")
    instance_id = flows.start("fan", {"n": 1})
    assert flows.wait(instance_id).status == "failed"
    wait_for(lambda: flows.runs("fan_a") == 1, message="branch a to have run")
    (flows.counts / "closed").unlink()
    flows.sv.call(lambda: flows.engine.resume(instance_id))
    done = flows.wait(instance_id, "completed", "failed")
    assert done.status == "completed", done.error
    assert done.output == {"a": {"a": 2}, "b": {"b": 2}}
    assert (flows.runs("first"), flows.runs("fan_a"), flows.runs("fan_b")) == (1, 1, 2)
