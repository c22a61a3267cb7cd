"""The data flow inside a step worker: inputs, outputs, handlers, choices and pass steps."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

import pytest
from pydantic import BaseModel

from supervisor.workflows import (
    NoChoiceMatched,
    StepInputError,
    StepOutputError,
    TaskStep,
    workflow,
)
from supervisor.workflows.dataflow import (
    NO_PREV,
    StepContext,
    call_handler,
    choose,
    job_input,
    job_output,
    pass_output,
    task_input,
    task_output,
)


class Order(BaseModel):
    order_id: str
    total: float = 0.0


class Receipt(BaseModel):
    ok: bool
    at: datetime.date


def echo(input: Any, ctx: Any) -> Any:
    return input


def task(**options: Any) -> TaskStep:
    """A built task step (second in its workflow, so a mapper is allowed)."""
    if "job" not in options:
        options.setdefault("handler", echo)
    built = workflow("flow").pass_("before").task("step", **options).build()
    step = built.step("step")
    assert isinstance(step, TaskStep)
    return step


def test_a_model_validates_the_workflow_input_at_the_first_step():
    """At the first step (NO_PREV) the model validates the workflow input; the handler gets the model."""
    value = task_input(task(input_schema=Order), NO_PREV, {"order_id": "A1", "total": "2.5"})
    assert value == Order(order_id="A1", total=2.5)


def test_a_model_validates_prev_at_a_later_step():
    """After the first step the model validates prev, not the workflow input."""
    value = task_input(task(input_schema=Order), {"order_id": "P"}, {"order_id": "W"})
    assert value.order_id == "P"


def test_a_mapper_builds_the_input_from_prev_and_the_workflow_input():
    """A mapper gets (prev, workflow_input); a one-argument mapper gets prev."""
    two = task(input_schema=lambda prev, wf: {"total": prev["total"], "id": wf["id"]})
    assert task_input(two, {"total": 3}, {"id": "x"}) == {"total": 3, "id": "x"}
    one = task(input_schema=lambda prev: prev["total"] * 2)
    assert task_input(one, {"total": 3}, None) == 6


def test_a_mapper_at_a_first_step_is_an_input_error():
    """A mapper given NO_PREV fails naming the step (build refuses this for workflows)."""
    with pytest.raises(StepInputError, match=r"^flow/step: the input mapper needs prev"):
        task_input(task(input_schema=lambda prev: prev), NO_PREV, {})


def test_without_a_schema_the_handler_gets_prev_or_at_first_the_workflow_input():
    """No schema: the input is prev, and at the first step the workflow input."""
    assert task_input(task(), {"p": 1}, {"w": 1}) == {"p": 1}
    assert task_input(task(), NO_PREV, {"w": 1}) == {"w": 1}
    assert task_input(task(), None, {"w": 1}) is None  # a previous step that output None


def test_an_input_validation_error_names_the_step_and_the_fields():
    """A failing input names the workflow, the step and each field, with the bad value."""
    with pytest.raises(StepInputError) as caught:
        task_input(task(input_schema=Order), NO_PREV, {"total": "lots"})
    message = str(caught.value)
    assert message.startswith("flow/step: input.order_id: Field required; ")
    assert "input.total: Input should be a valid number" in message
    assert "(got 'lots')" in message
    assert caught.value.workflow == "flow" and caught.value.step == "step"


def test_an_input_that_is_not_an_object_names_the_input():
    """A workflow input of the wrong shape is reported against input itself."""
    with pytest.raises(
        StepInputError, match=r"^flow/step: input: Input should be a valid dictionary"
    ):
        task_input(task(input_schema=Order), NO_PREV, [1, 2])


def test_the_output_schema_validates_and_the_output_is_plain_json():
    """output_schema validates the handler's value; models and dates become JSON data."""
    step = task(output_schema=Receipt)
    assert task_output(step, {"ok": 1, "at": "2026-01-02"}) == {"ok": True, "at": "2026-01-02"}
    assert task_output(task(), Order(order_id="x")) == {"order_id": "x", "total": 0.0}
    assert task_output(task(), {"when": datetime.date(2026, 1, 2)}) == {"when": "2026-01-02"}


def test_an_output_validation_error_names_the_field():
    """A failing output names the step and the field."""
    with pytest.raises(StepOutputError, match=r"^flow/step: output\.at: Field required"):
        task_output(task(output_schema=Receipt), {"ok": True})


def test_an_output_that_is_not_json_data_is_an_output_error():
    """A value pydantic cannot turn into JSON data fails naming the step and its type."""
    with pytest.raises(StepOutputError, match=r"^flow/step: object value is not JSON-able data"):
        task_output(task(), object())


def test_a_sync_handler_gets_input_and_ctx():
    """A sync handler is called with (input, ctx) and its return value is the result."""
    ctx = StepContext(input={"w": 1})
    step = task(handler=lambda value, c: (value, c.input))
    assert call_handler(step, 5, ctx) == (5, {"w": 1})


