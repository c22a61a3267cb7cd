"""Instances are committed by the supervisor in the same transaction as its job changes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from supervisor.config import Settings
from supervisor.core import Supervisor
from supervisor.errors import StoreError
from supervisor.testing import make_settings, short_socket_dir
from supervisor.workflows.records import (
    InstanceRecord,
    InstanceStatus,
    StepState,
    StepStatus,
    new_instance_id,
)
from tests.supervisor.failingstore import TRIGGER, FailingStore

ROOT = Path(__file__).resolve().parents[2]
JOBS = {"demo": {"command": sys.executable, "args": ["-c", "pass"]}}
LATER = 3600.0  # jobs are scheduled this far ahead, so no worker is ever started


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    """Settings on a state folder of this test, their socket folder removed at the end."""
    made = make_settings(tmp_path / "state", JOBS)
    yield made
    shutil.rmtree(str(made.socket_dir), ignore_errors=True)


def new_instance(sup: Supervisor, **fields: Any) -> InstanceRecord:
    """A pending instance as the engine will make one, inserted in the supervisor's table."""
    values: dict[str, Any] = {
        "id": new_instance_id(),
        "seq": sup.instances.next_seq(),
        "workflow": "orders",
        "status": InstanceStatus.PENDING,
        "input": {"order": b"\x01\x02"},
        "created_at": sup.clock.wall(),
        "node": sup.settings.node,
    }
    values.update(fields)
    instance = InstanceRecord(**values)
    sup.instances.insert(instance)
    return instance


def start_step(sup: Supervisor, instance: InstanceRecord, job_id: str) -> None:
    """Move the instance to running with one step whose attempt is the job ``job_id``."""
    now = sup.clock.wall()
    sup.instances.set_status(
        instance,
        InstanceStatus.RUNNING,
        started_at=now,
        current_step="validate",
        steps={
            "validate": StepState(
                status=StepStatus.RUNNING, attempts=1, job_id=job_id, started_at=now
            )
        },
    )


def test_a_job_and_an_instance_change_are_one_commit(settings):
    """The job a step runs as and the instance waiting for it are written by one transaction."""
    sup = Supervisor(settings)
    sup.open()
    try:
        job = sup.enqueue("demo", {"n": 1}, run_at=time.time() + LATER)
        instance = new_instance(sup)
        start_step(sup, instance, job.id)
        assert sup.loop.busy()
        before = sup.store.write_transactions  # type: ignore[attr-defined]
        sup.commit()
        assert sup.store.write_transactions == before + 1  # type: ignore[attr-defined]
        assert not sup.instances.has_changes and not sup.loop.busy()
        stored = sup.store.get_instance(instance.id)  # type: ignore[attr-defined]
        assert stored is not None and stored.status is InstanceStatus.RUNNING
        assert stored.steps["validate"].job_id == job.id
        assert sup.store.get(job.id) is not None
    finally:
        sup.close()


def test_only_an_instance_change_makes_the_loop_commit(settings):
    """An iteration that changed only an instance is busy and commits it."""
    sup = Supervisor(settings)
    sup.open()
    try:
        instance = new_instance(sup)
        assert not sup.table.has_hard_changes and sup.loop.busy()
        sup.loop.run_once(timeout=0)
        assert sup.store.get_instance(instance.id) is not None  # type: ignore[attr-defined]
        assert not sup.loop.busy()
    finally:
        sup.close()


