"""Whatever the HTTP API accepts it can show again: ranges, depth and non-JSON numbers are
checked at the door, and a row that still cannot be shown never breaks a listing."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from protocol import pack
from protocol.limits import MAX_DEPTH
from supervisor.core import MAX_DATA_BYTES
from supervisor.errors import BadRequest
from supervisor.records import JobRecord, new_job_id
from supervisor.states import JobStatus
from tests.supervisor.rawhttp import request


def nested(depth: int) -> Any:
    """A value with ``depth`` lists inside each other."""
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


@pytest.fixture
def sv(start, worker):
    return start({"demo": worker()})


def submit(sv, body: str):
    return request(sv, "POST", "/jobs", body.encode())


def assert_nothing_stored(sv) -> None:
    listing = request(sv, "GET", "/jobs")
    assert listing.status == 200, listing.body
    assert listing.json() == {"jobs": []}


def test_a_run_at_that_cannot_be_shown_is_refused_and_nothing_is_stored(sv):
    """run_at far beyond year 9999 gets a 400 naming run_at; listings keep working."""
    reply = submit(sv, '{"name": "demo", "run_at": 1e12}')
    assert reply.status == 400, reply.body
    assert reply.json()["error"]["code"] == "bad_request"
    assert "run_at" in reply.json()["error"]["message"]
    assert_nothing_stored(sv)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 500, 900])
def test_data_nested_too_deep_is_refused_and_nothing_is_stored(sv, depth):
    """Data deeper than the shared limit gets a 400 naming data and the limit."""
    reply = submit(sv, json.dumps({"name": "demo", "data": nested(depth)}))
    assert reply.status == 400, reply.body
    message = reply.json()["error"]["message"]
    assert "data" in message and f"deeper than {MAX_DEPTH} levels" in message
    assert_nothing_stored(sv)


def test_json_nested_beyond_the_parser_is_a_400(sv):
    """A body the JSON parser itself cannot nest into is a bad request, not a 500."""
    reply = submit(sv, '{"name": "demo", "data": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert reply.status == 400, reply.body
    assert "deeper" in reply.json()["error"]["message"]
    assert_nothing_stored(sv)


def test_data_at_the_depth_limit_is_accepted_run_and_shown(sv):
    """Data exactly at the limit is stored, reaches the worker and reads back whole."""
    deep = nested(MAX_DEPTH - 1)
    reply = submit(sv, json.dumps({"name": "demo", "data": {"actions": [], "deep": deep}}))
    assert reply.status == 201, reply.body
    job_id = reply.json()["id"]
    assert sv.wait(job_id)["status"] == "completed"
    shown = request(sv, "GET", f"/jobs/{job_id}").json()
    assert shown["data"]["deep"] == deep


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"name": "demo", "data": {"x": [1, NaN]}}', "data.x[1]"),
        ('{"name": "demo", "data": {"big": 1e400}}', "data.big"),
        ('{"name": "demo", "data": -Infinity}', "data"),
        ('{"name": "demo", "run_at": Infinity}', "run_at"),
    ],
)
def test_nan_and_infinity_are_refused_naming_the_field(sv, body, field):
    """NaN, Infinity and numbers that overflow to infinity are not JSON: 400 naming where."""
    reply = submit(sv, body)
    assert reply.status == 400, reply.body
    message = reply.json()["error"]["message"]
    assert f"{field}:" in message and "not a finite number" in message, message
    assert_nothing_stored(sv)


def test_data_at_the_size_limit_reaches_the_worker_and_one_byte_more_is_refused(sv):
    """The largest data accepted still fits the worker's welcome frame (1 MiB, shared with
    its other fields): the job completes; one byte more is refused with the limit."""
    data = {"actions": [["return", "ok"]], "pad": ""}
    data["pad"] = "x" * (MAX_DATA_BYTES - len(pack(data)) - 4)  # str32 header: 4 more bytes
    assert len(pack(data)) == MAX_DATA_BYTES
    job_id = sv.enqueue("demo", data)
    job = sv.wait(job_id)
    assert job["status"] == "completed", job
    data["pad"] += "x"
    with pytest.raises(BadRequest, match=f"the limit is {MAX_DATA_BYTES}"):
        sv.enqueue("demo", data)


def test_the_python_api_applies_the_same_limits(sv):
    """enqueue refuses too-deep data and an unshowable run_at with the same messages."""
    with pytest.raises(BadRequest, match=f"data nests deeper than {MAX_DEPTH} levels"):
        sv.enqueue("demo", nested(MAX_DEPTH + 1))
    with pytest.raises(BadRequest, match="run_at"):
        sv.enqueue("demo", {}, run_at=1e12)
    assert sv.client.list() == []


def test_a_row_that_cannot_be_shown_is_marked_and_does_not_break_reads(sv, caplog):
    """A stored row that cannot be rendered is listed with render_error, logged once."""
    good = sv.client.submit("demo", {"actions": [["return", 1]]})
    sv.wait(good)

    def insert_unshowable() -> str:
        # What an older build let in: a run_at past year 9999 and data 900 levels deep.
        job = JobRecord(
            id=new_job_id(),
            name="demo",
            data=nested(900),
            status=JobStatus.SCHEDULED,
            seq=sv.sup.table.next_seq(),
            created_at=sv.sup.clock.wall(),
            node="test",
            run_at=1e12,
        )
        sv.sup.table.insert(job)
        return job.id

    bad = sv.call(insert_unshowable)
    with caplog.at_level(logging.WARNING, logger="supervisor"):
        for _ in range(3):
            listing = request(sv, "GET", "/jobs")
            assert listing.status == 200, listing.body
            jobs = {job["id"]: job for job in listing.json()["jobs"]}
            assert jobs[good]["result"] == 1 and "render_error" not in jobs[good]
            marked = jobs[bad]
            assert marked["status"] == "scheduled"
            assert "run_at" in marked["render_error"] and "data" in marked["render_error"]
            assert marked["data"] is None and marked["run_at"] is None
            one = request(sv, "GET", f"/jobs/{bad}")
            assert one.status == 200 and one.json()["render_error"] == marked["render_error"]
    lines = [r for r in caplog.records if bad in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in lines]


def test_a_stored_job_whose_data_no_worker_can_be_sent_fails_at_once(sv):
    """Data nested too deep by an older build fails its job at start, saying why, instead
    of spawning workers that can never be welcomed; other jobs run on."""

    def insert_too_deep() -> str:
        job = JobRecord(
            id=new_job_id(),
            name="demo",
            data=nested(MAX_DEPTH + 1),
            status=JobStatus.PENDING,
            seq=sv.sup.table.next_seq(),
            created_at=sv.sup.clock.wall(),
            node="test",
        )
        sv.sup.table.insert(job)
        sv.sup._queue_start()
        return job.id

    bad = sv.call(insert_too_deep)
    job = sv.wait(bad)
    assert job["status"] == "failed" and job["attempts"] == 0
    assert (
        job["error"]["reason"] == "data" and f"deeper than {MAX_DEPTH}" in job["error"]["message"]
    )
    good = sv.client.submit("demo", {"actions": [["return", 2]]})
    assert sv.wait(good)["result"] == 2


def test_a_worker_result_nested_too_deep_fails_the_job_saying_why(start, worker):
    """The worker library refuses to encode what the supervisor would refuse to decode:
    the attempt fails naming the limit, instead of replaying the result forever."""
    sv = start({"once": worker(max_attempts=1)})
    job_id = sv.enqueue("once", {"actions": [["return_nested", MAX_DEPTH + 1]]})
    job = sv.wait(job_id)
    assert job["status"] == "failed", job
    assert f"nests deeper than {MAX_DEPTH} levels" in job["error"]["message"]
    fine = sv.wait(sv.enqueue("once", {"actions": [["return_nested", MAX_DEPTH]]}))
    assert fine["status"] == "completed" and fine["result"] == nested(MAX_DEPTH)
