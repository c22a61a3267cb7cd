"""The builder: build() refuses broken graphs naming the workflow and step, resolves
successors, describes the graph, and qualifies branches."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from supervisor.workflows import (
    ChoiceStep,
    EndStep,
    ParallelStep,
    PassStep,
    RetryPolicy,
    TaskStep,
    Workflow,
    WorkflowBuilder,
    WorkflowDefinitionError,
    workflow,
)


class Order(BaseModel):
    order_id: str


def h(input: Any, ctx: Any) -> Any:
    return input


def branch(name: str = "b") -> Workflow:
    return workflow.branch(name).task("t", handler=h).build()


BAD: list[tuple[str, Callable[[], WorkflowBuilder], str]] = [
    ("empty", lambda: workflow("w"), "workflow 'w': has no steps"),
    ("bad workflow name", lambda: workflow("a/b").task("t", handler=h), "bad name 'a/b'"),
    ("empty step name", lambda: workflow("w").task("", handler=h), "bad step name ''"),
    (
        "duplicate step",
        lambda: workflow("w").task("t", handler=h).task("t", handler=h),
        "step 't': the name is used by more than one step",
    ),
    (
        "unknown next",
        lambda: workflow("w").task("t", handler=h, next="nowhere"),
        "step 't': next='nowhere' names no step",
    ),
    (
        "next and end",
        lambda: workflow("w").task("a", handler=h, next="b", end=True).task("b", handler=h),
        "step 'a': has both next='b' and end=True",
    ),
    (
        "next to itself",
        lambda: workflow("w").task("a", handler=h, next="a"),
        "step 'a': next names the step itself",
    ),
    (
        "unknown choice target",
        lambda: workflow("w").choice("c", choices=[{"condition": bool, "next": "x"}]),
        "step 'c': choice 0 goes to 'x', which names no step",
    ),
    (
        "unknown default",
        lambda: workflow("w").choice("c", default="x"),
        "step 'c': default='x' names no step",
    ),
    (
        "choice without a way out",
        lambda: workflow("w").choice("c").task("t", handler=h),
        "step 'c': a choice needs a way out",
    ),
    (
        "malformed choice",
        lambda: (
            workflow("w").choice("c", choices=[{"when": bool, "next": "t"}]).task("t", handler=h)
        ),
        "step 'c': choice 0 must be",
    ),
    (
        "condition with the wrong arity",
        lambda: (
            workflow("w")
            .choice("c", choices=[{"condition": lambda a, b: True, "next": "t"}], default="t")
            .task("t", handler=h)
        ),
        "step 'c': choice 0 condition",
    ),
    (
        "unreachable",
        lambda: workflow("w").task("a", handler=h, end=True).task("b", handler=h),
        "step 'b': unreachable from the first step 'a'",
    ),
    (
        "unreachable after a choice",
        lambda: (
            workflow("w")
            .choice("c", choices=[{"condition": bool, "next": "z"}], default="z")
            .task("y", handler=h)
            .task("z", handler=h)
        ),
        "step 'y': unreachable",
    ),
    (
        "neither handler nor job",
        lambda: workflow("w").task("t"),
        "step 't': a task needs exactly one of handler= and job= (neither",
    ),
    (
        "both handler and job",
        lambda: workflow("w").task("t", handler=h, job="j"),
        "step 't': a task needs exactly one of handler= and job= (both",
    ),
    (
        "legacy mappers on a handler task",
        lambda: workflow("w").task("t", handler=h, input=lambda ctx: 1),
        "step 't': input=/output= map a legacy job= task",
    ),
    (
        "first task with a mapper",
        lambda: workflow("w").task("t", input_schema=lambda prev: prev, handler=h),
        "step 't': its input_schema is a mapper, but it may run first, with no prev",
    ),
    (
        "a mapper after a first choice",
        lambda: (
            workflow("w")
            .choice("c", choices=[{"condition": bool, "next": "t"}], default="u")
            .task("t", input_schema=lambda prev: prev, handler=h)
            .task("u", handler=h)
        ),
        "step 't': its input_schema is a mapper, but it may run first",
    ),
    (
        "handler with the wrong arity",
        lambda: workflow("w").task("t", handler=lambda a, b, c: None),
        "step 't': handler",
    ),
    (
        "output schema not a model",
        lambda: workflow("w").task("t", handler=h, output_schema=dict),  # type: ignore[arg-type]
        "step 't': output_schema must be a pydantic model class",
    ),
    (
        "bad step timeout",
        lambda: workflow("w").task("t", handler=h, timeout=0),
        "step 't': timeout must be a number of seconds > 0, not 0",
    ),
    (
        "bad workflow timeout",
        lambda: workflow("w").timeout(-1).task("t", handler=h),
        "workflow 'w': timeout must be a number of seconds > 0, not -1",
    ),
    (
        "bad retry dict",
        lambda: workflow("w").task("t", handler=h, retry={"max_attempts": 0}),
        "step 't': bad retry {'max_attempts': 0}: max_attempts must be an integer >= 1",
    ),
    (
        "unknown retry key",
        lambda: workflow("w").task("t", handler=h, retry={"attempts": 3}),
        "step 't': bad retry {'attempts': 3}",
    ),
    (
        "bad default retry",
        lambda: workflow("w").default_retry(backoff_rate=0.5).task("t", handler=h),
        "default_retry: bad retry",
    ),
    (
        "pass result not JSON-able",
        lambda: workflow("w").pass_("p", result=object()),
        "step 'p': result=<object object at",
    ),
    (
        "parallel without branches",
        lambda: workflow("w").parallel("p", branches=[]),
        "step 'p': a parallel step needs at least one branch",
    ),
    (
        "duplicate branch names",
        lambda: workflow("w").parallel("p", branches=[branch("x"), branch("x")]),
        "step 'p': branch 'x': more than one branch has this name",
    ),
    (
        "branch not built",
        lambda: workflow("w").parallel("p", branches=[workflow.branch("x").task("t", handler=h)]),  # type: ignore[list-item]
        "step 'p': branch 'x' is a builder: end it with .build()",
    ),
    (
        "bad on_error",
        lambda: workflow("w").parallel("p", branches=[branch()], on_error="sometimes"),  # type: ignore[arg-type]
        "step 'p': on_error must be one of fail-fast, wait-all, not 'sometimes'",
    ),
]


@pytest.mark.parametrize(("case", "make", "message"), BAD, ids=[c[0] for c in BAD])
def test_build_refuses_a_broken_workflow_naming_it_and_the_step(case, make, message):
    """Each broken definition fails build() with a message naming the workflow and the step."""
    with pytest.raises(WorkflowDefinitionError) as caught:
        make().build()
    text = str(caught.value)
    assert text.startswith("workflow 'w': ") or "workflow 'a/b'" in text, text
    assert message in text, text


def test_a_mapper_after_a_first_pass_step_is_allowed():
    """A pass step outputs a value (the workflow input at first), so the next step has a prev."""
    built = workflow("w").pass_("p").task("t", input_schema=lambda prev: prev, handler=h).build()
    assert built.first_steps() == ("p",)


def test_a_branch_may_start_with_a_mapper():
    """A branch's first task has a prev (the parallel step's), so a mapper is allowed there."""
    built = workflow.branch("b").task("t", input_schema=lambda prev: prev, handler=h).build()
    assert built.is_branch
    assert built.steps["t"].input_mapper is not None  # type: ignore[union-attr]


def test_a_broken_branch_names_itself_as_a_branch():
    """build() of a branch names the branch in its error."""
    with pytest.raises(WorkflowDefinitionError, match=r"^branch 'b': has no steps"):
        workflow.branch("b").build()


def test_successors_are_next_else_the_following_step_else_the_end():
    """next_of: explicit next, else the step declared after, else None; end=True ends."""
    built = (
        workflow("w")
        .task("a", handler=h)
        .task("b", handler=h, next="d")
        .pass_("c", end=True)
        .choice("d", choices=[{"condition": bool, "next": "c"}], default="e")
        .task("e", handler=h)
        .end("f")
        .build()
    )
    assert built.start == "a"
    assert [built.next_of(s) for s in "abcdef"] == ["b", "d", None, None, "f", None]
    assert built.targets_of("d") == ("c", "e")
    assert list(built.steps) == list("abcdef")
    assert isinstance(built.step("f"), EndStep)
    with pytest.raises(KeyError, match="workflow 'w' has no step 'zz'"):
        built.step("zz")


def test_steps_keep_their_options():
    """The built records keep what the builder was given."""

    def cond(ctx: Any) -> bool:
        return True

    built = (
        workflow("w")
        .task("t", input_schema=Order, handler=h, retry={"max_attempts": 2}, timeout=5)
        .choice("c", choices=[{"condition": cond, "next": "p"}], default="n")
        .pass_("p", result=None, next="n")
        .pass_("n")
        .build()
    )
    task, choice, p, n = (built.step(s) for s in ("t", "c", "p", "n"))
    assert isinstance(task, TaskStep)
    assert task.input_model is Order and task.input_mapper is None
    assert task.retry == RetryPolicy(max_attempts=2)
    assert task.timeout == 5
    assert isinstance(choice, ChoiceStep) and choice.choices[0].condition is cond
    assert isinstance(p, PassStep) and p.has_result and p.result is None
    assert isinstance(n, PassStep) and not n.has_result
    assert all(step.workflow == "w" for step in built.steps.values())


def test_the_workflow_knows_the_module_that_built_it():
    """workflow(...) records its caller's module, which a step worker imports."""
    assert workflow("w").task("t", handler=h).build().module == __name__


