"""Stores keep workflow instances: the same contract for memory and SQLite."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from protocol import pack
from supervisor.errors import StoreError
from supervisor.states import JobStatus
from supervisor.stores import MemoryStore, SqliteStore
from supervisor.stores.base import InstanceStore
from supervisor.workflows.records import InstanceRecord, InstanceStatus, StepState, StepStatus
from tests.supervisor.unit.factories import make_job
from tests.workflows.store_factories import full_instance, make_instance


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[InstanceStore]:
    """An open store of each kind, closed at teardown."""
    opened: InstanceStore = (
        MemoryStore() if request.param == "memory" else SqliteStore(path=tmp_path / "s" / "j.db")
    )
    opened.open()
    yield opened
    opened.close()


def as_dict(instance: InstanceRecord) -> dict[str, object]:
    return dataclasses.asdict(instance)


def ids(rows: list[InstanceRecord]) -> list[str]:
    return [row.id for row in rows]


def test_every_field_of_an_instance_round_trips(store):
    """An instance written whole reads back equal in every field, its steps' fields too."""
    instance = full_instance()
    store.write([], (), [instance])
    got = store.get_instance(instance.id)
    assert got is not None and got is not instance
    assert as_dict(got) == as_dict(instance)
    assert list(got.steps) == list(instance.steps)  # the order steps started in
    assert type(got.status) is InstanceStatus
    assert all(type(step.status) is StepStatus for step in got.steps.values())
    assert type(got.input["bytes"]) is bytes and type(got.output[0]) is bytes
    assert type(got.steps["validate"].output["raw"]) is bytes


def test_an_instance_with_only_required_fields_round_trips(store):
    """None stays None, no steps stays an empty map."""
    instance = make_instance()
    store.write([], (), [instance])
    got = store.get_instance(instance.id)
    assert got is not None and as_dict(got) == as_dict(instance)
    assert got.steps == {} and got.output is None and got.parent_id is None


def test_get_instance_of_an_unknown_id_is_none(store):
    """Asking for an instance that was never written gives None."""
    assert store.get_instance("nope") is None


def test_a_written_instance_is_a_snapshot(store):
    """Changing the instance or its steps after write() does not change what is stored."""
    instance = make_instance(steps={"a": StepState(status=StepStatus.RUNNING, attempts=1)})
    store.write([], (), [instance])
    instance.status = InstanceStatus.RUNNING
    instance.steps["a"].status = StepStatus.COMPLETED
    instance.steps["b"] = StepState()
    got = store.get_instance(instance.id)
    assert got is not None and got.status is InstanceStatus.PENDING
    assert list(got.steps) == ["a"] and got.steps["a"].status is StepStatus.RUNNING


def test_rewriting_an_instance_replaces_its_row(store):
    """Writing the same id again stores the newest state of every field."""
    instance = make_instance()
    store.write([], (), [instance])
    instance.status = InstanceStatus.COMPLETED
    instance.output = {"done": True}
    instance.steps["only"] = StepState(status=StepStatus.COMPLETED, output=1, attempts=1)
    instance.finished_at = 1_700_000_500.0
    store.write([], (), [instance])
    got = store.get_instance(instance.id)
    assert got is not None and as_dict(got) == as_dict(instance)
    assert ids(store.query_instances()) == [instance.id]


def test_jobs_and_instances_in_one_write(store):
    """One write() carries job rows, soft job columns and instances together."""
    running = make_job(status=JobStatus.RUNNING)
    store.write([running])
    running.progress = 50.0
    job = make_job()
    instance = make_instance(steps={"a": StepState(job_id=job.id)})
    store.write([job], [running], [instance])
    assert store.get(job.id) is not None
    got_running = store.get(running.id)
    assert got_running is not None and got_running.progress == 50.0
    got = store.get_instance(instance.id)
    assert got is not None and got.steps["a"].job_id == job.id


def test_load_active_instances_gives_pending_and_running_by_seq_children_included(store):
    """Active instances come back in seq order, whatever their parent and write order."""
    rows = [
        make_instance(seq=5, status=InstanceStatus.RUNNING),
        make_instance(seq=2, status=InstanceStatus.COMPLETED),
        make_instance(seq=9, status=InstanceStatus.PENDING, parent_id="p", branch="b"),
        make_instance(seq=1, status=InstanceStatus.PENDING),
        make_instance(seq=7, status=InstanceStatus.FAILED),
        make_instance(seq=4, status=InstanceStatus.CANCELLED),
    ]
    store.write([], (), rows)
    assert [(i.seq, i.status) for i in store.load_active_instances()] == [
        (1, InstanceStatus.PENDING),
        (5, InstanceStatus.RUNNING),
        (9, InstanceStatus.PENDING),
    ]


