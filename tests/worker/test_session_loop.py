"""Sessions driven without threads: many of them from one selectors loop, as a benchmark does."""

from __future__ import annotations

import selectors
import socket
import time

from jobvisor_worker import Acked, Session, Welcomed
from protocol import Completed
from tests.worker.fake_supervisor import FakeSupervisor


def test_many_sessions_share_one_selectors_loop(fake: FakeSupervisor):
    """Fifty sessions handshake, report and get acked from one loop, with no thread each."""
    fake.auto_ack = True
    count = 50
    selector = selectors.DefaultSelector()
    for i in range(count):
        session = Session(fake.job_id, fake.token)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(fake.path)
        sock.setblocking(False)
        sock.send(session.connection_made())  # a hello is tiny: one send takes it all
        selector.register(sock, selectors.EVENT_READ, session)
        session.progress(50, f"session {i}")
        session.complete(i)
    welcomed = acked = 0
    deadline = time.monotonic() + 20
    while acked < count:
        assert time.monotonic() < deadline, f"only {acked}/{count} acked"
        now = time.monotonic()
        for key in list(selector.get_map().values()):
            data = key.data.data_to_send(now)
            if data:
                key.fileobj.send(data)  # type: ignore[union-attr]
        for key, _mask in selector.select(0.05):
            events = key.data.receive_data(key.fileobj.recv(65536))  # type: ignore[union-attr]
            welcomed += sum(isinstance(e, Welcomed) for e in events)
            acked += sum(isinstance(e, Acked) for e in events)
    for key in list(selector.get_map().values()):
        key.fileobj.close()  # type: ignore[union-attr]
        key.data.connection_lost()
    selector.close()
    assert welcomed == count
    assert sorted(m.result for m in fake.messages_of(Completed)) == list(range(count))
    assert len(fake.messages("progress")) == count
