"""The seed's two examples, built in examples/workflows: they load from specs, and walking
their graphs with the data flow (in-process, one step after another) takes each branch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from supervisor.workflows import (
    ChoiceStep,
    EndStep,
    ParallelStep,
    PassStep,
    StepInputError,
    TaskStep,
    Workflow,
    registry,
)
from supervisor.workflows.dataflow import (
    NO_PREV,
    StepContext,
    call_handler,
    choose,
    pass_output,
    task_input,
    task_output,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "workflows"


def walk(flow: Workflow, workflow_input: Any, prev: Any = NO_PREV) -> tuple[Any, list[str]]:
    """A test's stand-in for the engine: run each step in-process; return (output, path).

    Parallel branches run one after the other, each starting from the parallel step's prev.
    """
    steps: dict[str, Any] = {}
    path: list[str] = []
    name: str | None = flow.start
    while name is not None:
        step = flow.step(name)
        path.append(name)
        ctx = StepContext(
            input=workflow_input,
            steps=dict(steps),
            prev=None if prev is NO_PREV else prev,
            instance={"id": "test", "workflow": flow.qualname},
            first=prev is NO_PREV,
        )
        if isinstance(step, ChoiceStep):
            name = choose(step, ctx)
            continue  # a choice hands prev through
        if isinstance(step, TaskStep):
            value = task_input(step, prev, workflow_input)
            output = task_output(step, call_handler(step, value, ctx))
        elif isinstance(step, ParallelStep):
            start = workflow_input if prev is NO_PREV else prev
            output = {b.name: walk(b, workflow_input, start)[0] for b in step.branches}
        elif isinstance(step, PassStep):
            output = pass_output(step, ctx)
        else:
            assert isinstance(step, EndStep)
            return (None if prev is NO_PREV else prev), path
        steps[name] = prev = output
        name = flow.next_of(name)
    return prev, path


@pytest.fixture
def examples() -> dict[str, Workflow]:
    """Both examples, loaded the way jobvisor.toml names them."""
    return registry.load(
        ["orders:process_order", "onboarding:user_onboarding"], python_path=[EXAMPLES]
    )


def test_both_examples_load_from_specs(examples):
    """The examples register under the seed's names, with the seed's timeouts and retries."""
    assert sorted(examples) == ["process-order", "user-onboarding"]
    orders, onboarding = examples["process-order"], examples["user-onboarding"]
    assert orders.timeout == 3600 and orders.retry_of("validate").max_attempts == 3
    assert onboarding.timeout == 86400 and onboarding.retry_of("create-account").max_attempts == 3
    assert orders.module == "orders" and onboarding.module == "onboarding"


def test_an_order_in_stock_is_fulfilled_by_both_branches(examples):
    """In stock: the choice goes to fulfil, whose output is keyed by branch."""
    output, path = walk(examples["process-order"], {"order_id": "A-1", "quantity": 2})
    assert path == ["validate", "check-inventory", "fulfill", "complete"]
    assert set(output) == {"shipping", "notification"}
    assert output["shipping"]["tracking"].startswith("TRK-")
    assert output["notification"] == {"sent": True, "body": "Order A-1 confirmed, total 9.00"}


def test_an_order_out_of_stock_is_backordered(examples):
    """Out of stock: the choice's default goes to backorder."""
    output, path = walk(examples["process-order"], {"order_id": "A-2", "quantity": 500})
    assert path == ["validate", "check-inventory", "backorder", "complete"]
    assert output == {"backorder_id": "BO-A-2", "total": 2250.0}


def test_an_invalid_order_fails_its_first_step_naming_the_field(examples):
    """The first step's model validates the workflow input."""
    with pytest.raises(
        StepInputError, match=r"process-order/validate: input.order_id: Field required"
    ):
        walk(examples["process-order"], {"quantity": 1})


@pytest.mark.parametrize(
    ("plan", "setup_step", "setup"),
    [("enterprise", "enterprise-setup", "enterprise"), ("free", "standard-setup", "standard")],
)
def test_onboarding_takes_the_setup_of_the_plan(examples, plan, setup_step, setup):
    """The plan decides the setup step; the pass transform summarises the run."""
    user = {"email": "ada@example.com", "name": "Ada", "plan": plan}
    output, path = walk(examples["user-onboarding"], user)
    assert path == ["create-account", "send-welcome-email", "check-plan", setup_step, "complete"]
    assert output["setup"] == setup and output["welcomed"] is True
    assert output["user_id"].startswith("user-")


def test_onboarding_refuses_a_bad_email_and_plan(examples):
    """The first step's model names each failing field of the workflow input."""
    with pytest.raises(StepInputError) as caught:
        walk(examples["user-onboarding"], {"email": "nope", "name": "Ada", "plan": "gold"})
    assert "input.email: String should match pattern" in str(caught.value)
    assert "input.plan: Input should be 'free', 'pro' or 'enterprise'" in str(caught.value)