def test_query_instances_filters_pages_and_lists_newest_top_level_first(store):
    """query_instances filters by workflow and status, pages, newest first, top level only."""
    rows = [
        make_instance(
            workflow="even" if i % 2 == 0 else "odd",
            status=InstanceStatus.COMPLETED if i % 3 == 0 else InstanceStatus.RUNNING,
            created_at=1_700_000_000.0 + i,
            seq=100 + i,
        )
        for i in range(10)
    ]
    child = make_instance(parent_id=rows[0].id, branch="b", created_at=1_800_000_000.0)
    store.write([], (), [*reversed(rows), child])
    newest = list(reversed(rows))
    assert ids(store.query_instances()) == ids(newest)
    assert ids(store.query_instances(workflow="even")) == ids(
        [i for i in newest if i.workflow == "even"]
    )
    assert ids(store.query_instances(status=InstanceStatus.COMPLETED)) == ids(
        [i for i in newest if i.status is InstanceStatus.COMPLETED]
    )
    assert ids(store.query_instances(workflow="odd", status=InstanceStatus.RUNNING)) == ids(
        [i for i in newest if i.workflow == "odd" and i.status is InstanceStatus.RUNNING]
    )
    assert ids(store.query_instances(limit=3)) == ids(newest[:3])
    assert ids(store.query_instances(limit=3, offset=3)) == ids(newest[3:6])
    assert store.query_instances(offset=10) == []
    assert store.query_instances(workflow="nobody") == []


def test_query_instances_breaks_created_at_ties_by_seq(store):
    """Instances created in the same instant list the later one first."""
    a, b = make_instance(created_at=5.0, seq=1), make_instance(created_at=5.0, seq=2)
    store.write([], (), [a, b])
    assert ids(store.query_instances()) == [b.id, a.id]


def test_query_instances_of_a_parent_lists_its_children(store):
    """With parent_id, the listing is that parent's children (branches), newest first, filtered."""
    parent = make_instance(status=InstanceStatus.RUNNING)
    ship = make_instance(parent_id=parent.id, branch="ship", created_at=10.0, seq=1)
    notify = make_instance(
        parent_id=parent.id, branch="notify", created_at=11.0, seq=2, workflow="notify-flow"
    )
    stranger = make_instance(parent_id="other", branch="x")
    store.write([], (), [parent, ship, notify, stranger])
    assert ids(store.query_instances(parent_id=parent.id)) == [notify.id, ship.id]
    assert ids(store.query_instances(parent_id=parent.id, workflow="notify-flow")) == [notify.id]
    assert store.query_instances(parent_id=parent.id, status=InstanceStatus.FAILED) == []
    assert ids(store.query_instances()) == [parent.id]
    got = store.query_instances(parent_id=parent.id)[1]
    assert (got.parent_id, got.branch) == (parent.id, "ship")


def test_an_instance_payload_sqlite_cannot_encode_rolls_back_the_jobs_too(tmp_path):
    """One transaction: an unencodable instance fails the write and the job in it is not stored."""
    store = SqliteStore(path=tmp_path / "j.db")
    store.open()
    try:
        job = make_job()
        bad = make_instance(output={"n": 2**64})
        with pytest.raises(StoreError, match="commit failed"):
            store.write([job], (), [bad])
        assert store.get(job.id) is None and store.get_instance(bad.id) is None
        bad.output = None
        store.write([job], (), [bad])  # the connection is still usable
        assert store.get(job.id) is not None and store.get_instance(bad.id) is not None
    finally:
        store.close()


def test_a_malformed_steps_blob_is_a_store_error_naming_the_step(tmp_path):
    """A row whose steps do not decode is a StoreError naming the step, not a crash."""
    store = SqliteStore(path=tmp_path / "j.db")
    store.open()
    try:
        instance = make_instance()
        store.write([], (), [instance])
        store.db.execute(
            "UPDATE workflow_instances SET steps = ? WHERE id = ?",
            (pack({"charge": {"status": "sleeping"}}), instance.id),
        )
        with pytest.raises(StoreError, match="step 'charge': unknown status 'sleeping'"):
            store.get_instance(instance.id)
    finally:
        store.close()


def test_max_instance_seq_is_the_largest_seq_ever_written(store):
    """0 for no instances, then the largest seq, finished and child instances included."""
    assert store.max_instance_seq() == 0
    store.write(
        [],
        (),
        [
            make_instance(seq=3),
            make_instance(seq=12, status=InstanceStatus.COMPLETED),
            make_instance(seq=7, parent_id="p", branch="b"),
        ],
    )
    assert store.max_instance_seq() == 12
