"""The socket layer reports upward, and never into a caller that is still on the stack."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

import protocol
from supervisor.channels import JobListener, WorkerConn
from supervisor.clock import ManualClock
from supervisor.loop import Loop
from supervisor.metrics import Counters


class Owner:
    def __init__(self) -> None:
        self.counters = Counters()
        self.heard: list[str] = []

    def on_worker_messages(self, conn: WorkerConn[object], messages: list[object]) -> None:
        self.heard += [type(m).__name__ for m in messages]

    def on_worker_closed(self, conn: WorkerConn[object]) -> None:
        self.heard.append("closed")

    def on_worker_accepted(self, conn: WorkerConn[object]) -> None:
        self.heard.append("accepted")


@pytest.fixture
def setup() -> Iterator[tuple[Loop, Owner, WorkerConn[object], socket.socket]]:
    loop = Loop(ManualClock())
    owner = Owner()
    listening = socket.socket(socket.AF_INET)
    listening.bind(("127.0.0.1", 0))
    listening.listen()
    listener: JobListener[object] = JobListener(loop, listening, "job", owner, 1 << 20)
    ours, peer = socket.socketpair()
    ours.setblocking(False)
    conn: WorkerConn[object] = WorkerConn(loop, ours, listener, owner, 1 << 20)
    yield loop, owner, conn, peer
    listener.close()
    peer.close()
    loop.close()


def test_a_close_is_reported_from_the_ready_queue_not_from_close(setup):
    """Whoever closes a connection, its owner hears of it in the loop's next ready phase."""
    loop, owner, conn, _peer = setup
    conn.close("closed by its owner")
    assert owner.heard == []
    loop.run_once(timeout=0)
    assert owner.heard == ["closed"]


def test_drain_returns_what_a_dead_worker_wrote_instead_of_handing_it_on(setup):
    """drain() gives the caller the last messages; the owner is not called meanwhile."""
    _loop, owner, conn, peer = setup
    peer.sendall(protocol.encode(protocol.Heartbeat()) + protocol.encode(protocol.Failed("x")))
    peer.close()
    messages = conn.drain()
    assert [type(m).__name__ for m in messages] == ["Heartbeat", "Failed"]
    assert owner.heard == [] and not conn.closed  # the caller closes it when it is done
