"""Retention (supervisor/retention.py): old finished jobs and their logs are purged by the
supervisor's own timer, on an injected clock; running, young and protected jobs stay."""

from __future__ import annotations

import logging
import shutil
import time

import pytest

from supervisor.client import ClientError
from supervisor.clock import ManualClock
from supervisor.joblogs import log_path
from supervisor.retention import BATCH, IDLE_INTERVAL, TIMER
from supervisor.stores import MemoryStore, SqliteStore
from supervisor.testing import SupervisorThread, make_settings, wait_for
from supervisor.workflows.records import InstanceStatus, StepState, StepStatus
from tests.supervisor.unit import test_stores
from tests.workflows.store_factories import make_instance

DAY = 86400.0
plugin_dir = test_stores.plugin_dir  # the fixture: a folder for a custom store's module


@pytest.fixture
def clocked(tmp_path, worker):
    """Start a supervisor on a ManualClock with ``retention = "1d"`` (stopped at teardown)."""
    started: list[SupervisorThread] = []

    def run(transport: str = "unix", **options) -> tuple[SupervisorThread, ManualClock]:
        clock = ManualClock(wall=time.time())
        settings = make_settings(
            tmp_path / "state",
            # Silence is judged on the same clock: the jump must not make the worker stale.
            {"demo": worker(max_attempts=1, heartbeat_timeout=30 * DAY)},
            **{"retention": "1d", "transport": transport, **options},
        )
        sv = SupervisorThread(settings, clock=clock).start()
        started.append(sv)
        return sv, clock

    yield run
    for sv in started:
        sv.stop()
        shutil.rmtree(str(sv.settings.socket_dir), ignore_errors=True)


def exists(sv: SupervisorThread, job_id: str) -> bool:
    return sv.call(lambda: sv.sup.get(job_id)) is not None


@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_retention_purges_old_finished_jobs_and_logs_and_keeps_running_and_young_ones(
    clocked, tmp_path, transport
):
    """Two days on, the timer purges completed, failed and cancelled jobs with their logs;
    a job running all along, a young finished one and their logs stay."""
    sv, clock = clocked(transport)
    client = sv.client
    gate = tmp_path / "gate"
    running = client.submit("demo", {"actions": [["wait_file", str(gate)]]})
    old = [
        client.submit("demo", {"actions": []}),
        client.submit("demo", {"actions": [["raise", "no"]]}),
    ]
    for job_id in old:
        sv.wait(job_id)
    cancelled = client.submit("demo", run_at=time.time() + 3600)
    client.cancel(cancelled)
    old.append(cancelled)
    wait_for(lambda: sv.job(running)["process_state"] == "running", message="worker connected")
    for job_id in old[:2]:  # a job whose worker is still exiting waits for the next sweep
        wait_for(lambda j=job_id: sv.job(j)["process_state"] == "exited", message="worker gone")
    logs = {job_id: log_path(sv.settings.log_dir, job_id) for job_id in [*old, running]}
    assert all(logs[job_id].exists() for job_id in old[:2])

    sv.call(lambda: clock.advance(2 * DAY))  # past retention: the timer is due
    young = client.submit("demo", {"actions": []})
    sv.wait(young)
    wait_for(lambda: not any(exists(sv, job_id) for job_id in old), message="old jobs purged")

    assert all(not logs[job_id].exists() for job_id in old)
    assert exists(sv, running) and logs[running].exists()
    assert exists(sv, young) and log_path(sv.settings.log_dir, young).exists()
    purged = [e for e in sv.events if e.name == "jobs.purged"]
    assert sum(e.data["count"] for e in purged) == 3
    gate.touch()
    assert sv.wait(running)["status"] == "completed"  # untouched, and it completes


def test_retention_keeps_an_old_step_job_of_an_active_workflow_instance(clocked):
    """A finished job named by a step of an active instance stays however old; once the
    instance is over, the next sweep purges it."""
    sv, clock = clocked()
    step_job = sv.client.submit("demo", {"actions": []})
    other = sv.client.submit("demo", {"actions": []})
    for job_id in (step_job, other):
        sv.wait(job_id)
        wait_for(lambda j=job_id: sv.job(j)["process_state"] == "exited", message="worker gone")
    instance = make_instance(
        status=InstanceStatus.RUNNING,
        steps={"a": StepState(status=StepStatus.RUNNING, job_id=step_job)},
    )
    sv.call(lambda: sv.sup.instances.load(instance))
    sv.call(lambda: clock.advance(2 * DAY))
    wait_for(lambda: not exists(sv, other), message="the unprotected job purged")
    assert exists(sv, step_job)

    def finish() -> int:
        instance.status = InstanceStatus.COMPLETED
        assert sv.sup.retention is not None
        return sv.sup.retention.sweep()

    assert sv.call(finish) == 1
    assert not exists(sv, step_job)


def test_retention_off_keeps_everything(clocked):
    """retention = "off": a job finished a year ago is still there."""
    sv, clock = clocked(retention="off")
    job_id = sv.client.submit("demo", {"actions": []})
    sv.wait(job_id)
    sv.call(lambda: clock.advance(365 * DAY))
    assert sv.sup.retention is not None and not sv.sup.retention.enabled
    assert sv.call(sv.sup.retention.sweep) == 0
    assert exists(sv, job_id)


