"""The JobTable's pending queue: FIFO by seq across kinds, per-kind limits, lazy skips."""

from __future__ import annotations

from collections import Counter

from supervisor.records import JobRecord
from supervisor.states import JobStatus
from supervisor.table import JobTable
from tests.supervisor.unit.factories import make_job


def enqueue(table: JobTable, name: str) -> JobRecord:
    """A new pending job of kind ``name``, with the table's next seq (as enqueue does)."""
    job = make_job(name=name, seq=table.next_seq())
    table.insert(job)
    return job


def start_next(
    table: JobTable,
    *,
    free: int = 10,
    limits: dict[str, int | None] | None = None,
    busy: Counter[str] | None = None,
    skip: frozenset[str] = frozenset(),
) -> JobRecord | None:
    """Pick the next job as the supervisor does, take it off the queue and mark it running."""
    job = table.next_startable(free, limits or {}, busy if busy is not None else Counter(), skip)
    if job is not None:
        table.dequeue(job)
        table.set_status(job, JobStatus.RUNNING)
    return job


def _pending(table: JobTable) -> int:
    return sum(1 for job in table if job.status is JobStatus.PENDING)


def drain(table: JobTable) -> list[JobRecord]:
    started = []
    while (job := start_next(table)) is not None:
        started.append(job)
    return started


def test_jobs_start_in_seq_order_across_kinds():
    """Pending jobs of different kinds start oldest first, interleaved by seq."""
    table = JobTable()
    jobs = [enqueue(table, name) for name in ["a", "b", "a", "c", "b", "a"]]
    assert _pending(table) == 6
    assert drain(table) == jobs
    assert _pending(table) == 0


def test_no_free_slot_starts_nothing():
    """With no global slot free, nothing is startable."""
    table = JobTable()
    enqueue(table, "a")
    assert table.next_startable(0, {}, Counter(), frozenset()) is None
    assert table.next_startable(-1, {}, Counter(), frozenset()) is None


def test_a_kind_at_its_limit_does_not_block_other_kinds():
    """When the oldest job's kind is saturated, the oldest job of another kind starts."""
    table = JobTable()
    a1, a2, b1 = enqueue(table, "a"), enqueue(table, "a"), enqueue(table, "b")
    limits: dict[str, int | None] = {"a": 1, "b": None}
    assert start_next(table, limits=limits, busy=Counter({"a": 1})) is b1
    assert start_next(table, limits=limits, busy=Counter({"a": 1, "b": 1})) is None
    assert start_next(table, limits=limits, busy=Counter()) is a1
    assert start_next(table, limits=limits, busy=Counter()) is a2


def test_a_kind_without_a_limit_is_bounded_only_by_free_slots():
    """A kind with limit None (or absent from the limits) takes any free slot."""
    table = JobTable()
    a1 = enqueue(table, "a")
    assert start_next(table, limits={"a": None}, busy=Counter({"a": 100})) is a1


def test_skipped_jobs_wait_while_others_start():
    """Jobs in the skip set are passed over, later jobs (of any kind) start instead."""
    table = JobTable()
    a1, b1, a2 = enqueue(table, "a"), enqueue(table, "b"), enqueue(table, "a")
    skip = frozenset({a1.id})
    assert start_next(table, skip=skip) is b1
    assert start_next(table, skip=skip) is a2
    assert start_next(table, skip=skip) is None
    assert a1.status is JobStatus.PENDING
    assert start_next(table) is a1


def test_cancelled_jobs_are_skipped_and_dropped_lazily():
    """A cancelled pending job is never started, and leaves the queue when passed over."""
    table = JobTable()
    a1, a2, b1 = enqueue(table, "a"), enqueue(table, "a"), enqueue(table, "b")
    table.set_status(a1, JobStatus.CANCELLED)
    assert _pending(table) == 2
    assert start_next(table) is a2
    assert start_next(table) is b1
    assert start_next(table) is None
    assert table._pending == {}  # stale heads were dropped with the last dequeue


def test_a_job_re_entering_pending_goes_to_the_back():
    """A retried job (running -> scheduled -> pending) gets a new seq behind waiting jobs."""
    table = JobTable()
    first = enqueue(table, "a")
    assert start_next(table) is first
    waiting = [enqueue(table, "a"), enqueue(table, "b")]
    old_seq = first.seq
    table.set_status(first, JobStatus.SCHEDULED)
    table.set_status(first, JobStatus.PENDING)
    assert first.seq > max(job.seq for job in waiting) > old_seq
    assert drain(table) == [*waiting, first]


def test_jobs_loaded_out_of_seq_order_still_start_in_seq_order():
    """Jobs read back from a store in any order are queued by their stored seq."""
    table = JobTable()
    jobs = {seq: make_job(name="a" if seq % 2 else "b", seq=seq) for seq in [7, 3, 9, 1, 4, 8]}
    for seq in [7, 3, 9, 1, 4, 8]:
        table.load(jobs[seq])
    assert [job.seq for job in drain(table)] == [1, 3, 4, 7, 8, 9]


def test_next_seq_continues_after_loaded_jobs():
    """After loading, new jobs get a seq above every loaded one, so they queue behind."""
    table = JobTable()
    table.load(make_job(seq=41))
    table.load(make_job(seq=5))
    assert table.next_seq() == 42
    newer = enqueue(table, "kind")
    assert [job.seq for job in drain(table)] == [5, 41, newer.seq]


def test_scheduled_jobs_are_not_in_the_queue():
    """A scheduled job waits for its run_at, not for a slot, until it becomes pending."""
    table = JobTable()
    later = make_job(status=JobStatus.SCHEDULED, seq=table.next_seq())
    table.insert(later)
    assert _pending(table) == 0
    assert start_next(table) is None
    table.set_status(later, JobStatus.PENDING)
    assert start_next(table) is later
