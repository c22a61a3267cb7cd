"""The I/O thread in this process against the fake supervisor: the handshake timeout.

The transport runs with a short handshake timeout and a ``stop`` that records instead of
exiting, so the paths that end a real worker can be watched from the test.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from jobvisor_worker import EXIT_UNREACHABLE, Event, Session, Welcomed
from jobvisor_worker._options import resolve_options
from jobvisor_worker._transport import Transport
from tests.worker.fake_supervisor import FakeSupervisor

# Far below the 10 s default, and the waits below give up after 5 s: a transport that
# ignored its handshake_timeout could not pass.
HANDSHAKE = 0.3


@dataclass
class Run:
    """A running transport and what it reported."""

    cond: threading.Condition
    transport: Transport = field(init=False)
    events: list[Event] = field(default_factory=list)
    stops: list[tuple[int, str, float]] = field(default_factory=list)  # code, reason, when

    def wait_stopped(self, timeout: float = 5.0) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: self.transport.stopped, timeout), "still running"


@contextmanager
def running(fake: FakeSupervisor, **knobs: Any) -> Iterator[Run]:
    options = resolve_options({"env": fake.env(), **knobs})  # type: ignore[typeddict-item]
    cond = threading.Condition()
    run = Run(cond)

    def stop(code: int, reason: str) -> None:
        run.stops.append((code, reason, time.monotonic()))

    run.transport = Transport(
        Session(options.job_id, options.token),
        options,
        cond,
        run.events.append,
        stop=stop,
        handshake_timeout=HANDSHAKE,
    )
    run.transport.start()
    try:
        yield run
    finally:
        run.transport.close()


def test_unanswered_hello_is_abandoned_after_the_timeout_and_retried(fake):
    """A supervisor that accepts but never answers hello is left; the next attempt is welcomed."""
    fake.ignore_hellos(times=1)
    begun = time.monotonic()
    with running(fake) as run:
        fake.wait_message("started", conn=1, timeout=5)
        silent = fake.connections[0]
        # The fake never closes a connection first: closed_at is the worker hanging up.
        assert silent.closed_at is not None
        assert silent.closed_at - begun >= HANDSHAKE
        assert [r.type for r in fake.messages(conn=0)] == ["hello"]
        assert [type(e) for e in run.events] == [Welcomed]
        assert run.stops == []


def test_unanswered_hellos_count_toward_giving_up(fake):
    """Unanswered hellos are failed attempts: after the give-up window the job stops with 75."""
    fake.ignore_hellos()
    begun = time.monotonic()
    with running(fake, reconnect_interval=0.05, max_reconnect_attempts=10) as run:  # 0.5 s
        run.wait_stopped()
    ((code, reason, at),) = run.stops
    assert code == EXIT_UNREACHABLE
    assert f"no answer to hello within {HANDSHAKE:g} s" in reason
    assert at - begun >= 0.5
    assert run.events == []
    assert len(fake.messages("hello")) >= 2  # the silent supervisor was tried again
    assert {r.type for r in fake.messages()} == {"hello"}


def test_the_welcomes_schedule_replaces_the_options(fake):
    """After a welcome the worker gives up on the supervisor's give_up_after, not its own."""
    fake.reconnect_interval, fake.give_up_after = 0.05, 0.4
    # Its own options say a minute; the supervisor says 0.4 s and must be obeyed.
    with running(fake, reconnect_interval=2.0, max_reconnect_attempts=30) as run:
        fake.wait_message("started")
        fake.go_down()
        lost = time.monotonic()
        run.wait_stopped()
    ((code, reason, at),) = run.stops
    assert code == EXIT_UNREACHABLE
    assert "for 0.4 s" in reason
    assert at - lost >= 0.4


def test_until_a_welcome_the_options_schedule_applies(fake):
    """A worker never welcomed keeps its own give-up window, whatever a fake would send."""
    fake.give_up_after = 60.0
    fake.close_listener()
    with running(fake, reconnect_interval=0.05, max_reconnect_attempts=6) as run:  # 0.3 s
        run.wait_stopped()
    ((code, reason, _at),) = run.stops
    assert code == EXIT_UNREACHABLE
    assert "for 0.3 s" in reason
