"""The state machines of supervisor/states.py, as enforced by JobTable, pair by pair."""

from __future__ import annotations

import pytest

from supervisor.errors import IllegalTransition
from supervisor.states import (
    ACTIVE,
    PROCESS_TRANSITIONS,
    STATUS_TRANSITIONS,
    TERMINAL,
    JobStatus,
    ProcessState,
)
from supervisor.table import JobTable
from tests.supervisor.unit.factories import make_job

STATUS_PAIRS = [(old, new) for old in JobStatus for new in JobStatus]
PROCESS_PAIRS = [(old, new) for old in [None, *ProcessState] for new in ProcessState]


def pair_id(pair: tuple[object, object]) -> str:
    old, new = pair
    return f"{old}->{new}"


def test_the_tables_cover_every_state():
    """Each status and each process state (plus "no process") has a row in its table."""
    assert set(STATUS_TRANSITIONS) == set(JobStatus)
    assert set(PROCESS_TRANSITIONS) == {None, *ProcessState}
    assert set(JobStatus) == TERMINAL | ACTIVE and not TERMINAL & ACTIVE


@pytest.mark.parametrize(("old", "new"), STATUS_PAIRS, ids=[pair_id(p) for p in STATUS_PAIRS])
def test_set_status_allows_exactly_the_table(old, new):
    """set_status accepts a pair iff STATUS_TRANSITIONS lists it, else names job and states."""
    table = JobTable()
    job = make_job(status=old)
    table.load(job)
    if new in STATUS_TRANSITIONS[old]:
        table.set_status(job, new, error={"message": "changed"})
        assert job.status is new
        assert job.error == {"message": "changed"}
        assert table.has_pending_changes(job.id)
    else:
        with pytest.raises(IllegalTransition) as info:
            table.set_status(job, new, error={"message": "changed"})
        message = str(info.value)
        assert job.id in message and str(old) in message and str(new) in message
        assert job.status is old
        assert job.error is None  # nothing applied
        assert not table.has_pending_changes(job.id)


@pytest.mark.parametrize(("old", "new"), PROCESS_PAIRS, ids=[pair_id(p) for p in PROCESS_PAIRS])
def test_set_process_state_allows_exactly_the_table(old, new):
    """set_process_state accepts a pair iff PROCESS_TRANSITIONS lists it (self-moves too)."""
    table = JobTable()
    job = make_job(status=JobStatus.RUNNING, process_state=old)
    table.load(job)
    if new in PROCESS_TRANSITIONS[old]:
        table.set_process_state(job, new, pid=4242)
        assert job.process_state is new
        assert job.pid == 4242
        assert table.has_pending_changes(job.id)
    else:
        with pytest.raises(IllegalTransition) as info:
            table.set_process_state(job, new, pid=4242)
        message = str(info.value)
        assert job.id in message and str(old) in message and str(new) in message
        assert job.process_state is old
        assert job.pid is None
        assert not table.has_pending_changes(job.id)


@pytest.mark.parametrize("status", sorted(TERMINAL))
def test_terminal_statuses_have_no_way_out_but_a_manual_retry(status):
    """A finished job never changes status again, except that a failed or cancelled one
    may be queued again (pending) by a manual retry."""
    reopenable = status in (JobStatus.FAILED, JobStatus.CANCELLED)
    assert STATUS_TRANSITIONS[status] == (
        frozenset({JobStatus.PENDING}) if reopenable else frozenset()
    )
    table = JobTable()
    job = make_job(status=status)
    table.load(job)
    for new in JobStatus:
        if reopenable and new is JobStatus.PENDING:
            continue
        with pytest.raises(IllegalTransition):
            table.set_status(job, new)
    assert job.status is status


@pytest.mark.parametrize("status", list(JobStatus))
def test_insert_accepts_only_pending_or_scheduled(status):
    """A brand-new job enters as pending or scheduled and is then dirty; nothing else enters."""
    table = JobTable()
    job = make_job(status=status)
    if status in (JobStatus.PENDING, JobStatus.SCHEDULED):
        table.insert(job)
        assert table.get(job.id) is job
        assert table.take_hard() == [job]
    else:
        with pytest.raises(IllegalTransition, match=f"{job.id} cannot enter as {status}"):
            table.insert(job)
        assert table.get(job.id) is None
        assert not table.has_hard_changes


