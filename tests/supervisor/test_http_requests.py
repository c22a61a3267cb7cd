"""Requests the API promised to handle: HEAD, unknown query parameters, malformed HTTP
described in words, and the default data of a submission."""

from __future__ import annotations

import socket

import pytest

from tests.supervisor.rawhttp import request


@pytest.fixture
def sv(start, worker):
    return start({"demo": worker()})


@pytest.mark.parametrize("path", ["/jobs", "/healthz", "/metrics", "/"])
def test_head_is_answered_like_get_without_a_body(sv, path):
    """HEAD gets GET's status and headers, Content-Length included, and no body."""
    got = request(sv, "GET", path)
    head = request(sv, "HEAD", path)
    assert head.status == got.status == 200
    assert head.body == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    assert int(head.headers["content-length"]) > 0


def test_head_of_a_job_and_its_log(sv):
    """HEAD works on every GET route, with the same 404 for an unknown job."""
    job_id = sv.client.submit("demo", {"actions": [["return", 1]]})
    sv.wait(job_id)
    assert request(sv, "HEAD", f"/jobs/{job_id}").status == 200
    log = request(sv, "HEAD", f"/jobs/{job_id}/logs")
    assert log.status == 200 and log.headers["x-log-complete"] in ("true", "false")
    assert request(sv, "HEAD", "/jobs/0123456789abcdef0123").status == 404


def test_allow_lists_head_where_get_is(sv):
    """A wrong method's 405 lists HEAD among the allowed methods of a GET route."""
    reply = request(sv, "DELETE", "/jobs")
    assert reply.status == 405
    assert reply.headers["allow"] == "GET, HEAD, POST"


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/jobs?stauts=running", "stauts"),
        ("/jobs?limit=5&page=2", "page"),
        ("/healthz?verbose=1", "verbose"),
        ("/jobs/0123456789abcdef0123/logs?from=3", "from"),
    ],
)
def test_an_unknown_query_parameter_is_a_400_naming_it(sv, path, name):
    """Unknown query parameters are refused, not ignored, and the message names them."""
    reply = request(sv, "GET", path)
    assert reply.status == 400, reply.body
    error = reply.json()["error"]
    assert error["code"] == "bad_request"
    assert f"unknown query parameter '{name}'" in error["message"]


def test_known_query_parameters_still_work(sv):
    """The documented parameters (and token) pass the check."""
    assert request(sv, "GET", "/jobs?name=demo&status=pending&limit=5&offset=0").status == 200
    assert request(sv, "GET", f"/jobs?token={sv.client.token}", auth=False).status == 200


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"\x16\x03\x01 this is not http\r\n\r\n", "the first line is not an HTTP/1.1 request"),
        (b"GET / HTTP/1.1\r\nhost: x\r\nno colon here\r\n\r\n", "a header line is not NAME: VALUE"),
        (b"GET / HTTP/1.1\r\n\r\n", "the Host header is missing"),
        (b"POST /jobs HTTP/1.1\r\nhost: x\r\ncontent-length: ten\r\n\r\n", "Content-Length"),
        (
            b"POST /jobs HTTP/1.1\r\nhost: x\r\ntransfer-encoding: gzip\r\n\r\n",
            "the Transfer-Encoding is not supported",
        ),
        (b"GET /\x01 HTTP/1.1\r\nhost: x\r\n\r\n", "the first line is not"),
    ],
)
def test_malformed_http_is_described_in_words(sv, raw, words):
    """bad_http says what was wrong in words, never a Python repr of the bytes."""
    assert sv.http is not None
    with socket.create_connection((sv.http.host, sv.http.port), timeout=10) as sock:
        sock.sendall(raw)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.split()[1] in (b"400", b"501"), reply  # 501: a coding we do not speak
    text = body.decode()
    assert '"bad_http"' in text and words in text, text
    assert "bytearray" not in text and "b'" not in text and "\\x" not in text, text


def test_a_submission_without_data_gets_an_empty_object(sv):
    """POST /jobs without data stores {} (the documented default), not null."""
    reply = request(sv, "POST", "/jobs", b'{"name": "demo"}')
    assert reply.status == 201, reply.body
    assert reply.json()["job"]["data"] == {}
    assert sv.client.get(sv.client.submit("demo"))["data"] == {}
