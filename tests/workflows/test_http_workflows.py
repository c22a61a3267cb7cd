"""The workflow routes of the HTTP API through a real in-process supervisor and real HTTP.

The engine behind ``Supervisor.workflows`` is the stand-in of ``httpstandin`` (real
``InstanceRecord``s, the engine's errors); end-to-end tests with the real engine live
with the engine.
"""

from __future__ import annotations

import json

import pytest

from supervisor.workflows.records import InstanceStatus, StepState, StepStatus
from tests.supervisor.rawhttp import request
from tests.workflows.httpstandin import T0, StandIn, without_engine

ROUTES = [
    ("GET", "/workflows"),
    ("POST", "/workflows/order/instances"),
    ("GET", "/workflows/instances"),
    ("GET", "/workflows/instances/0123456789abcdef0123"),
    ("POST", "/workflows/instances/0123456789abcdef0123/cancel"),
    ("POST", "/workflows/instances/0123456789abcdef0123/resume"),
]


@pytest.fixture
def sv(start):
    sv = start()
    sv.sup.workflows = StandIn()
    return sv


@pytest.fixture
def engine(sv) -> StandIn:
    return sv.sup.workflows


def post(sv, path, body=None, **options):
    raw = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    return request(sv, "POST", path, raw, **options)


def error_of(reply):
    return reply.json()["error"]


# --- the routes -------------------------------------------------------------------------


def test_definitions_list_every_workflow_with_its_step_graph(sv):
    """GET /workflows shows each registered workflow with its steps and their successors."""
    reply = request(sv, "GET", "/workflows")
    assert reply.status == 200
    flows = {flow["name"]: flow for flow in reply.json()["workflows"]}
    assert set(flows) == {"order", "broken", "stuck"}
    order = flows["order"]
    assert order["start"] == "validate"
    assert [(s["name"], s["kind"], s["next"]) for s in order["steps"]] == [
        ("validate", "task", "charge"),
        ("charge", "task", "ship"),
        ("ship", "task", None),
    ]


def test_start_answers_201_with_the_id_location_and_instance(sv, engine):
    """POST /workflows/{name}/instances starts one; the answer names it and shows it."""
    reply = post(sv, "/workflows/order/instances", {"input": {"sku": "A-1", "qty": 2}})
    assert reply.status == 201, reply.body
    body = reply.json()
    instance_id = body["id"]
    assert reply.headers["location"] == f"/workflows/instances/{instance_id}"
    shown = body["instance"]
    assert shown["id"] == instance_id
    assert shown["workflow"] == "order"
    assert shown["status"] == "pending"
    assert shown["input"] == {"sku": "A-1", "qty": 2}
    assert engine.instances[instance_id].input == {"sku": "A-1", "qty": 2}


def test_start_without_input_gives_the_default_empty_map(sv, engine):
    """An omitted input is {} (as a job's data), and {} as a whole body is enough."""
    reply = post(sv, "/workflows/order/instances", {})
    assert reply.status == 201
    assert engine.instances[reply.json()["id"]].input == {}


def test_start_of_an_unknown_workflow_is_a_404(sv):
    """The engine's UnknownWorkflow comes back as 404 unknown_workflow naming it."""
    reply = post(sv, "/workflows/nope/instances", {"input": 1})
    assert reply.status == 404
    assert error_of(reply)["code"] == "unknown_workflow"
    assert "'nope'" in error_of(reply)["message"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"", "needs a JSON body"),
        (b"{not json", "invalid JSON body"),
        (b'{"input": {"x": [1, NaN]}}', "input.x[1]: NaN is not a finite number"),
        (b'{"input": 1e400}', "input: 1e400 is not a finite number"),
        (b'{"input": 1, "priority": 3}', "priority: Extra inputs are not permitted"),
        (b"[1, 2]", "invalid start of workflow 'order'"),
        (b'{"input": ' + b"[" * 70 + b"]" * 70 + b"}", "input nests deeper than 64"),
    ],
)
def test_a_bad_start_body_is_a_400_saying_why(sv, engine, body, words):
    """Bodies are checked as the jobs' are: JSON, no NaN, no unknown field, depth limit."""
    reply = post(sv, "/workflows/order/instances", body)
    assert reply.status == 400, reply.body
    assert error_of(reply)["code"] == "bad_request"
    assert words in error_of(reply)["message"]
    assert "start" not in engine.calls


