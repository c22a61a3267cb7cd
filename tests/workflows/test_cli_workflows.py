"""``jobvisor workflow start/show/list`` as real subprocesses against a real supervisor.

The engine is the stand-in of ``httpstandin``: an instance moves one step each time it
is read, so ``start --follow`` sees it go step by step and end after a few polls.
End-to-end tests with the real engine live with the engine.
"""

from __future__ import annotations

import json

import pytest

from supervisor.cli import _step_lines
from supervisor.testing import SupervisorThread, wait_for
from supervisor.workflows.records import InstanceStatus, StepState, StepStatus
from tests.supervisor.test_cli import JOB_ID, jobvisor, popen
from tests.workflows.httpstandin import StandIn, without_engine


@pytest.fixture
def sv(start) -> SupervisorThread:
    sv = start()
    sv.sup.workflows = StandIn()
    return sv


@pytest.fixture
def engine(sv) -> StandIn:
    return sv.sup.workflows


def test_start_prints_the_instance_id(sv, engine, tmp_path):
    """``workflow start NAME --input JSON`` starts one and prints only its id."""
    result = jobvisor(
        "workflow", "start", "order", "--input", '{"sku": "A-1"}', sv=sv, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    instance_id = result.stdout.strip()
    assert JOB_ID.match(instance_id)
    assert engine.instances[instance_id].input == {"sku": "A-1"}


def test_start_without_input_uses_the_default(sv, engine, tmp_path):
    """Without --input nothing is sent and the server's default, {}, applies."""
    result = jobvisor("workflow", "start", "order", sv=sv, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert engine.instances[result.stdout.strip()].input == {}


def test_start_follow_shows_each_step_then_the_output_and_exits_0(sv, tmp_path):
    """--follow prints each step as it starts and completes, then the output; exit 0."""
    result = jobvisor(
        "workflow", "start", "order", "--input", "[1]", "--follow", sv=sv, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"shipped": [1]}
    lines = result.stderr.splitlines()
    assert JOB_ID.match(lines[0])
    assert lines[1:] == [
        "step validate running",
        "step validate completed",
        "step charge running",
        "step charge completed",
        "step ship running",
        "step ship completed",
        "workflow order completed",
    ]


def test_start_follow_of_a_failing_workflow_exits_1_with_the_error(sv, tmp_path):
    """A failed instance: the failing step's line says why, the error is printed, exit 1."""
    result = jobvisor("workflow", "start", "broken", "--follow", sv=sv, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout) == {"message": "ValueError: second refused", "step": "second"}
    assert "step second failed: ValueError: second refused" in result.stderr
    assert result.stderr.rstrip().endswith("workflow broken failed")


def test_start_follow_of_a_cancelled_instance_exits_3(sv, engine, tmp_path):
    """Cancelled while followed: the CLI prints the error and exits 3."""
    proc = popen("workflow", "start", "stuck", "--follow", sv=sv, cwd=tmp_path)
    try:
        running = wait_for(
            lambda: [i for i in list(engine.instances.values()) if i.steps], message="a step"
        )
        sv.client.cancel_instance(running[0].id, "stop it")
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 3, err
    assert json.loads(out)["message"] == "stop it"
    assert "step wait cancelled" in err


def test_show_prints_the_instance_as_json(sv, engine, tmp_path):
    """``workflow show ID`` prints the instance JSON; an unknown id exits 2 with the reason."""
    instance = engine.record("other", input={"n": 1})
    result = jobvisor("workflow", "show", instance.id, sv=sv, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert (shown["id"], shown["workflow"], shown["input"]) == (instance.id, "other", {"n": 1})
    missing = jobvisor("workflow", "show", "0123456789abcdef0123", sv=sv, cwd=tmp_path)
    assert missing.returncode == 2
    assert "no workflow instance with id '0123456789abcdef0123'" in missing.stderr


def test_list_prints_a_table_or_json_and_filters(sv, engine, tmp_path):
    """``workflow list`` shows a table newest first; --workflow, --status and --json work."""
    a = engine.record("other", current_step="first")
    b = engine.record("order", status=InstanceStatus.FAILED)
    table = jobvisor("workflow", "list", sv=sv, cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["ID", "WORKFLOW", "STATUS", "STEP", "CREATED"]
    assert lines[1].split()[:3] == [b.id, "order", "failed"]
    assert lines[2].split()[:4] == [a.id, "other", "running", "first"]
    listed = jobvisor("workflow", "list", "--json", "--workflow", "other", sv=sv, cwd=tmp_path)
    assert [i["id"] for i in json.loads(listed.stdout)] == [a.id]
    failed = jobvisor("workflow", "list", "--json", "--status", "failed", sv=sv, cwd=tmp_path)
    assert [i["id"] for i in json.loads(failed.stdout)] == [b.id]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["workflow"], "the following arguments are required: SUBCOMMAND"),
        (["workflow", "stop", "x"], "invalid choice: 'stop'"),
        (["workflow", "start"], "the following arguments are required: name"),
        (["workflow", "start", "order", "--input", "{nope"], "--input is not valid JSON"),
        (["workflow", "show"], "the following arguments are required: id"),
        (["workflow", "list", "--limit", "many"], "invalid int value: 'many'"),
        (["workflow", "list", "--limit", "0"], "--limit must be at least 1"),
        (["workflow", "list", "--status", "done"], "unknown instance status 'done'"),
        (["workflow", "start", "nope"], "no workflow named 'nope'"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(sv, engine, tmp_path, args, message):
    """Missing or malformed arguments and refused requests exit 2 saying why; nothing starts."""
    result = jobvisor(*args, sv=sv, cwd=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr
    assert engine.instances == {}


def test_without_an_engine_the_cli_says_workflows_are_disabled(start, tmp_path):
    """A supervisor without a workflow engine: exit 2 with workflows_disabled."""
    sv = without_engine(start())
    result = jobvisor("workflow", "list", sv=sv, cwd=tmp_path)
    assert result.returncode == 2
    assert "workflows_disabled" in result.stderr


def test_help_lists_the_workflow_command(tmp_path):
    """``jobvisor --help`` names workflow; ``workflow --help`` names its subcommands."""
    top = jobvisor("--help", cwd=tmp_path)
    assert "workflow" in top.stdout
    sub = jobvisor("workflow", "--help", cwd=tmp_path)
    assert sub.returncode == 0
    for name in ("start", "show", "list"):
        assert name in sub.stdout


def test_follow_lines_name_a_parallel_branchs_steps(sv, engine):
    """--follow's lines for a parallel step's branches read ``STEP[BRANCH].STEP``."""
    parent = engine.record("fan", current_step="split")
    left = engine.record(
        "fan",
        parent_id=parent.id,
        branch="left",
        steps={"resize": StepState(StepStatus.RUNNING, attempts=2)},
    )
    parent.steps["split"] = StepState(StepStatus.RUNNING, children=[left.id])
    lines = _step_lines(sv.client.instance(parent.id))
    assert lines == {
        "split": "step split running",
        "split[left].resize": "step split[left].resize running (attempt 2)",
    }


def test_global_options_work_after_the_workflow_subcommand(sv, engine, tmp_path):
    """``workflow list --json --url U --token T`` means what it means with them up front."""
    instance = engine.record("other")
    client = sv.client
    result = jobvisor(
        "workflow", "list", "--json", "--url", client.url, "--token", client.token, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert [i["id"] for i in json.loads(result.stdout)] == [instance.id]
