"""The workflow engine with real supervisors and real step workers (docs/workflows.md)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from supervisor.errors import BadRequest
from supervisor.testing import SupervisorThread
from supervisor.workflows.errors import InstanceNotFound, UnknownWorkflow
from tests.workflows.conftest import Modules
from tests.workflows.enginehelpers import Flows

SEQUENCE = """
from pydantic import BaseModel
from supervisor.workflows import workflow


class Order(BaseModel):
    order_id: str
    quantity: int = 1


def validate(order, ctx):
    count("validate")
    return {"order_id": order.order_id, "total": order.quantity * 2.5}


def label(shipment, ctx):
    count("label")
    ctx.progress(60, "labelling")
    return {"label": shipment["id"] + "-L", "first": ctx.steps["validate"]["order_id"]}


class Total(BaseModel):
    total: float


def bad_total(value, ctx):
    return {"total": "abc"}


flows = [
    workflow("seq")
    .task("validate", input_schema=Order, handler=validate)
    .task("label", input_schema=lambda prev, inp: {"id": prev["order_id"]}, handler=label)
    .build(),
    workflow("bad-output").task("t", handler=bad_total, output_schema=Total).build(),
]
"""


@pytest.fixture
def flows(flows_with: Callable[..., Flows]) -> Flows:
    """A supervisor with the SEQUENCE workflows."""
    return flows_with(SEQUENCE)


def test_schema_and_mapper_inputs_flow_to_the_output(flows: Flows) -> None:
    """A model-validated first step feeds a mapper step; the instance ends with its output."""
    instance_id = flows.start("seq", {"order_id": "A-1", "quantity": 4})
    done = flows.wait(instance_id)
    assert done.status == "completed", done.error
    assert done.output == {"label": "A-1-L", "first": "A-1"}
    assert done.steps["validate"].output == {"order_id": "A-1", "total": 10.0}
    assert (flows.runs("validate"), flows.runs("label")) == (1, 1)
    names = flows.events(instance_id)
    assert names[0] == "workflow.started" and names[-1] == "workflow.completed"
    assert names.count("workflow.step.completed") == 2
    assert "workflow.progress" in names


def test_a_steps_progress_is_published_on_the_instance(flows: Flows) -> None:
    """``ctx.progress`` in a handler reaches the instance's channel as ``workflow.progress``
    naming the step, with its percent and message beside the steps completed so far."""
    instance_id = flows.start("seq", {"order_id": "A-2"})
    assert flows.wait(instance_id).status == "completed"
    with flows.sv._events_lock:
        progress = [
            e.data
            for e in flows.sv.events
            if e.name == "workflow.progress" and e.data.get("id") == instance_id
        ]
    from_step = [p for p in progress if "step" in p]
    assert from_step == [
        {
            "id": instance_id,
            "workflow": "seq",
            "status": "running",
            "completed": 1,
            "total": 2,
            "step": "label",
            "percent": 60.0,
            "message": "labelling",
        }
    ]
    assert [p["completed"] for p in progress if "step" not in p] == [1, 2]


def test_an_invalid_input_fails_naming_the_field(flows: Flows) -> None:
    """An input missing a field fails the instance with the field in the message."""
    done = flows.wait(flows.start("seq", {"quantity": 1}))
    assert done.status == "failed"
    assert done.error is not None
    assert "StepInputError" in done.error["message"]
    assert "input.order_id" in done.error["message"]
    assert done.steps["validate"].status == "failed"
    assert flows.runs("validate") == 0


def test_an_invalid_output_fails_naming_the_field(flows: Flows) -> None:
    """An output failing its schema fails the step with the field and the bad value."""
    done = flows.wait(flows.start("bad-output", None))
    assert done.status == "failed"
    assert done.error is not None
    assert "StepOutputError" in done.error["message"]
    assert "output.total" in done.error["message"]


def test_the_service_refuses_unknown_names_ids_and_unstorable_input(flows: Flows) -> None:
    """start() of an unknown workflow or a branch, a set as input, cancel of no instance."""
    with pytest.raises(UnknownWorkflow):
        flows.sv.call(lambda: flows.engine.start("no-such-flow", {}))
    with pytest.raises(UnknownWorkflow):
        flows.sv.call(lambda: flows.engine.start("seq/x/y", {}))
    with pytest.raises(BadRequest):
        flows.sv.call(lambda: flows.engine.start("seq", {1, 2}))
    with pytest.raises(InstanceNotFound):
        flows.sv.call(lambda: flows.engine.cancel("0" * 20))
    assert flows.sv.call(lambda: flows.engine.get("0" * 20)) is None
    assert flows.sv.call(flows.engine.list) == []


def test_listing_shows_instances_newest_first(flows: Flows) -> None:
    """list() returns top-level instances newest first, filtered by workflow."""
    first = flows.start("seq", {"order_id": "A-1"})
    second = flows.start("bad-output", None)
    flows.wait(first)
    flows.wait(second)
    listed = flows.sv.call(lambda: [i.id for i in flows.engine.list()])
    assert listed == [second, first]
    only = flows.sv.call(lambda: [i.id for i in flows.engine.list(workflow="seq")])
    assert only == [first]


def test_register_get_instance_and_get_instances_in_process(
    modules: Modules, start: Callable[..., SupervisorThread], marker: str, monkeypatch, tmp_path
) -> None:
    """A workflow registered in-process on a supervisor configured with none runs, and the
    seed's get_instance / get_instances find it."""
    monkeypatch.setenv("JOBVISOR_TEST_RUN", marker)
    name = modules.write(
        "from supervisor.workflows import workflow\n"
        "def hello(value, ctx):\n"
        "    return {'hello': value['who']}\n"
        "late = workflow('late').task('hi', handler=hello).build()\n"
    )
    sv = start(python_path=[str(modules.folder)], workflow_pool_size=1)
    monkeypatch.syspath_prepend(str(modules.folder))
    module = __import__(name)
    engine = sv.engine
    assert engine is not None
    sv.call(lambda: engine.register(module.late))
    instance_id = sv.call(lambda: engine.start("late", {"who": "ada"}).id)
    flows = Flows(sv, tmp_path)
    done = flows.wait(instance_id)
    assert done.status == "completed" and done.output == {"hello": "ada"}
    assert sv.call(lambda: engine.get_instance(instance_id)) is not None
    assert [i.id for i in sv.call(lambda: engine.get_instances("late"))] == [instance_id]
    assert sv.call(lambda: engine.get_instances("other")) == []
