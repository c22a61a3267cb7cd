"""Bad bytes on a job socket and bad HTTP requests: refused, and nothing else breaks."""

from __future__ import annotations

import socket
import struct

import msgpack
import pytest

import protocol
from supervisor.client import ClientError
from supervisor.testing import raw_handshake, wait_for
from tests.supervisor.rawhttp import request


def _frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def _exchange(path: str, data: bytes) -> tuple[list[protocol.Message], bool]:
    """Send ``data`` to a job socket; return what came back and whether it was closed."""
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(10)
    sock.connect(path)
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass  # closed on us mid-flood: what it answered is still readable
    decoder = protocol.Decoder()
    messages: list[protocol.Message] = []
    closed = False
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            closed = True
            break
        if not chunk:
            closed = True
            break
        messages += decoder.feed(chunk)
    sock.close()
    return messages, closed


NONCE = bytes(range(32))
V1_HELLO = {"type": "hello", "v": 1, "job_id": "", "token": "t", "pid": 1}


def _answer_challenge(path: str, job_id: str, case: str) -> tuple[list[protocol.Message], bool]:
    """Say a good hello, then answer the challenge wrongly; return the rest of the reply."""
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(10)
    sock.connect(path)
    with sock:
        if case == "wrong token":
            reply, decoder = raw_handshake(sock, job_id, "guess", check_proof=False)
        else:
            sock.sendall(protocol.encode(protocol.Hello(v=2, job_id=job_id, pid=1, nonce=NONCE)))
            decoder = protocol.Decoder()
            challenge = decoder.feed(sock.recv(65536))
            assert [m.TYPE for m in challenge] == ["challenge"], challenge
            sock.sendall(protocol.encode(protocol.Started()))
            reply = decoder.feed(sock.recv(65536))[0]
        return [reply], sock.recv(65536) == b""


