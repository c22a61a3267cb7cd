"""run_step, the step worker's entry point: each phase in-process, then in real worker
processes of a test supervisor, with failures that carry the exception's class name."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from supervisor.testing import TEST_RUN_VAR, wait_for
from supervisor.workflows import StepFailed, WorkflowError, registry
from supervisor.workflows.errors import StepFailure, failure_message, parse_failure
from supervisor.workflows.steps import execute, run_step

FLOWS = """
import asyncio
from pydantic import BaseModel
from supervisor.workflows import workflow


class Order(BaseModel):
    order_id: str


def validate(order, ctx):
    ctx.progress(40, "checking " + order.order_id)
    return {"order_id": order.order_id, "in_stock": order.order_id != "none"}


async def ship(shipment, ctx):
    await asyncio.sleep(0)
    return {"tracking": "T-" + shipment["order_id"], "instance": ctx.instance["id"]}


def explode(value, ctx):
    raise ConnectionError("carrier unreachable")


orders = (
    workflow("orders")
    .task("validate", input_schema=Order, handler=validate)
    .choice(
        "stock",
        choices=[{"condition": lambda ctx: ctx.prev["in_stock"], "next": "fulfil"}],
        default="sorry",
    )
    .parallel(
        "fulfil",
        branches=[
            workflow.branch("shipping")
            .task("ship", input_schema=lambda prev: {"order_id": prev["order_id"]}, handler=ship)
            .build()
        ],
        next="done",
    )
    .task("sorry", handler=explode)
    .task("legacy", job="resize", input=lambda ctx: {"image": ctx.input["order_id"]})
    .pass_("done", transform=lambda ctx: {"shipped": ctx.prev})
    .build()
)
"""

WORKER = (
    "from jobvisor_worker import run_job; "
    "from supervisor.workflows.steps import run_step; run_job(run_step)"
)


def step_data(step: str, phase: str, module: str, **context: Any) -> dict[str, Any]:
    context.setdefault("instance", {"id": "i-1", "workflow": "orders"})
    workflow = context.pop("workflow", "orders")
    return {
        "workflow": workflow,
        "module": module,
        "step": step,
        "phase": phase,
        "context": context,
    }


@pytest.fixture
def flows(modules) -> str:
    """A workflow module on sys.path; its name."""
    name = modules.write(FLOWS)
    registry.add_path([modules.folder])
    return name


def test_execute_runs_each_phase(flows):
    """Every phase runs its step's data flow and returns the step's output."""
    progress: list[tuple[Any, ...]] = []
    out = execute(
        step_data("validate", "task", flows, input={"order_id": "A1"}),
        lambda *args: progress.append(args),
    )
    assert out == {"order_id": "A1", "in_stock": True}
    assert progress == [(40, "checking A1")]
    assert execute(step_data("stock", "choice", flows, prev=out)) == {"next": "fulfil"}
    assert execute(step_data("stock", "choice", flows, prev={"in_stock": False})) == {
        "next": "sorry"
    }
    shipped = execute(
        step_data("ship", "task", flows, workflow="orders/fulfil/shipping", prev=out, input={})
    )
    assert shipped == {"tracking": "T-A1", "instance": "i-1"}
    assert execute(step_data("done", "pass", flows, prev={"shipping": shipped})) == {
        "shipped": {"shipping": shipped}
    }
    payload = execute(step_data("legacy", "job-input", flows, prev=1, input={"order_id": "A1"}))
    assert payload == {"image": "A1"}
    assert execute(step_data("legacy", "job-output", flows, prev=1, result={"ok": 1})) == {"ok": 1}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1], "a step job's data must be a mapping, not list"),
        ({"workflow": "orders", "step": "validate", "phase": "run"}, "a 'phase' in task, choice"),
        (
            {"workflow": "orders", "step": "nope", "phase": "task"},
            "workflow 'orders' has no step 'nope'",
        ),
        (
            {"workflow": "orders", "step": "stock", "phase": "task"},
            "orders/stock: a choice step has no 'task' phase",
        ),
        (
            {"workflow": "orders", "step": "legacy", "phase": "task"},
            "orders/legacy: a job= task has no 'task' phase",
        ),
        (
            {"workflow": "orders", "step": "sorry", "phase": "job-input"},
            "a handler task has no 'job-input' phase",
        ),
    ],
)
def test_bad_step_data_is_refused_clearly(flows, data, message):
    """Malformed data, unknown steps and wrong phases raise a WorkflowError saying which."""
    if isinstance(data, dict):
        data = {**data, "module": flows}
    with pytest.raises(WorkflowError, match=message):
        execute(data)


class FakeJob:
    """Just what run_step uses of a jobvisor_worker.Job."""

    def __init__(self, data: Any) -> None:
        self.data = data

    def progress(self, percent: float, message: str | None = None) -> None:
        pass


def test_run_step_wraps_failures_with_the_class_name(flows):
    """A step's exception becomes StepFailed("ClassName: message"), the original as its cause."""
    with pytest.raises(StepFailed) as caught:
        run_step(FakeJob(step_data("sorry", "task", flows, prev=1)))  # type: ignore[arg-type]
    assert str(caught.value) == "ConnectionError: carrier unreachable"
    assert caught.value.error_type == "ConnectionError"
    assert isinstance(caught.value.__cause__, ConnectionError)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            {"message": "ValueError: bad: worse", "reason": "failed"},
            StepFailure("ValueError", "bad: worse"),
        ),
        (
            {"message": "exited with code 3", "reason": "exit"},
            StepFailure(None, "exited with code 3"),
        ),
        ({"message": "timed out", "reason": "timeout"}, StepFailure(None, "timed out")),
        ({"message": "no class here", "reason": "failed"}, StepFailure(None, "no class here")),
        (None, StepFailure(None, "the step failed without an error")),
    ],
)
def test_parse_failure_reads_the_class_name_of_a_reported_failure(error, expected):
    """Only a failure the worker reported carries a class name; others have none."""
    assert parse_failure(error) == expected


