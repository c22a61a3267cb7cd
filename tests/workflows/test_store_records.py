"""The instance record, its step states, their plain-data form and the status table."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import pytest

from protocol import pack, unpack
from supervisor.errors import IllegalTransition, JobvisorError
from supervisor.workflows.errors import IllegalInstanceTransition, WorkflowError
from supervisor.workflows.records import (
    INSTANCE_TRANSITIONS,
    InstanceStatus,
    StepState,
    StepStatus,
    check_instance_transition,
    decode_steps,
    encode_steps,
    instance_markdown,
    instance_transition_allowed,
    new_instance_id,
)
from tests.workflows.store_factories import full_instance, make_instance

# The table as the design states it (docs/workflows.md): written out here so that a
# change to the table in the code is a visible change to this test too.
ALLOWED = {
    (InstanceStatus.PENDING, InstanceStatus.RUNNING),
    (InstanceStatus.PENDING, InstanceStatus.CANCELLED),
    (InstanceStatus.PENDING, InstanceStatus.FAILED),
    (InstanceStatus.RUNNING, InstanceStatus.COMPLETED),
    (InstanceStatus.RUNNING, InstanceStatus.FAILED),
    (InstanceStatus.RUNNING, InstanceStatus.CANCELLED),
    (InstanceStatus.FAILED, InstanceStatus.RUNNING),
    (InstanceStatus.CANCELLED, InstanceStatus.RUNNING),
}
PAIRS = list(itertools.product(InstanceStatus, InstanceStatus))


def test_the_transition_table_covers_every_status():
    """Every instance status has a row, and every target is a status."""
    assert set(INSTANCE_TRANSITIONS) == set(InstanceStatus)
    assert all(targets <= set(InstanceStatus) for targets in INSTANCE_TRANSITIONS.values())


@pytest.mark.parametrize(("old", "new"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_every_status_pair_is_allowed_or_refused_naming_both(old, new):
    """A listed change passes; any other raises an error naming the workflow, instance and both states."""
    instance = make_instance(workflow="orders", status=old)
    assert instance_transition_allowed(old, new) is ((old, new) in ALLOWED)
    if (old, new) in ALLOWED:
        check_instance_transition(instance, new)
        return
    with pytest.raises(IllegalInstanceTransition) as info:
        check_instance_transition(instance, new)
    message = str(info.value)
    assert f"{old} -> {new}" in message
    assert "'orders'" in message and instance.id in message


def test_the_transition_error_is_an_illegal_transition_and_a_workflow_error():
    """Callers that catch the core's IllegalTransition or WorkflowError both catch it."""
    assert issubclass(IllegalInstanceTransition, IllegalTransition)
    assert issubclass(IllegalInstanceTransition, WorkflowError)
    assert issubclass(WorkflowError, JobvisorError)
    assert IllegalInstanceTransition.http_status == 409


def test_a_completed_instance_never_changes_and_finished_ones_only_resume():
    """Completed is final; failed and cancelled may only go back to running (resume)."""
    assert INSTANCE_TRANSITIONS[InstanceStatus.COMPLETED] == frozenset()
    for status in (InstanceStatus.FAILED, InstanceStatus.CANCELLED):
        assert INSTANCE_TRANSITIONS[status] == {InstanceStatus.RUNNING}


def test_new_instance_ids_are_distinct_hex():
    """Instance ids are 20 lowercase hex digits and do not repeat."""
    ids = {new_instance_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 20 and int(i, 16) >= 0 and i == i.lower() for i in ids)


def test_steps_round_trip_through_plain_data_and_msgpack():
    """encode_steps gives msgpack-able plain data; decoding it gives the same steps, in order."""
    steps = full_instance().steps
    plain = encode_steps(steps)
    assert all(type(step["status"]) is str for step in plain.values())
    back = decode_steps(unpack(pack(plain)))
    assert list(back) == list(steps)
    for name, step in steps.items():
        assert dataclasses.asdict(back[name]) == dataclasses.asdict(step)
        assert type(back[name].status) is StepStatus
    assert type(back["validate"].output["raw"]) is bytes


def test_a_step_missing_keys_takes_their_defaults():
    """A step written before a key existed decodes with that key's default."""
    back = decode_steps({"a": {"status": "running", "attempts": 1}})
    assert back["a"].status is StepStatus.RUNNING and back["a"].attempts == 1
    assert back["a"].children == [] and back["a"].retry_at is None


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ([], "steps must be a map"),
        ({"a": 3}, "step 'a': expected a name and a map"),
        ({"a": {"status": "sleeping"}}, "step 'a': unknown status 'sleeping'"),
        ({"a": {"colour": "red"}}, "step 'a': unknown keys colour"),
        ({"a": {"children": [1]}}, "step 'a': children must be instance ids"),
    ],
)
def test_malformed_steps_are_refused_naming_the_step(data, problem):
    """Bad plain data is a ValueError naming the step and the bad value, never silently dropped."""
    with pytest.raises(ValueError, match=problem):
        decode_steps(data)


def test_a_copy_is_a_snapshot_of_the_steps():
    """Changing an instance's steps after copy() leaves the copy as it was."""
    instance = full_instance()
    snapshot = instance.copy()
    instance.steps["fulfill"].children.append("x" * 20)
    instance.steps["later"].status = StepStatus.RUNNING
    instance.steps["new"] = StepState()
    assert snapshot.steps["fulfill"].children == ["c" * 20, "d" * 20]
    assert snapshot.steps["later"].status is StepStatus.PENDING
    assert "new" not in snapshot.steps


def test_only_pending_and_running_instances_are_active():
    """active is true exactly for pending and running instances."""
    for status in InstanceStatus:
        assert make_instance(status=status).active is (
            status in (InstanceStatus.PENDING, InstanceStatus.RUNNING)
        )


def test_the_design_doc_shows_the_transition_table_the_code_uses():
    """docs/workflows.md embeds exactly the table generated from INSTANCE_TRANSITIONS."""
    doc = Path(__file__).resolve().parents[2] / "docs" / "workflows.md"
    assert instance_markdown() in doc.read_text(encoding="utf-8")
