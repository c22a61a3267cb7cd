"""GET /events?channel=workflow:ID streams one workflow instance's events, in the order
the in-process bus emitted them (docs/http-api.md, "Events (SSE)")."""

from __future__ import annotations

from collections.abc import Callable

from tests.supervisor.ssestream import EventStream
from tests.workflows.enginehelpers import Flows

TWO_STEPS = """
from supervisor.workflows import workflow


def first(value, ctx):
    ctx.progress(50, "half")
    return {"n": 1}


def second(value, ctx):
    return {"n": value["n"] + 1}


flows = [workflow("two").task("first", handler=first).task("second", handler=second).build()]
"""


def test_a_workflow_channel_streams_that_instance_only(flows_with: Callable[..., Flows]) -> None:
    """Only workflow.* events of the instance come, the same as the bus emitted, in order."""
    flows = flows_with(TWO_STEPS)
    sv = flows.sv
    before = sv.client.event_position()
    other = flows.start("two")
    instance_id = flows.start("two")
    flows.wait(instance_id)
    flows.wait(other)
    path = f"/events?channel=workflow:{instance_id}&last_event_id={before}"
    with EventStream(sv, path) as stream:
        got = stream.until("workflow.completed")
    assert {e.data["id"] for e in got} == {instance_id}
    assert [e.name for e in got] == flows.events(instance_id)
    assert got[0].name == "workflow.started"
    assert got[-1].data["output"] == {"n": 2}