def test_failure_message_round_trips():
    """failure_message writes what parse_failure reads back."""
    text = failure_message(KeyError("order_id"))
    assert parse_failure({"message": text, "reason": "failed"}) == StepFailure(
        "KeyError", "'order_id'"
    )


# --- real worker processes -------------------------------------------------------------------


@pytest.fixture
def step_worker(start, marker, modules, flows):
    """A supervisor with a job kind whose worker is run_job(run_step), the module on PYTHONPATH."""
    kind = {
        "command": sys.executable,
        "args": ["-c", WORKER],
        "env": {"PYTHONPATH": str(modules.folder), TEST_RUN_VAR: marker},
        "heartbeat_timeout": 10,
    }
    return start({"wf-step": kind}, http="")


def test_run_step_completes_a_task_in_a_real_worker(step_worker, flows):
    """A task step runs in a worker process; its output is the job's result, its progress is seen."""
    sv = step_worker
    job_id = sv.enqueue("wf-step", step_data("validate", "task", flows, input={"order_id": "B2"}))
    job = sv.wait(job_id)
    assert job["status"] == "completed", job
    assert job["result"] == {"order_id": "B2", "in_stock": True}
    progress = wait_for(
        lambda: [
            e.data
            for e in sv.events
            if e.name == "job.external.progress" and e.data["id"] == job_id
        ]
    )
    assert progress[-1]["percent"] == 40 and progress[-1]["message"] == "checking B2"


def test_run_step_runs_choice_branch_and_async_steps_in_real_workers(step_worker, flows):
    """A choice, an async branch task and a pass step each complete in their own worker."""
    sv = step_worker
    prev = {"order_id": "C3", "in_stock": True}
    ids = [
        sv.enqueue("wf-step", step_data("stock", "choice", flows, prev=prev)),
        sv.enqueue(
            "wf-step",
            step_data("ship", "task", flows, workflow="orders/fulfil/shipping", prev=prev),
        ),
        sv.enqueue("wf-step", step_data("done", "pass", flows, prev={"shipping": 1})),
    ]
    results = [sv.wait(job_id) for job_id in ids]
    assert [r["status"] for r in results] == ["completed"] * 3, results
    assert [r["result"] for r in results] == [
        {"next": "fulfil"},
        {"tracking": "T-C3", "instance": "i-1"},
        {"shipped": {"shipping": 1}},
    ]


def test_a_failing_step_reports_its_class_name_to_the_supervisor(step_worker, flows):
    """A handler's exception fails the job; the stored error gives back its class and message."""
    sv = step_worker
    raised = sv.enqueue("wf-step", step_data("sorry", "task", flows, prev=1))
    invalid = sv.enqueue("wf-step", step_data("validate", "task", flows, input={"id": 1}))
    first, second = sv.wait(raised), sv.wait(invalid)
    assert first["status"] == "failed", first
    assert parse_failure(first["error"]) == StepFailure("ConnectionError", "carrier unreachable")
    assert "ConnectionError: carrier unreachable" in first["error"]["stack"]
    assert second["status"] == "failed", second
    assert parse_failure(second["error"]) == StepFailure(
        "StepInputError", "orders/validate: input.order_id: Field required"
    )