def test_a_job_id_enters_the_table_only_once():
    """Inserting or loading an id that is already in the table is refused."""
    table = JobTable()
    job = make_job()
    table.insert(job)
    with pytest.raises(IllegalTransition, match="already in the table"):
        table.load(make_job(id=job.id))


def test_update_refuses_state_fields():
    """update() changes plain fields (hard) but never status or process_state."""
    table = JobTable()
    job = make_job(status=JobStatus.RUNNING)
    table.load(job)
    table.update(job, pid=7)
    assert job.pid == 7 and table.has_hard_changes
    for field in ("status", "process_state"):
        with pytest.raises(IllegalTransition, match="set_status / set_process_state"):
            table.update(job, **{field: None})


@pytest.mark.parametrize("status", sorted(ACTIVE))
def test_forget_refuses_active_jobs(status):
    """Pending, scheduled and running jobs stay in memory whatever forget() is asked."""
    table = JobTable()
    job = make_job(status=status)
    table.load(job)
    with pytest.raises(IllegalTransition, match=f"job {job.id} is {status}"):
        table.forget(job.id)
    assert table.get(job.id) is job


@pytest.mark.parametrize("grade", ["hard", "soft"])
def test_forget_refuses_jobs_with_uncommitted_changes(grade):
    """A finished job with hard or soft changes not yet taken for a commit stays."""
    table = JobTable()
    job = make_job(status=JobStatus.RUNNING)
    table.load(job)
    table.set_status(job, JobStatus.COMPLETED, result=1)
    if grade == "soft":
        table.take_hard()
        table.touch(job)
    with pytest.raises(IllegalTransition, match=f"job {job.id} has uncommitted changes"):
        table.forget(job.id)
    assert table.get(job.id) is job


def test_forget_drops_a_clean_finished_job_and_ignores_unknown_ids():
    """Once its changes are taken, a finished job leaves; forgetting it again is harmless."""
    table = JobTable()
    job = make_job(status=JobStatus.RUNNING)
    table.load(job)
    table.set_status(job, JobStatus.FAILED)
    table.take_hard()
    table.forget(job.id)
    assert table.get(job.id) is None and len(table) == 0
    table.forget(job.id)
    table.forget("no-such-job")


def test_take_hard_carries_soft_changes_along():
    """A job with hard changes is written whole, so its soft dirt is not written twice."""
    table = JobTable()
    a, b = make_job(status=JobStatus.RUNNING), make_job(status=JobStatus.RUNNING)
    table.load(a)
    table.load(b)
    table.touch(a)
    table.touch(b)
    table.update(b, pid=9)
    assert table.take_hard() == [b]
    assert not table.has_hard_changes
    assert table.take_soft() == [a]
    assert not table.has_soft_changes
    assert table.take_hard() == [] and table.take_soft() == []


def test_soft_changes_are_not_hard():
    """touch() marks soft dirt only: the loop need not commit at once."""
    table = JobTable()
    job = make_job(status=JobStatus.RUNNING)
    table.load(job)
    table.touch(job)
    assert table.has_soft_changes and not table.has_hard_changes
    assert table.has_pending_changes(job.id)


def test_restore_puts_taken_changes_back():
    """After a failed commit, restore() makes the same jobs dirty again, with their grades."""
    table = JobTable()
    a, b = make_job(status=JobStatus.RUNNING), make_job(status=JobStatus.RUNNING)
    table.load(a)
    table.load(b)
    table.update(a, pid=1)
    table.touch(b)
    hard, soft = table.take_hard(), table.take_soft()
    assert not table.has_pending_changes(a.id) and not table.has_pending_changes(b.id)
    table.restore(hard, soft)
    assert table.take_hard() == [a]
    assert table.take_soft() == [b]


def test_restore_keeps_changes_made_since_the_take():
    """Changes made between a take and a restore are kept, each job listed once."""
    table = JobTable()
    a = make_job(status=JobStatus.RUNNING)
    table.load(a)
    table.update(a, pid=1)
    hard = table.take_hard()
    table.update(a, pid=2)
    table.restore(hard, [])
    assert table.take_hard() == [a]
    assert a.pid == 2