def test_get_shows_the_instance_with_its_steps_and_times(sv, engine):
    """GET /workflows/instances/{id} renders every documented field, times in ISO 8601 UTC."""
    instance = engine.record(
        "other",
        input={"n": 1},
        current_step="b",
        started_at=T0 + 1,
        steps={
            "a": StepState(
                StepStatus.COMPLETED,
                input={"n": 1},
                output=b"\x00\x01",
                attempts=2,
                job_id="f" * 20,
                started_at=T0 + 1,
                finished_at=T0 + 2.5,
            ),
            "b": StepState(StepStatus.WAITING_RETRY, attempts=1, retry_at=T0 + 9),
        },
    )
    reply = request(sv, "GET", f"/workflows/instances/{instance.id}")
    assert reply.status == 200
    shown = reply.json()
    assert {
        key: shown[key]
        for key in ("workflow", "status", "current_step", "input", "output", "error")
    } == {
        "workflow": "other",
        "status": "running",
        "current_step": "b",
        "input": {"n": 1},
        "output": None,
        "error": None,
    }
    assert shown["parent_id"] is None and shown["branch"] is None
    assert shown["created_at"] == "2026-09-21T14:13:21.000Z"
    assert shown["started_at"] == "2026-09-21T14:13:21.000Z"
    assert shown["finished_at"] is None
    assert list(shown["steps"]) == ["a", "b"]
    a = shown["steps"]["a"]
    assert a["status"] == "completed"
    assert a["output"] == {"$base64": "AAE="}
    assert a["attempts"] == 2 and a["job_id"] == "f" * 20
    assert a["finished_at"] == "2026-09-21T14:13:22.500Z"
    assert shown["steps"]["b"]["status"] == "waiting_retry"
    assert shown["steps"]["b"]["retry_at"] == "2026-09-21T14:13:29.000Z"
    assert "render_error" not in shown


def test_get_shows_a_parallel_steps_branches(sv, engine):
    """A parallel step lists its children's ids and, on GET of one instance, the branches."""
    parent = engine.record("fan", current_step="fan-out")
    first = engine.record(
        "fan", parent_id=parent.id, branch="left", status=InstanceStatus.COMPLETED, output=1
    )
    second = engine.record(
        "fan",
        parent_id=parent.id,
        branch="right",
        steps={"r1": StepState(StepStatus.RUNNING, attempts=1)},
        current_step="r1",
    )
    parent.steps["fan-out"] = StepState(StepStatus.RUNNING, children=[first.id, second.id])
    shown = request(sv, "GET", f"/workflows/instances/{parent.id}").json()
    step = shown["steps"]["fan-out"]
    assert step["children"] == [first.id, second.id]
    branches = step["branches"]
    assert [(b["id"], b["branch"], b["status"]) for b in branches] == [
        (first.id, "left", "completed"),
        (second.id, "right", "running"),
    ]
    assert branches[0]["parent_id"] == parent.id
    assert branches[1]["steps"]["r1"]["status"] == "running"
    listed = request(sv, "GET", "/workflows/instances?workflow=fan").json()["instances"]
    assert [i["id"] for i in listed] == [parent.id]  # top-level only; branches as ids there
    assert "branches" not in listed[0]["steps"]["fan-out"]
    child = request(sv, "GET", f"/workflows/instances/{second.id}").json()
    assert child["parent_id"] == parent.id and child["branch"] == "right"


def test_an_unknown_instance_is_a_404(sv):
    """GET, cancel and resume of an id nobody has answer 404 instance_not_found."""
    missing = "/workflows/instances/0123456789abcdef0123"
    for reply in (
        request(sv, "GET", missing),
        post(sv, missing + "/cancel"),
        post(sv, missing + "/resume"),
    ):
        assert reply.status == 404
        assert error_of(reply)["code"] == "instance_not_found"
        assert "0123456789abcdef0123" in error_of(reply)["message"]