@pytest.mark.parametrize("make", [MemoryStore, SqliteStore], ids=["memory", "sqlite"])
def test_a_sweep_deletes_at_most_one_batch_oldest_first(tmp_path, make):
    """finished_before reads the oldest finished rows first, at most ``limit``; active rows
    are never candidates, and delete_finished leaves them alone."""
    from tests.supervisor.unit.factories import make_job

    store = make(path=tmp_path / "jobs.db") if make is SqliteStore else make()
    store.open()
    try:
        from supervisor.states import JobStatus

        rows = [
            make_job(status=JobStatus.COMPLETED, finished_at=1000.0 + i, name="k")
            for i in range(BATCH + 5)
        ]
        active = make_job(status=JobStatus.RUNNING, name="k")
        store.write([*rows, active])
        picked = store.finished_before(5000.0, BATCH)
        assert [job_id for job_id, _ in picked] == [row.id for row in rows[:BATCH]]
        assert store.delete_finished([*(job_id for job_id, _ in picked), active.id]) == [
            job_id for job_id, _ in picked
        ]
        assert store.get(active.id) is not None
        assert store.settled_totals() == {("k", "completed"): BATCH + 5}
    finally:
        store.close()


def test_a_custom_store_without_delete_runs_with_retention_off_and_one_warning(
    tmp_path, plugin_dir, start, worker, caplog
):
    """A store without the delete methods: one warning at start, retention off, jobs run,
    and DELETE answers 501 naming what it lacks."""
    folder, name = plugin_dir
    (folder / f"{name}.py").write_text(test_stores.STORE_MODULE)
    with caplog.at_level(logging.WARNING, logger="supervisor.retention"):
        sv = start(
            {"demo": worker(max_attempts=1)},
            store=f"{name}:JobsOnlyStore",
            python_path=[str(folder)],
        )
    warnings = [r.getMessage() for r in caplog.records if r.name == "supervisor.retention"]
    assert len(warnings) == 1 and "retention is off" in warnings[0]
    assert (
        "(missing: finished_before, delete_finished, tally_reopened, settled_totals;"
        in (warnings[0])
    )
    assert sv.sup.retention is not None and not sv.sup.retention.enabled
    job_id = sv.client.submit("demo")
    assert sv.wait(job_id)["status"] == "completed"
    wait_for(lambda: sv.job(job_id)["process_state"] == "exited", message="worker gone")
    with pytest.raises(ClientError) as info:
        sv.client.delete(job_id)
    assert info.value.status == 501 and "cannot delete jobs (missing: " in info.value.message


def test_a_backlog_is_purged_in_batches_with_the_loop_free_between_them(clocked):
    """BATCH + 5 old rows: the first sweep deletes one batch and re-arms soon; the rest go
    at the next tick, and the supervisor answers requests in between."""
    from supervisor.states import JobStatus
    from tests.supervisor.unit.factories import make_job

    sv, clock = clocked()
    old = clock.wall() - 3 * DAY
    rows = [
        make_job(name="demo", status=JobStatus.COMPLETED, created_at=old, finished_at=old + i)
        for i in range(BATCH + 5)
    ]
    sv.call(lambda: sv.sup.store.write(rows))

    def left() -> int:
        return sum(1 for row in rows if sv.sup.store.get(row.id) is not None)

    sv.call(lambda: clock.advance(0.3))  # the first tick (armed 0.25 s after start)
    wait_for(lambda: sv.call(left) == 5, message="one batch purged")
    assert sv.client.health()["status"] == "ok"  # served between batches
    sv.call(lambda: clock.advance(0.3))  # the catch-up tick
    wait_for(lambda: sv.call(left) == 0, message="the rest purged")
    assert [e.data["count"] for e in sv.events if e.name == "jobs.purged"] == [BATCH, 5]


def test_a_store_failing_to_purge_is_logged_and_the_supervisor_carries_on(clocked, caplog):
    """A store that cannot read or delete for retention: an error is logged, the next
    sweep is armed, and a DELETE gets 503 store_error; the supervisor runs jobs on."""
    from supervisor.errors import StoreError

    sv, clock = clocked()
    job_id = sv.client.submit("demo", {"actions": []})
    sv.wait(job_id)
    wait_for(lambda: sv.job(job_id)["process_state"] == "exited", message="worker gone")

    def broken(*args):
        raise StoreError("SQLite store x: delete failed: disk I/O error")

    def break_store() -> None:
        sv.sup.store.finished_before = broken
        sv.sup.store.delete_finished = broken
        clock.advance(2 * DAY)

    with caplog.at_level(logging.ERROR, logger="supervisor.retention"):
        sv.call(break_store)
        wait_for(
            lambda: any("retention: SQLite store x" in r.getMessage() for r in caplog.records),
            message="the error logged",
        )
    next_sweep = sv.call(lambda: sv.sup.loop.timers.deadline(TIMER) - clock.monotonic())
    assert next_sweep == pytest.approx(IDLE_INTERVAL)  # tried again later, not given up
    with pytest.raises(ClientError) as info:
        sv.client.delete(job_id)
    assert (info.value.status, info.value.code) == (503, "store_error")
    assert exists(sv, job_id)
    assert sv.wait(sv.client.submit("demo", {"actions": []}))["status"] == "completed"
