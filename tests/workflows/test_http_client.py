"""``supervisor.client.Client``'s workflow methods against a real in-process supervisor.

The engine is the stand-in of ``httpstandin``; end-to-end tests with the real engine
live with the engine.
"""

from __future__ import annotations

import pytest

from supervisor.client import Client, ClientError
from supervisor.workflows.records import InstanceStatus, StepState, StepStatus
from tests.workflows.httpstandin import StandIn, without_engine


@pytest.fixture
def sv(start):
    sv = start()
    sv.sup.workflows = StandIn()
    return sv


@pytest.fixture
def engine(sv) -> StandIn:
    return sv.sup.workflows


@pytest.fixture
def client(sv) -> Client:
    return sv.client


def test_workflows_lists_the_definitions(client):
    """``workflows()`` returns each definition with its steps."""
    names = {flow["name"]: [s["name"] for s in flow["steps"]] for flow in client.workflows()}
    assert names["order"] == ["validate", "charge", "ship"]


def test_start_then_wait_follows_the_instance_to_its_output(client, engine):
    """``start_workflow`` returns the id; ``wait_instance`` polls until it is finished."""
    instance_id = client.start_workflow("order", {"sku": "A-1"})
    assert engine.instances[instance_id].input == {"sku": "A-1"}
    done = client.wait_instance(instance_id, 10, interval=0.01)
    assert done["status"] == "completed"
    assert done["output"] == {"shipped": {"sku": "A-1"}}
    assert [(n, s["status"]) for n, s in done["steps"].items()] == [
        ("validate", "completed"),
        ("charge", "completed"),
        ("ship", "completed"),
    ]


def test_start_without_input_gets_the_default(client, engine):
    """Without ``input`` the server's default ({}) applies, as over HTTP."""
    instance_id = client.start_workflow("order")
    assert engine.instances[instance_id].input == {}


def test_wait_instance_gives_up_after_its_timeout(client):
    """An instance that does not finish in time raises TimeoutError naming it."""
    instance_id = client.start_workflow("stuck")
    with pytest.raises(TimeoutError, match=f"'stuck' instance {instance_id} still running"):
        client.wait_instance(instance_id, 0.2, interval=0.02)


def test_instance_and_instances(client, engine):
    """``instance(id)`` shows one; ``instances(workflow, status)`` filters the listing."""
    a = engine.record("other")
    b = engine.record("other", status=InstanceStatus.FAILED)
    parent = engine.record("fan")
    child = engine.record("fan", parent_id=parent.id, branch="left")
    parent.steps["split"] = StepState(StepStatus.RUNNING, children=[child.id])
    assert client.instance(a.id)["status"] == "running"
    assert client.instance(parent.id)["steps"]["split"]["branches"][0]["id"] == child.id
    assert [i["id"] for i in client.instances()] == [parent.id, b.id, a.id]
    assert [i["id"] for i in client.instances("other")] == [b.id, a.id]
    assert [i["id"] for i in client.instances(status="failed")] == [b.id]
    assert [i["id"] for i in client.instances(limit=1, offset=1)] == [b.id]


def test_cancel_and_resume(client, engine):
    """``cancel_instance`` and ``resume_instance`` return the instance as it now is."""
    instance = engine.record("other")
    cancelled = client.cancel_instance(instance.id, "not needed")
    assert cancelled["status"] == "cancelled"
    assert cancelled["error"]["message"] == "not needed"
    assert client.resume_instance(instance.id)["status"] == "running"


@pytest.mark.parametrize(
    ("call", "status", "code"),
    [
        (lambda c: c.start_workflow("nope", 1), 404, "unknown_workflow"),
        (lambda c: c.instance("0123456789abcdef0123"), 404, "instance_not_found"),
        (lambda c: c.instances(status="done"), 400, "bad_request"),
        (lambda c: c.cancel_instance("0123456789abcdef0123"), 404, "instance_not_found"),
        (lambda c: c.resume_instance("0123456789abcdef0123"), 404, "instance_not_found"),
    ],
)
def test_errors_come_back_as_client_errors_with_the_code(client, call, status, code):
    """A refused request raises ClientError carrying the API's status and code."""
    with pytest.raises(ClientError) as caught:
        call(client)
    assert (caught.value.status, caught.value.code) == (status, code)


def test_conflicts_are_409_client_errors(client, engine):
    """Cancelling a finished instance, or resuming a running one, is a 409."""
    done = engine.record("other", status=InstanceStatus.COMPLETED)
    running = engine.record("other")
    with pytest.raises(ClientError) as finished:
        client.cancel_instance(done.id)
    with pytest.raises(ClientError) as not_resumable:
        client.resume_instance(running.id)
    assert (finished.value.status, finished.value.code) == (409, "instance_finished")
    assert (not_resumable.value.status, not_resumable.value.code) == (
        409,
        "instance_not_resumable",
    )


def test_without_an_engine_the_client_gets_workflows_disabled(start):
    """``Supervisor.workflows is None``: the client's calls fail with workflows_disabled."""
    client = without_engine(start()).client
    with pytest.raises(ClientError) as caught:
        client.workflows()
    assert (caught.value.status, caught.value.code) == (404, "workflows_disabled")
