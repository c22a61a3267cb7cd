"""Nobody can hold the HTTP server hostage: not idle connections, not a client that
trickles bytes, not running out of file descriptors."""

from __future__ import annotations

import contextlib
import resource
import socket
import time
from collections.abc import Iterator

import psutil
import pytest

from supervisor.http import server as http_server
from supervisor.testing import ServerProcess, wait_for
from tests.supervisor.serverconfig import write_config

HELD = 1100  # more than MAX_CONNECTIONS (1024)


@pytest.fixture
def many_fds() -> Iterator[None]:
    """Room in this process for the held client sockets and the server's own ends."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 2 * HELD + 512
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {wanted}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_new_client_is_served_while_1100_idle_connections_are_held(many_fds, start, worker):
    """At the connection limit the oldest idle connection makes room for a new client."""
    sv = start({"demo": worker()})
    assert sv.http is not None
    held: list[socket.socket] = []
    try:
        address = (sv.http.host, sv.http.port)
        held.extend(socket.create_connection(address, timeout=10) for _ in range(HELD))
        # Wait for the server to have accepted (and evicted) its way through all of them.
        wait_for(
            lambda: sv.call(lambda: len(sv.http.conns)) == http_server.MAX_CONNECTIONS,  # type: ignore[union-attr]
            message="the server to hold MAX_CONNECTIONS connections",
        )
        assert sv.client.list() == []
        assert sv.client.health()["status"] == "ok"
        # The oldest were closed for the newcomers: they read end-of-file.
        held[0].settimeout(10)
        assert held[0].recv(1) == b""
    finally:
        for sock in held:
            sock.close()


def test_a_request_trickled_byte_by_byte_is_cut_off_at_its_deadline(start, worker, monkeypatch):
    """Bytes do not move the request deadline: a slowloris gets 408 and is closed."""
    monkeypatch.setattr(http_server, "REQUEST_TIMEOUT", 0.5, raising=False)
    monkeypatch.setattr(http_server, "IDLE_TIMEOUT", 0.5)
    sv = start({"demo": worker()})
    assert sv.http is not None
    reply = b""
    with socket.create_connection((sv.http.host, sv.http.port), timeout=10) as sock:
        sock.sendall(b"GET /jobs HTTP/1.1\r\nhost: x\r\n")
        sock.settimeout(0.05)
        for _ in range(200):  # 10 s of trickling at most: 20 times the deadline
            try:
                sock.send(b"x")
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            reply += chunk
            if not chunk:
                break
        else:
            pytest.fail("the server kept a trickling request open")
    assert reply.startswith(b"HTTP/1.1 408 "), reply
    assert b"request_timeout" in reply
    assert sv.client.health()["status"] == "ok"


# --- out of file descriptors ----------------------------------------------------------------


def _connect_partial(url: str) -> socket.socket:
    """A connection in the middle of a request: not idle, so it cannot be evicted."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(b"GET /jobs HTTP/1.1\r\n")
    return sock


def test_out_of_descriptors_the_server_backs_off_instead_of_spinning(marker, tmp_path):
    """With its fds exhausted and clients waiting, the supervisor uses little CPU and
    logs a few lines, then serves again once descriptors are free."""
    config = write_config(tmp_path, marker)
    log = tmp_path / "serve.log"
    server = ServerProcess(config, log=log).start()
    assert server.proc is not None
    process = psutil.Process(server.proc.pid)
    clients: list[socket.socket] = []
    try:
        server.client.list()  # warm: whatever the first request opens is open
        limit = process.num_fds() + 4
        resource.prlimit(server.proc.pid, resource.RLIMIT_NOFILE, (limit, limit))
        # Connect until accept() fails (the limit bounds fd numbers, not their count, so
        # the count alone cannot say when); the later ones wait in the backlog, where
        # they keep the listener readable.
        for _ in range(100):
            clients.append(_connect_partial(server.url))
            if "http accept failed" in log.read_text():
                break
            time.sleep(0.02)
        clients += [_connect_partial(server.url) for _ in range(10)]
        lines_before = log.read_text().count("\n")
        cpu_before = sum(process.cpu_times()[:2])
        began = time.monotonic()
        time.sleep(1.5)  # a measurement window, not a wait for a condition
        elapsed = time.monotonic() - began
        cpu = sum(process.cpu_times()[:2]) - cpu_before
        lines = log.read_text().count("\n") - lines_before
        assert cpu < 0.25 * elapsed, f"{cpu:.2f} s of CPU in {elapsed:.2f} s"
        assert lines <= 10, log.read_text()[-2000:]
        assert "http accept failed" in log.read_text()
        for sock in clients:
            sock.close()
        clients.clear()
        assert wait_for(lambda: _healthy(server), message="the server to serve again")
    finally:
        for sock in clients:
            sock.close()
        server.stop()


def test_out_of_descriptors_a_long_idle_connection_makes_room(marker, tmp_path):
    """Idle connections holding every fd: a new client is served once the oldest has
    been idle for EVICT_GRACE, instead of waiting for the idle timeout."""
    config = write_config(tmp_path, marker)
    log = tmp_path / "serve.log"
    server = ServerProcess(config, log=log).start()
    assert server.proc is not None
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    idle: list[socket.socket] = []
    try:
        server.client.list()
        limit = psutil.Process(server.proc.pid).num_fds() + 4
        resource.prlimit(server.proc.pid, resource.RLIMIT_NOFILE, (limit, limit))
        for _ in range(100):
            idle.append(socket.create_connection((host, int(port)), timeout=10))
            if "http accept failed" in log.read_text():
                break
            time.sleep(0.02)
        else:
            pytest.fail("the supervisor never ran out of descriptors")
        client = server.client
        client.timeout = 20  # far longer than EVICT_GRACE, far shorter than IDLE_TIMEOUT
        assert client.health()["status"] == "ok"
        idle[0].settimeout(10)
        assert idle[0].recv(1) == b""  # the oldest made room
    finally:
        for sock in idle:
            sock.close()
        server.stop()


def _healthy(server: ServerProcess) -> bool:
    with contextlib.suppress(Exception):
        return bool(server.client.health()["status"] == "ok")
    return False