def test_an_async_handler_runs_to_completion():
    """A coroutine function runs in its own event loop."""

    async def handler(value: int, ctx: StepContext) -> int:
        await asyncio.sleep(0)
        ctx.progress(50, "half")
        return value + 1

    seen: list[tuple[float, str | None]] = []
    ctx = StepContext(on_progress=lambda pct, msg: seen.append((pct, msg)))
    assert call_handler(task(handler=handler), 1, ctx) == 2
    assert seen == [(50, "half")]


def test_a_handler_returning_an_awaitable_is_awaited():
    """A sync function that returns an awaitable has its result awaited."""

    async def later() -> str:
        return "done"

    assert call_handler(task(handler=lambda value, ctx: later()), None, StepContext()) == "done"


def test_a_handler_exception_propagates_unchanged():
    """User exceptions keep their class, for retry_on."""

    def fails(value: Any, ctx: Any) -> None:
        raise ConnectionError("down")

    with pytest.raises(ConnectionError, match="down"):
        call_handler(task(handler=fails), None, StepContext())


def test_the_context_reads_a_step_job_context():
    """from_context fills the ctx; a missing prev marks the first step."""
    ctx = StepContext.from_context({"input": 1, "steps": {"a": {"x": 2}}, "prev": None})
    assert (ctx.input, ctx.prev, ctx.first) == (1, None, False)
    assert ctx.get_step_result("a") == {"x": 2} and ctx.get_step_result("zz") is None
    first = StepContext.from_context({"input": 1, "instance": {"id": "i1"}})
    assert first.first and first.prev is None and first.instance == {"id": "i1"}
    assert first.prev_or_first is NO_PREV


CHOICE = (
    workflow("flow")
    .choice(
        "route",
        choices=[
            {"condition": lambda ctx: ctx.prev["n"] > 10, "next": "big"},
            {"condition": lambda ctx: ctx.prev["n"] > 5, "next": "medium"},
        ],
        default="small",
    )
    .pass_("big", end=True)
    .pass_("medium", end=True)
    .pass_("small", end=True)
    .build()
)


@pytest.mark.parametrize(("n", "target"), [(20, "big"), (7, "medium"), (1, "small")])
def test_choose_takes_the_first_true_condition_else_the_default(n, target):
    """Conditions are tried in order; the first truthy one wins, else the default."""
    assert choose(CHOICE.step("route"), StepContext(prev={"n": n})) == target  # type: ignore[arg-type]


def test_choose_without_a_match_or_default_names_the_step():
    """No true condition and no default raise NoChoiceMatched naming the step."""
    built = (
        workflow("flow")
        .choice("route", choices=[{"condition": lambda ctx: False, "next": "x"}])
        .pass_("x")
        .build()
    )
    with pytest.raises(NoChoiceMatched, match=r"^flow/route: none of its 1 conditions held"):
        choose(built.step("route"), StepContext())  # type: ignore[arg-type]


def test_an_async_condition_is_awaited():
    """A coroutine condition counts by its awaited value."""

    async def no(ctx: Any) -> bool:
        return False

    built = (
        workflow("flow")
        .choice("route", choices=[{"condition": no, "next": "x"}], default="y")
        .pass_("x", end=True)
        .pass_("y")
        .build()
    )
    assert choose(built.step("route"), StepContext()) == "y"  # type: ignore[arg-type]


def pass_step(**options: Any) -> Any:
    return workflow("flow").pass_("p", **options).build().step("p")


def test_pass_with_a_transform_outputs_its_value():
    """A transform's value is the output, as plain data."""
    step = pass_step(transform=lambda ctx: {"sum": ctx.prev["a"] + ctx.input["b"]})
    assert pass_output(step, StepContext(input={"b": 2}, prev={"a": 1})) == {"sum": 3}


@pytest.mark.parametrize("result", [{"static": True}, None, 0])
def test_pass_with_a_result_outputs_it_even_when_it_is_none(result):
    """A given result is the output, result=None included."""
    assert pass_output(pass_step(result=result), StepContext(prev={"a": 1})) == result


def test_pass_without_either_hands_prev_through():
    """Without transform or result the output is prev, or at a first step the workflow input."""
    assert pass_output(pass_step(), StepContext(prev={"a": 1})) == {"a": 1}
    assert pass_output(pass_step(), StepContext(input={"w": 1}, first=True)) == {"w": 1}


def test_a_legacy_job_task_maps_its_payload_and_result():
    """job tasks: input(ctx) makes the payload, output(result, ctx) the output, then validated."""
    step = task(
        job="resize",
        input=lambda ctx: {"image": ctx.input["image"]},
        output=lambda result, ctx: {"ok": result["code"] == 0, "at": "2026-01-02"},
        output_schema=Receipt,
    )
    ctx = StepContext(input={"image": "a.png"}, prev={})
    assert job_input(step, ctx) == {"image": "a.png"}
    assert job_output(step, {"code": 0}, ctx) == {"ok": True, "at": "2026-01-02"}
    bare = task(job="resize")
    assert job_input(bare, StepContext(prev={"p": 1})) == {"p": 1}
    assert job_output(bare, {"r": 1}, ctx) == {"r": 1}