BAD_INPUTS = {
    "garbage": (b"\x00\x00\x00\x05hello world", "invalid_msgpack"),
    "invalid msgpack": (_frame(b"\xc1"), "invalid_msgpack"),
    "non-map frame": (_frame(msgpack.packb([1, 2, 3])), "invalid_message"),
    "4 GiB length": (b"\xff\xff\xff\xff", "frame_too_large"),
    "no hello first": (protocol.encode(protocol.Heartbeat()), "handshake_required"),
    "unknown type": (_frame(msgpack.packb({"type": "jump"})), "unknown_type"),
    "bad version": (None, "unsupported_version"),
    "version 1 hello with its token": (None, "unsupported_version"),
    "hello without a nonce": (None, "invalid_message"),
    "wrong token": (None, "bad_token"),
    "hello for another job": (None, "wrong_job"),
    "started instead of auth": (None, "handshake_required"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_bytes_on_a_job_socket_are_refused_and_the_job_carries_on(
    case, start, worker, tmp_path
):
    """The bad connection gets an error frame and is closed; the real worker still runs."""
    gate = tmp_path / "gate-{job}"
    sv = start({"late": worker("late.py", env={"LATE_GATE": str(gate)})})
    job_id = sv.enqueue("late", {"actions": [["progress", 10, "x"], ["return", "fine"]]})
    other = sv.enqueue("late", {"actions": [["return", "also fine"]]})
    path = wait_for(lambda: sv.job(job_id)["socket"])
    data, code = BAD_INPUTS[case]
    if case == "bad version":
        data = protocol.encode(protocol.Hello(v=99, job_id=job_id, pid=1, nonce=NONCE))
    elif case == "version 1 hello with its token":
        data = _frame(msgpack.packb(V1_HELLO | {"job_id": job_id}))
    elif case == "hello without a nonce":
        data = protocol.encode(protocol.Hello(v=2, job_id=job_id, pid=1))
    elif case == "hello for another job":
        data = protocol.encode(protocol.Hello(v=2, job_id=other, pid=1, nonce=NONCE))
    if data is None:  # a challenge comes first, then a wrong answer to it
        messages, closed = _answer_challenge(path, job_id, case)
    else:
        messages, closed = _exchange(path, data)
    assert closed
    assert len(messages) == 1 and isinstance(messages[0], protocol.Error), messages
    assert messages[0].code == code
    if case == "version 1 hello with its token":
        assert "this supervisor speaks 2" in messages[0].message
    # the supervisor, this job and the other job all carry on
    for jid in (job_id, other):
        (tmp_path / f"gate-{jid}").touch()
    assert sv.wait(job_id)["result"] == "fine"
    assert sv.wait(other)["result"] == "also fine"
    assert sv.client.health()["status"] == "ok"


def test_flood_of_valid_frames_before_hello_is_cut_off(start, worker, tmp_path):
    """A client pouring frames without a hello is closed at the first one."""
    gate = tmp_path / "gate-{job}"
    sv = start({"late": worker("late.py", env={"LATE_GATE": str(gate)})})
    job_id = sv.enqueue("late")
    path = wait_for(lambda: sv.job(job_id)["socket"])
    messages, closed = _exchange(path, protocol.encode(protocol.Heartbeat()) * 50_000)
    assert closed and messages[0].code == "handshake_required"
    (tmp_path / f"gate-{job_id}").touch()
    assert sv.wait(job_id)["status"] == "completed"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("POST", "/jobs", b"{not json", 400, "bad_request"),
        ("POST", "/jobs", b"", 400, "bad_request"),
        ("POST", "/jobs", b"[1, 2]", 400, "bad_request"),
        ("POST", "/jobs", b'{"data": 1}', 400, "bad_request"),
        ("POST", "/jobs", b'{"name": "demo", "max_attempts": "3"}', 400, "bad_request"),
        ("POST", "/jobs", b'{"name": "demo", "extra": 1}', 400, "bad_request"),
        ("POST", "/jobs", b'{"name": "demo", "run_at": "yesterday"}', 400, "bad_request"),
        ("POST", "/jobs", b'{"name": "nope"}', 404, "unknown_job_name"),
        ("GET", "/jobs/doesnotexist", None, 404, "job_not_found"),
        ("GET", "/jobs/doesnotexist/logs", None, 404, "job_not_found"),
        ("POST", "/jobs/doesnotexist/cancel", b"", 404, "job_not_found"),
        ("DELETE", "/jobs", None, 405, "method_not_allowed"),
        ("PUT", "/jobs/abc", b"{}", 405, "method_not_allowed"),
        ("GET", "/jobs?status=weird", None, 400, "bad_request"),
        ("GET", "/jobs?limit=0", None, 400, "bad_request"),
        ("GET", "/nowhere", None, 404, "not_found"),
    ],
)
def test_bad_http_requests_get_json_errors(method, path, body, status, code, start, worker):
    """Each bad request gets the right status and a JSON error; the server carries on."""
    sv = start({"demo": worker()})
    reply = request(sv, method, path, body)
    assert reply.status == status
    payload = reply.json()
    assert payload["error"]["code"] == code
    assert payload["error"]["message"]
    assert sv.client.health()["status"] == "ok"


def test_oversized_and_malformed_http_is_refused(start, worker):
    """A 2 MiB body gets 413; bytes that are not HTTP get 400; the server carries on."""
    sv = start({"demo": worker()})
    reply = request(sv, "POST", "/jobs", b"x" * (2 << 20))
    assert reply.status == 413 and reply.json()["error"]["code"] == "body_too_large"
    sock = socket.create_connection((sv.http.host, sv.http.port), timeout=10)
    sock.sendall(b"\x16\x03\x01 this is not http\r\n\r\n")
    reply = sock.recv(65536)
    sock.close()
    assert reply.startswith(b"HTTP/1.1 400")
    job_id = sv.client.submit("demo")
    assert sv.wait(job_id)["status"] == "completed"


def test_bearer_token_is_required_when_configured(start, worker):
    """With auth_token set, requests without it get 401; /healthz stays open."""
    sv = start({"demo": worker()}, auth_token="s3cret")
    from supervisor.client import Client

    anonymous = Client(sv.http.url)
    assert anonymous.health()["status"] == "ok"
    with pytest.raises(ClientError) as refused:
        anonymous.list()
    assert refused.value.status == 401
    assert sv.client.list() == []
