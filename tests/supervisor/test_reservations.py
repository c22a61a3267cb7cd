"""Reservations (docs/restarts.md): an orphan's path or port is never handed to another job."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from supervisor.endpoints import Endpoint
from supervisor.errors import ReservationError
from supervisor.testing import SupervisorThread, wait_for


def _free_port_block(size: int) -> int:
    """The first port of ``size`` consecutive ports that are free right now."""
    for base in range(40000, 48000, size):
        socks = []
        try:
            for port in range(base, base + size):
                sock = socket.socket()
                sock.bind(("127.0.0.1", port))
                socks.append(sock)
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no free port block")


def _restart(sv: SupervisorThread) -> SupervisorThread:
    """Stop (workers keep running) and start a new supervisor on the same state."""
    sv.stop()
    return SupervisorThread(sv.settings).start()


def test_orphans_tcp_port_is_never_given_to_new_jobs_and_is_released_when_done(
    start, worker, tmp_path: Path
):
    """Reserved across restarts; new jobs get other ports; an explicit request fails; freed after."""
    base = _free_port_block(6)
    gate = tmp_path / "gate"
    sv = start({"demo": worker()}, transport="tcp", tcp_port_range=[base, base + 5], concurrency=10)
    orphan = sv.enqueue("demo", {"actions": [["wait_file", str(gate)], ["return", "orphan"]]})
    port = int(wait_for(lambda: sv.job(orphan)["socket"]).rsplit(":", 1)[1])
    wait_for(lambda: sv.job(orphan)["process_state"] == "running")
    for _ in range(2):  # reservations survive repeated restarts
        sv = _restart(sv)
        assert sv.call(lambda s=sv: s.sup.runner.reservations.holder(Endpoint(port=port))) == orphan
    wait_for(lambda: sv.job(orphan)["process_state"] == "running")

    others = [sv.enqueue("demo", {"actions": [["wait_file", str(gate)]]}) for _ in range(4)]
    ports = {int(wait_for(lambda j=j: sv.job(j)["socket"]).rsplit(":", 1)[1]) for j in others}
    assert port not in ports
    assert len(ports) == 4

    with pytest.raises(ReservationError, match=f"TCP port {port} is reserved for job {orphan}"):
        sv.call(lambda: sv.sup.enqueue("demo", tcp_port=port))

    gate.touch()
    assert sv.wait(orphan)["result"] == "orphan"
    wait_for(
        lambda: sv.call(lambda: sv.sup.runner.reservations.holder(Endpoint(port=port))) is None,
        message="the reservation to be released",
    )
    again = sv.call(lambda: sv.sup.enqueue("demo", tcp_port=port).id)
    assert sv.wait(again)["socket"] == f"tcp://127.0.0.1:{port}"
    sv.stop()


def test_orphans_unix_path_is_reserved_and_stale_socket_files_are_removed(
    start, worker, tmp_path: Path
):
    """An explicit request for an orphan's path fails; unknown socket files are cleaned up."""
    gate = tmp_path / "gate"
    sv = start({"demo": worker()})
    orphan = sv.enqueue("demo", {"actions": [["wait_file", str(gate)]]})
    path = wait_for(lambda: sv.job(orphan)["socket"])
    wait_for(lambda: sv.job(orphan)["process_state"] == "running")
    stale = sv.settings.job_socket_dir / "deadbeefdeadbeefdead.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(stale))
    listener.close()
    assert stale.exists()
    sv = _restart(sv)
    assert not stale.exists()
    with pytest.raises(ReservationError, match="is reserved for job"):
        sv.call(lambda: sv.sup.enqueue("demo", socket_path=path))
    gate.touch()
    sv.wait(orphan)
    wait_for(
        lambda: sv.call(lambda: sv.sup.runner.reservations.holder(Endpoint(path=path))) is None
    )
    sv.stop()


def test_stale_kill_releases_the_reservation(start, worker):
    """A worker killed for silence gives its endpoint back."""
    sv = start({"quiet": worker("silent.py", heartbeat_timeout=0.3, max_attempts=1)})
    job_id = sv.enqueue("quiet")
    path = wait_for(lambda: sv.job(job_id)["socket"])
    assert sv.wait(job_id)["error"]["reason"] == "stale"
    wait_for(
        lambda: sv.call(lambda: sv.sup.runner.reservations.holder(Endpoint(path=path))) is None
    )
    assert not Path(path).exists()
