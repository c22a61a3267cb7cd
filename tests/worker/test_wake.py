"""The wake-up of the I/O thread: a wake() that races the thread's draining of its
socketpair is never lost (``_transport.py``, ``_drain_wakeups``)."""

from __future__ import annotations

import socket
import threading

import pytest

from jobvisor_worker import Session
from jobvisor_worker._options import resolve_options
from jobvisor_worker._transport import Transport
from tests.worker.fake_supervisor import FakeSupervisor


class RacingReader:
    """The read end of the wake socketpair, with a wake() from "another thread" landing
    in the middle of the drain: right after the I/O thread's first read."""

    def __init__(self, real: socket.socket, transport: Transport) -> None:
        self.real = real
        self.transport = transport
        self.raced = False

    def recv(self, size: int) -> bytes:
        try:
            return self.real.recv(size)
        finally:
            if not self.raced:
                self.raced = True
                self.transport.wake()


def _pending(reader: socket.socket) -> bool:
    try:
        return bool(reader.recv(4096))
    except BlockingIOError:
        return False


@pytest.mark.parametrize("woken_before", [False, True])
def test_a_wake_during_the_drain_leaves_a_byte_or_the_flag_down(
    fake: FakeSupervisor, woken_before: bool
) -> None:
    """After a drain that a wake() interrupted, the next wake() still reaches the thread:
    either a wake-up byte is still pending or the flag is down so the next one sends."""
    options = resolve_options({"env": fake.env()})  # type: ignore[typeddict-item]
    transport = Transport(
        Session(options.job_id, options.token), options, threading.Condition(), print
    )
    real = transport._wake_r
    try:
        if woken_before:
            transport.wake()
        transport._wake_r = RacingReader(real, transport)  # type: ignore[assignment]
        transport._drain_wakeups()
        assert transport._wake_r.raced  # type: ignore[attr-defined]
        transport._wake_r = real
        if transport._wake_pending:
            assert _pending(real), "the flag is up with nothing to wake the thread"
        else:
            transport.wake()
            assert _pending(real)
    finally:
        transport._wake_r = real
        transport._selector.close()
        real.close()
        transport._wake_w.close()
