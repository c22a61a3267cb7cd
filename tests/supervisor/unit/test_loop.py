"""The event loop's phases and promises (supervisor/loop.py), on a manual clock."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from supervisor.clock import ManualClock
from supervisor.errors import StoreError
from supervisor.loop import MAX_SLEEP, Loop, Outgoing


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def loop(clock: ManualClock) -> Iterator[Loop]:
    loop = Loop(clock)
    yield loop
    loop.close()


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    a.setblocking(False)
    yield a, b
    a.close()
    b.close()


class Writer:
    """Stands in for a connection whose buffered bytes go out after the commit."""

    def __init__(self, order: list[str], name: str = "flush") -> None:
        self.order = order
        self.name = name

    def release(self) -> None:
        pass

    def drop_held(self) -> None:
        pass

    def flush(self) -> None:
        self.order.append(self.name)


class Conn(Outgoing):
    """A real connection's output side, as worker and HTTP connections have it."""

    __slots__ = ("loop", "sock")

    def __init__(self, loop: Loop, sock: socket.socket) -> None:
        super().__init__()
        self.loop = loop
        self.sock = sock
        loop.add_reader(sock, self._on_io)

    def write(self, data: bytes) -> None:
        self._out += data
        self.loop.want_flush(self)

    def flush(self) -> None:
        self.write_out()


def received(sock: socket.socket) -> bytes:
    sock.setblocking(False)
    try:
        return sock.recv(65536)
    except BlockingIOError:
        return b""


def test_one_iteration_runs_its_phases_in_order(loop, clock, pair):
    """I/O handlers, due timers, thread-safe calls, ready work, commit, then outputs."""
    order: list[str] = []
    reader, sender = pair

    def on_readable(mask: int) -> None:
        reader.recv(100)
        order.append("io")

    def ready() -> None:
        order.append("ready")
        loop.after_commit(lambda: order.append("after_commit"))
        loop.want_flush(Writer(order))

    loop.add_reader(reader, on_readable)
    loop.commit = lambda: order.append("commit")
    loop.call_soon(ready)
    loop.call_threadsafe(lambda: order.append("threadsafe"))
    loop.call_at("due", clock.monotonic(), lambda: order.append("timer"))
    sender.send(b"x")
    loop.run_once()
    assert order == [
        "io",
        "timer",
        "threadsafe",
        "ready",
        "commit",
        "after_commit",
        "commit",
        "flush",
    ]


def test_work_queued_by_ready_work_waits_for_the_next_iteration(loop):
    """A callback scheduled with call_soon during the ready phase runs one iteration later."""
    ran: list[str] = []
    loop.call_soon(lambda: loop.call_soon(lambda: ran.append("second")))
    loop.run_once(timeout=0)
    assert ran == []
    loop.run_once(timeout=0)
    assert ran == ["second"]


def test_timers_fire_when_the_manual_clock_reaches_them(loop, clock):
    """A timer fires only once the injected clock has passed its deadline, never twice."""
    fired: list[str] = []
    loop.call_later("t", 10.0, lambda: fired.append("t"))
    loop.run_once(timeout=0)
    clock.advance(9.999)
    loop.run_once(timeout=0)
    assert fired == []
    clock.advance(0.001)
    loop.run_once(timeout=0)
    loop.run_once(timeout=0)
    assert fired == ["t"]


def test_cancelled_timer_never_fires(loop, clock):
    """cancel_timer removes a pending deadline."""
    fired: list[str] = []
    loop.call_later("t", 1.0, lambda: fired.append("t"))
    loop.cancel_timer("t")
    clock.advance(5)
    loop.run_once(timeout=0)
    assert fired == []


