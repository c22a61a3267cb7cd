"""The caller writes when the I/O thread cannot (``_transport.py``, "A busy caller"):
with the I/O thread held inside its ``select``, as a thread waiting for the GIL or for
the job's lock would be, progress and logs still reach the (fake) supervisor, in order,
once nothing was written for ``CALLER_FLUSH_AFTER``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from jobvisor_worker import Job, connect
from jobvisor_worker._transport import CALLER_FLUSH_AFTER
from protocol import Log, Progress
from tests.worker.fake_supervisor import FakeSupervisor


class Parked:
    """Holds the I/O thread in its next ``select`` until ``release``."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.transport = job._transport
        self.inside = threading.Event()
        self._gate = threading.Event()
        self._select = self.transport._selector.select

        def select(timeout: float | None = None) -> Any:
            self.inside.set()
            self._gate.wait(30)
            return self._select(timeout)

        self.transport._selector.select = select  # type: ignore[method-assign]
        self.transport.wake()  # out of the select it is in, into this one

    def release(self) -> None:
        self._gate.set()

    def idle_long_enough(self) -> bool:
        transport = self.transport
        return transport._clock() - transport._last_flush >= CALLER_FLUSH_AFTER


@pytest.fixture
def parked(fake: FakeSupervisor) -> Iterator[Parked]:
    """A connected job whose I/O thread is parked, with nothing written for a while."""
    fake.heartbeat_interval = 60.0  # no heartbeat during the test: only what it queues
    with connect(env=fake.env()) as job:
        fake.wait_message("started")
        parked = Parked(job)
        fake.wait_for(parked.inside.is_set, what="the I/O thread in select")
        fake.wait_for(parked.idle_long_enough, what="CALLER_FLUSH_AFTER without a write")
        try:
            yield parked
        finally:
            parked.release()


def test_progress_reaches_the_supervisor_while_the_io_thread_is_held(
    fake: FakeSupervisor, parked: Parked
) -> None:
    """A progress queued while the I/O thread cannot run is written by the caller."""
    job = parked.job
    job.progress(42, "from the caller", step=1)
    fake.wait_for(
        lambda: any(p.message == "from the caller" for p in fake.messages_of(Progress)),
        what="the caller's progress",
    )
    assert not parked._gate.is_set()  # still held: the caller wrote it


def test_logs_and_progress_keep_their_order_when_the_caller_writes(
    fake: FakeSupervisor, parked: Parked
) -> None:
    """What the caller writes is what the I/O thread would have: the latest progress, then
    the logs oldest first; what the caller queues meanwhile goes out after it."""
    job = parked.job
    job.info("first")
    fake.wait_for(lambda: fake.messages_of(Log), what="the first log")
    job.info("second")  # queued (or written here, if CALLER_FLUSH_AFTER passed already)
    parked.release()  # the I/O thread writes it
    fake.wait_for(lambda: len(fake.messages_of(Log)) == 2, what="the second log")
    assert [log.message for log in fake.messages_of(Log)] == ["first", "second"]
