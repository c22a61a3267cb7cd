"""The two seed examples of ``examples/workflows/`` run end to end (docs/workflows.md)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from supervisor.testing import TEST_RUN_VAR, SupervisorThread
from tests.workflows.enginehelpers import Flows

EXAMPLES = Path(__file__).parents[2] / "examples" / "workflows"


@pytest.fixture
def flows(
    start: Callable[..., SupervisorThread],
    marker: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Flows:
    """A supervisor configured with both examples, as a jobvisor.toml would name them."""
    monkeypatch.setenv(TEST_RUN_VAR, marker)
    sv = start(
        workflows=["orders:process_order", "onboarding:user_onboarding"],
        python_path=[str(EXAMPLES)],
        workflow_pool_size=2,
    )
    return Flows(sv, tmp_path)


def test_an_order_in_stock_is_fulfilled_in_parallel(flows: Flows) -> None:
    """quantity 2: validate, the choice goes to fulfill, whose output is keyed by branch."""
    done = flows.wait(flows.start("process-order", {"order_id": "A-1", "quantity": 2}))
    assert done.status == "completed", done.error
    assert list(done.steps) == ["validate", "check-inventory", "fulfill", "complete"]
    assert set(done.output) == {"shipping", "notification"}
    assert done.output["shipping"]["tracking"].startswith("TRK-")
    assert done.output["notification"] == {
        "sent": True,
        "body": "Order A-1 confirmed, total 9.00",
    }
    children = flows.sv.call(lambda: flows.engine.children(done.id))
    assert sorted(c.branch or "" for c in children) == ["notification", "shipping"]


def test_an_order_out_of_stock_is_backordered(flows: Flows) -> None:
    """quantity 500: the choice's default, backorder, then complete."""
    done = flows.wait(flows.start("process-order", {"order_id": "A-2", "quantity": 500}))
    assert done.status == "completed", done.error
    assert list(done.steps) == ["validate", "check-inventory", "backorder", "complete"]
    assert done.output == {"backorder_id": "BO-A-2", "total": 2250.0}


@pytest.mark.parametrize(("plan", "setup"), [("enterprise", "enterprise"), ("free", "standard")])
def test_onboarding_sets_up_the_account_its_plan_asks_for(
    flows: Flows, plan: str, setup: str
) -> None:
    """Each plan takes its branch of the choice; the pass step's transform sums it up."""
    user = {"email": "ada@example.com", "name": "Ada", "plan": plan}
    done = flows.wait(flows.start("user-onboarding", user))
    assert done.status == "completed", done.error
    assert done.output["setup"] == setup
    assert done.output["welcomed"] is True
    assert done.output["user_id"].startswith("user-")
    assert f"{setup}-setup" in done.steps


def test_the_definitions_list_both_examples(flows: Flows) -> None:
    """definitions() names each registered workflow with its start step and timeout."""
    found = {d["name"]: d for d in flows.sv.call(flows.engine.definitions)}
    assert set(found) == {"process-order", "user-onboarding"}
    assert found["process-order"]["start"] == "validate"
    assert found["user-onboarding"]["timeout"] == 86400


@pytest.mark.parametrize(
    ("workflow", "workflow_input", "taken"),
    [
        ("process-order", {"order_id": "H-1", "quantity": 2}, "fulfill"),
        ("process-order", {"order_id": "H-2", "quantity": 500}, "backorder"),
        ("user-onboarding", {"email": "a@example.com", "name": "A", "plan": "pro"}, None),
    ],
)
def test_the_examples_run_end_to_end_over_http(
    flows: Flows, workflow: str, workflow_input: dict[str, object], taken: str | None
) -> None:
    """Started, followed and read through the HTTP API and the client, as an app would."""
    client = flows.sv.client
    instance_id = client.start_workflow(workflow, workflow_input)
    done = client.wait_instance(instance_id, timeout=60)
    assert done["status"] == "completed", done["error"]
    if taken is not None:
        assert taken in done["steps"] and done["steps"][taken]["status"] == "completed"
    if taken == "fulfill":
        branches = done["steps"]["fulfill"]["branches"]
        assert {b["branch"] for b in branches} == {"shipping", "notification"}
        assert set(done["output"]) == {"shipping", "notification"}
    listed = [i["id"] for i in client.instances(workflow=workflow)]
    assert instance_id in listed