def test_select_timeout_is_the_next_deadline(loop, clock):
    """Idle, the loop sleeps until the nearest deadline (capped), and not at all when busy."""
    assert loop._timeout() == MAX_SLEEP
    loop.call_later("far", 3600.0, lambda: None)
    assert loop._timeout() == MAX_SLEEP
    loop.call_later("near", 2.5, lambda: None)
    assert loop._timeout() == 2.5
    clock.advance(4)
    assert loop._timeout() == 0.0
    loop.cancel_timer("near")
    dirty = True
    loop.busy = lambda: dirty
    assert loop._timeout() == 0.0
    dirty = False
    assert loop._timeout() == MAX_SLEEP
    loop.call_soon(lambda: None)
    assert loop._timeout() == 0.0


def test_hard_work_created_after_a_commit_is_committed_before_bytes_leave(loop):
    """after_commit callbacks that change state cause another commit before writers flush."""
    order: list[str] = []
    dirty = False

    def commit() -> None:
        nonlocal dirty
        order.append(f"commit(dirty={dirty})")
        dirty = False

    def subscriber() -> None:
        nonlocal dirty
        order.append("subscriber")
        dirty = True  # e.g. an event subscriber cancels a job
        loop.after_commit(lambda: order.append("second-wave"))

    def handler() -> None:
        nonlocal dirty
        dirty = True
        loop.after_commit(subscriber)
        loop.want_flush(Writer(order))

    loop.commit = commit
    loop.busy = lambda: dirty
    loop.call_soon(handler)
    loop.run_once(timeout=0)
    assert order == [
        "commit(dirty=True)",
        "subscriber",
        "commit(dirty=True)",
        "second-wave",
        "commit(dirty=False)",
        "flush",
    ]
    assert not dirty


def test_a_writer_asked_to_flush_twice_flushes_once(loop):
    """want_flush collects writers; each flushes once per iteration."""
    order: list[str] = []
    writer = Writer(order)
    loop.call_soon(lambda: (loop.want_flush(writer), loop.want_flush(writer)))
    loop.run_once(timeout=0)
    assert order == ["flush"]
    loop.run_once(timeout=0)
    assert order == ["flush"]


def test_call_threadsafe_wakes_a_blocked_loop_promptly(loop):
    """A loop asleep in select (30 s cap) wakes as soon as another thread hands it work."""
    ran_on: list[int] = []
    assert loop._timeout() == MAX_SLEEP
    poker = threading.Timer(
        0.2, lambda: loop.call_threadsafe(lambda: ran_on.append(threading.get_ident()))
    )
    began = time.monotonic()
    poker.start()
    try:
        loop.run_once()
    finally:
        poker.join()
    assert time.monotonic() - began < 5.0
    assert ran_on == [threading.get_ident()]


def test_stop_from_another_thread_ends_run_forever(loop):
    """stop() wakes the loop and run_forever returns."""
    runner = threading.Thread(target=loop.run_forever)
    runner.start()
    time.sleep(0.1)
    began = time.monotonic()
    loop.call_threadsafe(loop.stop)
    runner.join(timeout=5)
    assert not runner.is_alive()
    assert time.monotonic() - began < 5.0
    assert loop.stopping


def test_a_failing_handler_is_logged_and_the_loop_carries_on(loop, clock, pair, caplog):
    """An exception in an I/O handler, timer or callback is logged; other work still runs."""
    reader, sender = pair
    ran: list[str] = []

    def broken_io(mask: int) -> None:
        reader.recv(100)
        raise RuntimeError("io handler bug")

    def broken_timer() -> None:
        raise ValueError("timer bug")

    def broken_soon() -> None:
        raise KeyError("soon bug")

    loop.add_reader(reader, broken_io)
    loop.call_at("t", clock.monotonic(), broken_timer)
    loop.call_soon(broken_soon)
    loop.call_soon(lambda: ran.append("after the failures"))
    loop.commit = lambda: ran.append("commit")
    sender.send(b"x")
    with caplog.at_level(logging.ERROR, logger="supervisor.loop"):
        loop.run_once()
    assert ran == ["after the failures", "commit"]
    logged = [r for r in caplog.records if "carrying on" in r.getMessage()]
    assert [type(r.exc_info[1]) for r in logged if r.exc_info] == [
        RuntimeError,
        ValueError,
        KeyError,
    ]
    loop.call_soon(lambda: ran.append("next iteration"))
    loop.run_once(timeout=0)
    assert ran[-2:] == ["next iteration", "commit"]


