"""The Job API in this process (threads, blocking behaviour), against the fake supervisor.

Only paths that cannot end the process run here: the fake always welcomes, and the
give-up window is the default minute.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from jobvisor_worker import Job, JobClosed, connect
from protocol import Log, Progress
from tests.worker.fake_supervisor import FakeSupervisor


@pytest.fixture
def job(fake: FakeSupervisor) -> Iterator[Job]:
    """A Job connected in-process to the fake supervisor."""
    fake.data = {"in": "process"}
    with connect(env=fake.env(JOBVISOR_HEARTBEAT_INTERVAL="5")) as job:
        yield job


def _io_threads() -> int:
    return sum(t.name == "jobvisor-io" for t in threading.enumerate())


def test_connect_returns_a_welcomed_job(fake, job):
    """connect() returns once welcomed, with the job's identity and payload."""
    assert (job.id, job.name, job.data, job.attempt) == ("job-1", "test-job", {"in": "process"}, 1)
    fake.wait_message("started")


def test_welcome_heartbeat_interval_wins_over_the_environment(fake, job):
    """The env said 5 s, the welcome says 0.1 s: heartbeats follow the welcome."""
    fake.wait_message("heartbeat", count=3, timeout=5)


def test_reports_from_many_threads_all_arrive_in_order(fake):
    """progress and logs may be called from any thread; nothing is lost or reordered."""
    fake_threads, per_thread = 8, 200
    with connect(env=fake.env(), max_buffered_logs=100_000) as job:

        def report(n: int) -> None:
            for i in range(per_thread):
                job.info(f"t{n}", i=i)
                job.progress(i * 100 / per_thread)

        threads = [threading.Thread(target=report, args=(n,)) for n in range(fake_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        fake.wait_message("log", count=fake_threads * per_thread)
        # Every thread's last report is the same, so whatever the interleaving it is the
        # latest progress, and the latest progress is always sent.
        last = (per_thread - 1) * 100 / per_thread
        fake.wait_for(
            lambda: (sent := fake.messages_of(Progress)) and sent[-1].percent == last,
            what="the last progress",
        )
    by_thread: dict[str, list[int]] = {}
    for log in fake.messages_of(Log):
        by_thread.setdefault(log.message, []).append(log.data["i"])
    assert by_thread == {f"t{n}": list(range(per_thread)) for n in range(fake_threads)}


def test_reporting_never_blocks_while_disconnected(fake, job):
    """With the supervisor gone, progress and logs return at once and are replayed later."""
    fake.wait_message("started")
    fake.go_down()
    started = time.monotonic()
    for i in range(500):
        job.progress(i / 5, f"p{i}")
        job.debug("d", i=i)
    assert time.monotonic() - started < 2.0
    fake.reopen_listener()
    fake.wait_message("log", conn=1, count=500)
    assert [log.data["i"] for log in fake.messages_of(Log, conn=1)] == list(range(500))
    assert [p.message for p in fake.messages_of(Progress, conn=1)] == ["p499"]


def test_complete_times_out_without_an_ack(fake, job):
    """complete(timeout=...) raises TimeoutError when the supervisor does not ack."""
    with pytest.raises(TimeoutError):
        job.complete("r", timeout=0.2)
    assert job.outcome == "completed"


def test_complete_returns_after_ack(fake, job):
    """complete() returns once the ack arrived."""
    threading.Timer(0.2, fake.send_ack).start()
    started = time.monotonic()
    job.complete({"done": True})
    assert time.monotonic() - started >= 0.15


def test_on_cancel_after_cancel_runs_at_once(fake, job):
    """A callback registered after the cancel arrived is called immediately."""
    fake.wait_message("started")
    fake.send_cancel("late")
    assert job.cancel_event.wait(5)
    assert job.cancelled
    assert job.cancel_reason == "late"
    calls = []
    job.on_cancel(lambda: calls.append(1))
    assert calls == [1]


def test_close_stops_the_io_thread_and_later_outcomes_raise(fake):
    """close() is idempotent, ends the I/O thread, and complete() afterwards raises."""
    before = _io_threads()
    job = connect(env=fake.env())
    assert _io_threads() == before + 1
    job.close()
    job.close()
    assert _io_threads() == before
    job.info("ignored after close")
    with pytest.raises(JobClosed):
        job.complete(None)