def test_list_filters_by_workflow_and_status_newest_first(sv, engine):
    """GET /workflows/instances takes workflow, status, limit and offset."""
    a = engine.record("order")
    b = engine.record("order", status=InstanceStatus.FAILED)
    c = engine.record("broken")

    def ids(query):
        reply = request(sv, "GET", f"/workflows/instances{query}")
        assert reply.status == 200, reply.body
        return [i["id"] for i in reply.json()["instances"]]

    assert ids("") == [c.id, b.id, a.id]
    assert ids("?workflow=order") == [b.id, a.id]
    assert ids("?status=failed") == [b.id]
    assert ids("?workflow=order&status=running") == [a.id]
    assert ids("?limit=1&offset=1") == [b.id]
    assert ids("?workflow=&status=") == [c.id, b.id, a.id]  # empty means no filter


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("?status=done", "unknown instance status 'done'"),
        ("?limit=0", "limit must be from 1 to 1000"),
        ("?limit=ten", "limit must be an integer"),
        ("?offset=-1", "offset must be from 0"),
        ("?workflw=order", "unknown query parameter 'workflw'"),
    ],
)
def test_bad_list_parameters_are_a_400(sv, query, words):
    """A bad or unknown query parameter of the listing is refused, named."""
    reply = request(sv, "GET", f"/workflows/instances{query}")
    assert reply.status == 400
    assert words in error_of(reply)["message"]


@pytest.mark.parametrize(
    "path",
    ["/workflows?verbose=1", "/workflows/instances/0123456789abcdef0123?children=1"],
)
def test_unknown_parameters_are_refused_on_every_route(sv, path):
    """Routes without parameters accept none (but token)."""
    reply = request(sv, "GET", path)
    assert reply.status == 400
    assert "unknown query parameter" in error_of(reply)["message"]


def test_cancel_then_cancel_again_is_a_409(sv, engine):
    """Cancel answers the cancelled instance with the reason; a finished one is a 409."""
    instance = engine.record("order")
    path = f"/workflows/instances/{instance.id}/cancel"
    reply = post(sv, path, {"reason": "customer called"})
    assert reply.status == 200
    assert reply.json()["status"] == "cancelled"
    assert reply.json()["error"] == {"message": "customer called", "reason": "cancelled"}
    again = post(sv, path)
    assert again.status == 409
    assert error_of(again)["code"] == "instance_finished"


def test_cancel_without_a_body_gives_the_default_reason(sv, engine):
    """An empty cancel body is fine; its reason says it came over HTTP."""
    instance = engine.record("order")
    reply = post(sv, f"/workflows/instances/{instance.id}/cancel")
    assert reply.status == 200
    assert reply.json()["error"]["message"] == "cancelled via the HTTP API"


@pytest.mark.parametrize(
    ("action", "body", "words"),
    [
        ("cancel", b'{"reason": 3}', "reason: Input should be a valid string"),
        ("cancel", b'{"why": "x"}', "why: Extra inputs are not permitted"),
        ("resume", b'{"from": "charge"}', "from: Extra inputs are not permitted"),
        ("resume", b"{oops", "invalid JSON body"),
    ],
)
def test_bad_cancel_and_resume_bodies_are_a_400(sv, engine, action, body, words):
    """Cancel takes only a reason and resume nothing: anything else is refused, unchanged."""
    instance = engine.record("order", status=InstanceStatus.FAILED)
    reply = post(sv, f"/workflows/instances/{instance.id}/{action}", body)
    assert reply.status == 400
    assert words in error_of(reply)["message"]
    assert instance.status is InstanceStatus.FAILED


def test_resume_of_a_failed_instance_runs_it_again(sv, engine):
    """Resume answers the instance running again; a completed one is a 409."""
    failed = engine.record("order", status=InstanceStatus.FAILED, error={"message": "x"})
    reply = post(sv, f"/workflows/instances/{failed.id}/resume", {})
    assert reply.status == 200
    assert reply.json()["status"] == "running" and reply.json()["error"] is None
    done = engine.record("order", status=InstanceStatus.COMPLETED)
    refused = post(sv, f"/workflows/instances/{done.id}/resume")
    assert refused.status == 409
    assert error_of(refused)["code"] == "instance_not_resumable"


def test_a_workflow_named_instances_is_still_started(sv, engine):
    """POST /workflows/instances/instances matches an instance route too, but only the
    start route takes POST there."""
    reply = post(sv, "/workflows/instances/instances", {"input": 1})
    assert reply.status == 404
    assert error_of(reply)["code"] == "unknown_workflow"  # the engine was asked to start it
    assert engine.calls == ["start"]


# --- HEAD, methods, auth ----------------------------------------------------------------