def test_a_store_error_from_commit_propagates_and_releases_nothing(loop):
    """When the commit fails, run_once raises StoreError and no output is released."""
    released: list[str] = []

    def commit() -> None:
        raise StoreError("disk on fire")

    loop.commit = commit
    loop.call_soon(
        lambda: (
            loop.after_commit(lambda: released.append("event")),
            loop.want_flush(Writer(released)),
        )
    )
    with pytest.raises(StoreError, match="disk on fire"):
        loop.run_once(timeout=0)
    assert released == []


def test_a_store_error_from_a_handler_propagates(loop):
    """A StoreError raised by any callback stops the loop instead of being swallowed."""

    def handler() -> None:
        raise StoreError("cannot read")

    loop.call_soon(handler)
    with pytest.raises(StoreError, match="cannot read"):
        loop.run_once(timeout=0)


def test_bulk_sources_share_a_budget_round_robin_and_others_never_wait(loop: Loop):
    """Busy worker sockets get IO_BUDGET per iteration in turn; a control socket every time."""
    from supervisor import loop as loop_module

    pairs = [socket.socketpair() for _ in range(12)]
    served: list[int] = []
    control_hits = 0

    def slow(index: int):
        def handle(mask: int) -> None:
            served.append(index)
            time.sleep(loop_module.IO_BUDGET / 3)  # three of these fill a budget

        return handle

    def control(mask: int) -> None:
        nonlocal control_hits
        control_hits += 1

    try:
        for index, (a, b) in enumerate(pairs):
            b.send(b"x")  # stays readable: the handler never reads it
            loop.add_reader(a, slow(index), bulk=True)
        ctrl_a, ctrl_b = socket.socketpair()
        ctrl_b.send(b"x")
        loop.add_reader(ctrl_a, control)
        iterations = 0
        most = 0
        while len(set(served)) < 12 and iterations < 40:
            before = len(served)
            loop.run_once(timeout=0)
            iterations += 1
            most = max(most, len(served) - before)
        assert control_hits == iterations  # served in every iteration, however busy the rest
        assert most < 6  # the budget cut each iteration short
        assert iterations <= 12  # round-robin: each iteration reaches at least one new socket
        ctrl_a.close()
        ctrl_b.close()
    finally:
        for a, b in pairs:
            loop.remove(a)
            a.close()
            b.close()


def test_bytes_held_for_a_failed_commit_never_leave_even_through_a_close_path_flush(loop, pair):
    """After a failed commit, held bytes are dropped: a later flush sends nothing of them."""
    ours, peer = pair
    conn = Conn(loop, ours)
    failing = True

    def commit() -> None:
        if failing:
            raise StoreError("disk full")

    loop.commit = commit
    loop.call_soon(lambda: conn.write(b"201 for a job the store never got"))
    with pytest.raises(StoreError):
        loop.run_once(timeout=0)
    conn.flush()  # what a close path does before closing
    assert received(peer) == b""
    failing = False
    loop.call_soon(lambda: conn.write(b"committed"))
    loop.run_once(timeout=0)
    assert received(peer) == b"committed"


def test_bytes_written_in_an_iteration_leave_only_after_its_commit(loop, pair):
    """A flush before the iteration's commit (a close path, a write event) sends nothing."""
    ours, peer = pair
    conn = Conn(loop, ours)
    seen_at_commit: list[bytes] = []

    def handler() -> None:
        conn.write(b"ack")
        conn.flush()  # e.g. the connection is closed by a later handler of the iteration

    loop.commit = lambda: seen_at_commit.append(received(peer))
    loop.call_soon(handler)
    loop.run_once(timeout=0)
    assert seen_at_commit == [b""]
    assert received(peer) == b"ack"
