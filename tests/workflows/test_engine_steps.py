"""Choice, pass and legacy job= steps driven by the engine (docs/workflows.md, "Data flow")."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.workflows.enginehelpers import Flows

STEPS = """
from supervisor.workflows import workflow


def big(value, ctx):
    count("big")
    return {"size": "big", "n": value["n"]}


def small(value, ctx):
    count("small")
    return {"size": "small", "n": value["n"]}


flows = [
    workflow("route")
    .choice("size", choices=[{"condition": lambda ctx: ctx.input["n"] > 10, "next": "big"}],
            default="small")
    .task("big", handler=big, end=True)
    .task("small", handler=small)
    .build(),
    workflow("strict")
    .choice("size", choices=[{"condition": lambda ctx: ctx.input["n"] > 10, "next": "big"}])
    .task("big", handler=big)
    .build(),
    workflow("passes")
    .task("big", handler=big)
    .pass_("shape", transform=lambda ctx: {"doubled": ctx.prev["n"] * 2, "in": ctx.input["n"]})
    .pass_("fixed", result={"constant": True})
    .pass_("through")
    .build(),
    workflow("spin").pass_("a", next="b").pass_("b", next="a").build(),
    workflow("legacy")
    .task("plain", job="double")
    .task("mapped", job="double", input=lambda ctx: {"n": ctx.prev["doubled"] + ctx.input["n"]},
          output=lambda result, ctx: {"value": result["doubled"]})
    .build(),
]
"""

DOUBLE = """
from jobvisor_worker import run_job


def handle(job):
    return {"doubled": job.data["n"] * 2}


run_job(handle)
"""


@pytest.fixture
def flows(flows_with: Callable[..., Flows], tmp_path: Path) -> Flows:
    """A supervisor with the STEPS workflows and a ``double`` job kind."""
    worker = tmp_path / "double.py"
    worker.write_text(textwrap.dedent(DOUBLE))
    jobs = {"double": {"command": sys.executable, "args": [str(worker)], "max_attempts": 3}}
    return flows_with(STEPS, jobs=jobs)


@pytest.mark.parametrize(("n", "taken"), [(50, "big"), (2, "small")])
def test_a_choice_takes_its_matching_step_or_its_default(flows: Flows, n: int, taken: str) -> None:
    """The choice's condition picks the step; with no match the default runs."""
    done = flows.wait(flows.start("route", {"n": n}))
    assert done.status == "completed", done.error
    assert done.output == {"size": taken, "n": n}
    assert list(done.steps) == ["size", taken]
    assert flows.runs("big") + flows.runs("small") == 1


def test_a_choice_without_match_nor_default_fails_naming_the_step(flows: Flows) -> None:
    """No condition holds and there is no default: NoChoiceMatched naming the choice."""
    done = flows.wait(flows.start("strict", {"n": 1}))
    assert done.status == "failed"
    assert done.error is not None
    assert "NoChoiceMatched" in done.error["message"]
    assert "strict/size" in done.error["message"]
    assert flows.runs("big") == 0


def test_pass_steps_transform_give_a_result_or_pass_prev_on(flows: Flows) -> None:
    """A transform reads ctx; a static result replaces prev; a bare pass hands prev on."""
    done = flows.wait(flows.start("passes", {"n": 3}))
    assert done.status == "completed", done.error
    assert done.steps["shape"].output == {"doubled": 6, "in": 3}
    assert done.steps["fixed"].output == {"constant": True}
    assert done.output == {"constant": True}
    assert done.steps["through"].job_id is None  # no transform: no job


def test_legacy_job_tasks_run_the_registered_job_with_their_mappers(flows: Flows) -> None:
    """A job= task runs the job with prev, and with input(ctx) / output(result, ctx)."""
    done = flows.wait(flows.start("legacy", {"n": 5}))
    assert done.status == "completed", done.error
    assert done.steps["plain"].output == {"doubled": 10}
    assert done.output == {"value": 30}  # (10 + 5) * 2
    job = flows.sv.job(done.steps["mapped"].job_id or "")
    assert job["name"] == "workflow-step"  # the last job of the step: its output phase


def test_a_loop_of_pass_steps_fails_its_instance(flows: Flows) -> None:
    """Pass steps that loop without a job fail the instance instead of the loop's stack."""
    done = flows.wait(flows.start("spin", {"n": 1}))
    assert done.status == "failed"
    assert done.error is not None
    assert "more than 100 steps in a row ran without a job" in done.error["message"]
    assert flows.sv.call(flows.engine.definitions) != []  # the loop still serves