def test_a_failed_commit_writes_neither_and_the_retry_writes_both(settings):
    """A commit that fails stores neither the job nor the instance; both wait for the next one."""
    store = FailingStore(settings)
    sup = Supervisor(settings, store=store)
    sup.open()
    trigger = settings.state_dir / TRIGGER
    try:
        job = sup.enqueue("demo", {"n": 2}, run_at=time.time() + LATER)
        instance = new_instance(sup)
        start_step(sup, instance, job.id)
        trigger.touch()
        with pytest.raises(StoreError, match="disk is full"):
            sup.commit()
        assert store.get(job.id) is None and store.get_instance(instance.id) is None
        assert sup.table.has_pending_changes(job.id)
        assert sup.instances.has_pending_changes(instance.id)
        trigger.unlink()
        before = store.write_transactions
        sup.commit()
        assert store.write_transactions == before + 1
        assert store.get(job.id) is not None
        stored = store.get_instance(instance.id)
        assert stored is not None and stored.steps["validate"].job_id == job.id
    finally:
        trigger.unlink(missing_ok=True)
        sup.close()


def test_a_restarted_supervisor_loads_the_active_instances_only(settings):
    """open() puts pending and running instances (children too) in the table; finished ones stay in the store."""
    sup = Supervisor(settings)
    sup.open()
    parent = new_instance(sup)
    start_step(sup, parent, "job-of-a-branch")
    child = new_instance(sup, parent_id=parent.id, branch="ship")
    done = new_instance(sup)
    sup.instances.set_status(done, InstanceStatus.CANCELLED, finished_at=sup.clock.wall())
    sup.commit()
    sup.close()
    again = Supervisor(settings)
    again.open()
    try:
        assert sorted(i.id for i in again.instances) == sorted([parent.id, child.id])
        assert not again.instances.has_changes
        assert [i.id for i in again.instances.children(parent.id)] == [child.id]
        assert again.instances.next_seq() == done.seq + 1  # never a finished one's seq
        stored = again.store.get_instance(done.id)  # type: ignore[attr-defined]
        assert stored is not None and stored.status is InstanceStatus.CANCELLED
    finally:
        again.close()


CHILD = """
import json, sys, time
from pathlib import Path
from supervisor.core import Supervisor
from supervisor.testing import make_settings
from supervisor.workflows.records import (
    InstanceRecord, InstanceStatus, StepState, StepStatus, new_instance_id,
)

state, socket_dir, jobs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
sup = Supervisor(make_settings(Path(state), jobs, socket_dir=socket_dir))
sup.open()
job = sup.enqueue("demo", {"n": 3}, run_at=time.time() + 3600)
instance = InstanceRecord(
    id=new_instance_id(), seq=sup.instances.next_seq(), workflow="orders",
    status=InstanceStatus.PENDING, input={"order": b"\\x01"}, created_at=time.time(),
    node=sup.settings.node,
)
sup.instances.insert(instance)
sup.instances.set_status(
    instance, InstanceStatus.RUNNING, current_step="validate", started_at=time.time(),
    steps={"validate": StepState(status=StepStatus.RUNNING, attempts=1, job_id=job.id)},
)
sup.commit()
print(json.dumps({"job": job.id, "instance": instance.id}), flush=True)
sys.stdin.read()  # killed here, with -9: no close(), no checkpoint
"""


@pytest.mark.timeout(60)
def test_a_job_and_an_instance_survive_kill_9_of_the_supervisor(tmp_path):
    """A real supervisor process that committed both is killed -9; a new one loads both back."""
    state, socket_dir = tmp_path / "state", short_socket_dir()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(state), socket_dir, json.dumps(JOBS)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, f"the child supervisor exited with {proc.wait()}"
        ids = json.loads(line)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    sup = Supervisor(make_settings(state, JOBS, socket_dir=socket_dir))
    sup.open()
    try:
        job = sup.table.get(ids["job"])
        assert job is not None and job.data == {"n": 3}
        instance = sup.instances.get(ids["instance"])
        assert instance is not None and instance.status is InstanceStatus.RUNNING
        assert instance.input == {"order": b"\x01"} and instance.current_step == "validate"
        assert instance.steps["validate"].job_id == ids["job"]
        assert instance.steps["validate"].status is StepStatus.RUNNING
    finally:
        sup.close()
        shutil.rmtree(socket_dir, ignore_errors=True)