def test_retry_of_prefers_the_step_then_the_default_then_one_attempt():
    """A task's own retry wins over default_retry; without either there is one attempt."""
    built = (
        workflow("w")
        .default_retry(max_attempts=3, retry_on=["ValueError"])
        .task("own", handler=h, retry=RetryPolicy(max_attempts=5))
        .task("default", handler=h)
        .build()
    )
    assert built.retry_of("own").max_attempts == 5
    assert built.retry_of("default") == RetryPolicy(max_attempts=3, retry_on=("ValueError",))
    plain = workflow("v").task("t", handler=h).build()
    assert plain.retry_of("t") == RetryPolicy()


def test_branches_are_qualified_and_inherit_the_default_retry():
    """A branch gets a parent/step/branch qualname, stamps its steps, and inherits default_retry."""
    own = workflow.branch("own").default_retry(max_attempts=7).task("t", handler=h).build()
    inner = workflow.branch("inner").task("deep", handler=h).build()
    outer = workflow.branch("outer").parallel("split", branches=[inner]).build()
    built = (
        workflow("w")
        .default_retry(max_attempts=2)
        .parallel("p", branches=[branch("b"), own, outer])
        .build()
    )
    p = built.step("p")
    assert isinstance(p, ParallelStep)
    b = built.branch("p/b")
    assert b.qualname == "w/p/b" and b.step("t").workflow == "w/p/b"
    assert b.retry_of("t").max_attempts == 2
    assert built.branch("p/own").retry_of("t").max_attempts == 7
    deep = built.branch("p/outer/split/inner")
    assert deep.qualname == "w/p/outer/split/inner"
    assert deep.step("deep").workflow == "w/p/outer/split/inner"
    with pytest.raises(KeyError, match="no parallel step 'p' with a branch 'zz'"):
        built.branch("p/zz")