def test_head_answers_like_get_on_every_get_route(sv, engine):
    """HEAD gets the GET's status and headers without a body, 404s included."""
    instance = engine.record("other")
    for path in ("/workflows", "/workflows/instances", f"/workflows/instances/{instance.id}"):
        got, head = request(sv, "GET", path), request(sv, "HEAD", path)
        assert head.status == got.status == 200
        assert head.body == b""
        assert head.headers["content-length"] == got.headers["content-length"]
    assert request(sv, "HEAD", "/workflows/instances/0123456789abcdef0123").status == 404


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("POST", "/workflows", "GET, HEAD"),
        ("DELETE", "/workflows/instances", "GET, HEAD"),
        ("GET", "/workflows/order/instances", "POST"),
        ("DELETE", "/workflows/instances/0123456789abcdef0123", "GET, HEAD"),
        ("GET", "/workflows/instances/0123456789abcdef0123/cancel", "POST"),
        ("PUT", "/workflows/instances/0123456789abcdef0123/resume", "POST"),
    ],
)
def test_a_wrong_method_is_a_405_with_allow(sv, method, path, allowed):
    """Each workflow route names its methods in Allow."""
    reply = request(sv, method, path)
    assert reply.status == 405
    assert reply.headers["allow"] == allowed


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_needs_the_token(sv, engine, method, path):
    """Without the bearer token (or with a wrong one) every workflow route is a 401."""
    for reply in (
        request(sv, method, path, b"{}" if method == "POST" else None, auth=False),
        request(sv, method, path, b"{}" if method == "POST" else None, token="wrong"),
    ):
        assert reply.status == 401
        assert error_of(reply)["code"] == "unauthorized"
    assert engine.calls == []


def test_a_get_accepts_the_token_in_the_query_but_a_post_does_not(sv, engine):
    """``?token=`` authorizes reads only, as on the job routes."""
    token = sv.client.token
    assert request(sv, "GET", f"/workflows/instances?token={token}", auth=False).status == 200
    reply = request(sv, "POST", f"/workflows/order/instances?token={token}", b"{}", auth=False)
    assert reply.status == 401
    assert "start" not in engine.calls


def test_the_index_lists_the_workflow_routes(sv):
    """GET / names the workflow routes among the others."""
    routes = request(sv, "GET", "/").json()["routes"]
    for method, path in [
        ("GET", "/workflows"),
        ("POST", "/workflows/{name}/instances"),
        ("GET", "/workflows/instances"),
        ("GET", "/workflows/instances/{instance_id}"),
        ("POST", "/workflows/instances/{instance_id}/cancel"),
        ("POST", "/workflows/instances/{instance_id}/resume"),
    ]:
        assert f"{method} {path}" in routes


# --- without an engine, and rows that cannot be shown ------------------------------------


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_without_an_engine_every_route_is_a_404_workflows_disabled(start, method, path):
    """``Supervisor.workflows is None``: each workflow route says workflows are off."""
    sv = without_engine(start())
    reply = request(sv, method, path, b"{}" if method == "POST" else None)
    assert reply.status == 404
    assert error_of(reply)["code"] == "workflows_disabled"
    assert "not enabled" in error_of(reply)["message"]


def test_a_row_that_cannot_be_rendered_never_breaks_a_listing(sv, engine, caplog):
    """Fields that cannot be shown are null and named in render_error; the rest still show."""
    good = engine.record("other")
    deep = json.loads("[" * 80 + "]" * 80)  # past the depth limit: a row from elsewhere
    bad = engine.record(
        "other",
        output=deep,
        finished_at=1e20,
        steps={"a": StepState(StepStatus.COMPLETED, output=deep)},
    )
    reply = request(sv, "GET", "/workflows/instances")
    assert reply.status == 200
    shown = {i["id"]: i for i in reply.json()["instances"]}
    assert "render_error" not in shown[good.id]
    broken = shown[bad.id]
    assert broken["output"] is None and broken["finished_at"] is None
    assert broken["steps"]["a"]["output"] is None and broken["steps"]["a"]["status"] == "completed"
    for field in ("output", "finished_at", "steps.a.output"):
        assert f"{field}:" in broken["render_error"]
    one = request(sv, "GET", f"/workflows/instances/{bad.id}")
    assert one.status == 200 and "render_error" in one.json()
    assert any(bad.id in record.getMessage() for record in caplog.records)


def test_a_steps_map_that_is_not_a_map_is_named_not_a_500(sv, engine):
    """Even a ``steps`` a custom store got wrong renders as null with a render_error."""
    bad = engine.record("other", steps=["not", "a", "map"])
    reply = request(sv, "GET", f"/workflows/instances/{bad.id}")
    assert reply.status == 200
    assert reply.json()["steps"] is None
    assert "steps:" in reply.json()["render_error"]