def test_graph_is_json_and_describes_every_step():
    """graph() is JSON-able and lists each step's kind and successors, branches nested."""
    built = (
        workflow("w")
        .timeout(60)
        .task("a", input_schema=Order, handler=h)
        .choice("c", choices=[{"condition": bool, "next": "p"}], default="j")
        .parallel("p", branches=[branch("b")], on_error="wait-all", next="z")
        .task("j", job="legacy-job", retry={"max_attempts": 2, "retry_on": [OSError]})
        .pass_("z", transform=lambda ctx: 1)
        .build()
    )
    graph = json.loads(json.dumps(built.graph()))
    assert graph["name"] == "w" and graph["start"] == "a" and graph["timeout"] == 60
    steps = {s["name"]: s for s in graph["steps"]}
    assert [s["name"] for s in graph["steps"]] == ["a", "c", "p", "j", "z"]
    assert steps["a"] == {
        "name": "a",
        "kind": "task",
        "next": "c",
        "handler": f"{__name__}.h",
        "job": None,
        "input_schema": "model:Order",
        "output_schema": None,
        "retry": None,
        "timeout": None,
    }
    assert steps["c"]["choices"] == [{"condition": "builtins.bool", "next": "p"}]
    assert steps["c"]["default"] == "j"
    assert steps["p"]["on_error"] == "wait-all" and steps["p"]["next"] == "z"
    assert steps["p"]["branches"][0]["qualname"] == "w/p/b"
    assert steps["j"]["job"] == "legacy-job" and steps["j"]["retry"]["retry_on"] == ["OSError"]
    assert steps["j"]["next"] == "z"
    assert steps["z"]["kind"] == "pass" and steps["z"]["next"] is None


def test_the_docs_example_builds():
    """The first Python example of docs/workflows.md builds the workflow it shows."""
    docs = Path(__file__).resolve().parents[2] / "docs" / "workflows.md"
    source = docs.read_text().split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    exec(compile(source, str(docs), "exec"), namespace)
    built = namespace["process_order"]
    assert isinstance(built, Workflow) and built.module == "docs_example"
    assert [s["name"] for s in built.graph()["steps"]] == [
        "validate",
        "check-inventory",
        "fulfill",
        "backorder",
        "complete",
    ]
