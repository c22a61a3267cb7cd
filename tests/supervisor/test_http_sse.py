"""GET /events (docs/http-api.md, "Events (SSE)"): real supervisors, real workers, and a
real HTTP connection reading the stream."""

from __future__ import annotations

import socket
import urllib.parse

import pytest

from supervisor.testing import wait_for
from tests.supervisor.rawhttp import request
from tests.supervisor.ssestream import EventStream

LIFECYCLE = [
    "job.external.spawned",
    "job.external.progress",
    "job.external.log",
    "job.completed",
    "job.demo.completed",
]


def seq(event_id: str) -> int:
    return int(event_id.rpartition("-")[2])


@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_one_jobs_progress_log_and_completion_arrive_in_order(transport, start, worker):
    """A job's spawn, progress, log line and completion stream in order, with rising ids
    and their payloads, each released after its commit."""
    sv = start({"demo": worker()}, transport=transport)
    with EventStream(sv) as stream:
        assert stream.status == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        actions = [["progress", 40, "half way"], ["log", "info", "hello"], ["return", {"n": 1}]]
        job_id = sv.client.submit("demo", {"actions": actions})
        events = stream.until("job.demo.completed", job_id)
    mine = [e for e in events if e.data.get("id") == job_id]
    assert [e.name for e in mine] == LIFECYCLE
    ids = [seq(e.id) for e in mine]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    spawned, progress, line, completed, _ = (e.data for e in mine)
    assert spawned["pid"] > 0 and spawned["status"] == "running"
    assert (progress["percent"], progress["message"]) == (40.0, "half way")
    assert (line["level"], line["message"]) == ("info", "hello")
    assert completed["result"] == {"n": 1} and completed["status"] == "completed"
    assert all(e.data["time"].endswith("Z") and e.data["name"] == "demo" for e in mine)


def test_resume_with_last_event_id_has_no_gap_or_duplicate(start, worker):
    """A client that reconnects with Last-Event-ID (header or ?last_event_id=) gets
    exactly what a client that never left saw after that id."""
    sv = start({"demo": worker()})
    with EventStream(sv) as steady:
        with EventStream(sv) as leaving:
            first = sv.client.submit("demo", {"actions": [["log", "info", "one"]]})
            seen = leaving.until("job.completed", first)
        # Gone: meanwhile two more jobs run to the end.
        later = [sv.client.submit("demo", {"actions": [["log", "info", str(i)]]}) for i in (2, 3)]
        everything = steady.until("job.completed", first)
        everything += steady.until_all("job.demo.completed", later)
    resume_at = seen[-1].id
    expected = everything[[e.id for e in everything].index(resume_at) + 1 :]
    with EventStream(sv, headers={"last-event-id": resume_at}) as back:
        resumed = [back.next() for _ in expected]
    assert [e.id for e in resumed] == [e.id for e in expected]
    assert [e.data for e in resumed] == [e.data for e in expected]
    query = urllib.parse.urlencode({"last_event_id": resume_at})
    with EventStream(sv, f"/events?{query}") as back:
        assert [back.next().id for _ in expected] == [e.id for e in expected]


def test_an_id_from_before_a_restart_gets_a_reset_then_live_events(start, worker, tmp_path):
    """After a restart an old id is unknown: the stream starts with event: reset, whose id
    is the new position, then live events follow."""
    state = tmp_path / "state"
    sv = start({"demo": worker()}, state=state)
    with EventStream(sv) as stream:
        job_id = sv.client.submit("demo")
        old = stream.until("job.completed", job_id)[-1].id
    sv.stop()
    sv = start({"demo": worker()}, state=state)
    with EventStream(sv, headers={"last-event-id": old}) as stream:
        reset = stream.next()
        assert reset.name == "reset"
        assert "re-read" in reset.data["reason"]
        assert reset.id.split("-")[0] != old.split("-")[0]  # a new epoch
        job_id = sv.client.submit("demo")
        live = stream.until("job.completed", job_id)
    assert live[0].name == "job.external.spawned"
    assert seq(live[0].id) == seq(reset.id) + 1
    with EventStream(sv, headers={"last-event-id": reset.id}) as stream:
        assert stream.next().id == live[0].id  # the reset's id resumes without a gap


def test_an_id_older_than_the_window_gets_a_reset(start, worker):
    """With a replay window of 2 events, resuming from an id whose successor has left it
    is a reset; from the one before the window, it is the window."""
    sv = start({"demo": worker()}, sse_replay_events=2)
    with EventStream(sv) as stream:
        job_id = sv.client.submit("demo", {"actions": [["log", "info", "x"]]})
        events = stream.until("job.demo.completed", job_id)
    assert len(events) == 4
    with EventStream(sv, headers={"last-event-id": events[0].id}) as stream:
        assert stream.next().name == "reset"
    with EventStream(sv, headers={"last-event-id": events[1].id}) as stream:
        assert [stream.next().id for _ in range(2)] == [e.id for e in events[2:]]


def test_a_client_that_stops_reading_is_dropped_while_another_keeps_receiving(start, worker):
    """A reader that stalls is closed once its buffer passes sse_buffer; another stream
    gets every event and /healthz keeps answering meanwhile."""
    sv = start({"demo": worker()}, sse_buffer=8192, log_event_rate=100_000)
    assert sv.http is not None
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before the handshake
    stalled.settimeout(20)
    stalled.connect((sv.http.host, sv.http.port))
    token = sv.client.token
    stalled.sendall(
        f"GET /events HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\n\r\n".encode()
    )
    with EventStream(sv) as steady:
        wait_for(lambda: sv.call(lambda: len(sv.http.streams)) == 2, message="two streams")  # type: ignore[union-attr]
        # 900 lines of 8 kB: more than the kernel's socket buffers hold, fewer than the
        # worker library buffers (so every line is sent).
        line = "y" * 8000
        job_id = sv.client.submit("demo", {"actions": [["logs", 900, "info", line]]})
        logs = 0
        while True:
            event = steady.next()
            if event.data.get("id") != job_id:
                continue
            logs += event.name == "job.external.log"
            if logs % 100 == 0:
                assert request(sv, "GET", "/healthz", auth=False).status == 200
            if event.name == "job.completed":
                break
    assert logs == 900
    assert sv.call(lambda: sv.sup.counters.sse_clients_dropped) == 1
    assert sv.call(lambda: len(sv.http.streams)) == 0  # type: ignore[union-attr]
    # The stalled client finds its connection closed after what was already sent.
    while stalled.recv(65536):
        pass
    stalled.close()
    metrics = request(sv, "GET", "/metrics").body.decode()
    assert "jobvisor_sse_clients_dropped_total 1" in metrics


def test_events_need_the_token_in_the_header_or_the_query(start, worker):
    """/events answers 401 without the token or with a wrong one, and streams with either
    the bearer header or ?token=."""
    sv = start({"demo": worker()})
    token = sv.client.token
    for path, headers in [
        ("/events", {}),
        ("/events?token=wrong", {}),
        ("/events", {"authorization": "Bearer wrong"}),
    ]:
        with EventStream(sv, path, headers=headers, auth=False) as refused:
            assert refused.status == 401
            assert refused.body()["error"]["code"] == "unauthorized"
    with EventStream(sv, f"/events?token={token}", auth=False) as by_query:
        assert by_query.status == 200
        with EventStream(sv) as by_header:
            assert by_header.status == 200
            job_id = sv.client.submit("demo")
            assert by_query.until("job.completed", job_id)[-1].data["id"] == job_id
            assert by_header.until("job.completed", job_id)[-1].data["id"] == job_id


def test_channels_filter_by_job_and_by_kind(start, worker):
    """channel=kind:NAME streams that kind only, channel=job:ID that job only, several
    channels combine, and no channel streams everything (replayed events are filtered too)."""
    sv = start({"demo": worker(), "other": worker()})
    with (
        EventStream(sv) as everything,
        EventStream(sv, "/events?channel=kind:other") as by_kind,
    ):
        before = everything.headers["x-last-event-id"]
        ids = [sv.client.submit(name) for name in ("demo", "other", "demo")]
        done: list = []
        while not all(
            any(e.name == "job.completed" and e.data["id"] == i for e in done) for i in ids
        ):
            done.append(everything.next())
        kinds = by_kind.until("job.other.completed", ids[1])
    assert {e.data["id"] for e in kinds} == {ids[1]}
    assert {e.data["id"] for e in done} == set(ids)
    a, c = ids[0], ids[2]
    wanted = [e for e in done if e.data["id"] in (a, c)]
    query = f"/events?channel=job:{a}&channel=job:{c}&last_event_id={before}"
    with EventStream(sv, query) as by_job:
        got = [by_job.next() for _ in wanted]
    assert [e.id for e in got] == [e.id for e in wanted]


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("channel=jobs:1", "'jobs:1' is not job:ID, workflow:ID or kind:NAME"),
        ("channel=job:", "'job:' is not job:ID"),
        ("channel=", "'' is not job:ID"),
        ("chanel=job:1", "chanel"),
    ],
)
def test_a_bad_channel_is_a_400_naming_it(start, worker, query, words):
    """An unknown channel kind, an empty id or an unknown parameter is refused, clearly,
    and the supervisor carries on serving."""
    sv = start({"demo": worker()})
    reply = request(sv, "GET", f"/events?{query}")
    assert reply.status == 400
    assert words in reply.json()["error"]["message"]
    assert sv.client.health()["status"] == "ok"


def test_keepalive_comments_arrive_on_a_quiet_stream(start, worker):
    """With nothing to say, the stream sends a ': keep-alive' comment every sse_keepalive."""
    sv = start({"demo": worker()}, sse_keepalive=0.05)
    with EventStream(sv) as stream:
        while len(stream.comments) < 3:
            line = stream.response.readline()
            assert line, "the stream ended"
            if line.startswith(b":"):
                stream.comments.append(line.decode().strip())
    assert stream.comments[:3] == [": keep-alive"] * 3


def test_streams_are_bounded_and_the_one_past_the_limit_gets_503(start, worker):
    """At sse_max_streams a new stream is refused with 503 too_many_streams (Retry-After);
    once one closes another may open."""
    sv = start({"demo": worker()}, sse_max_streams=2)
    first = EventStream(sv)
    with EventStream(sv) as second:
        wait_for(lambda: sv.call(lambda: len(sv.http.streams)) == 2, message="two streams")  # type: ignore[union-attr]
        with EventStream(sv) as third:
            assert third.status == 503
            assert third.headers["retry-after"] == "5"
            assert third.body()["error"]["code"] == "too_many_streams"
        first.close()
        wait_for(lambda: sv.call(lambda: len(sv.http.streams)) == 1, message="one stream")  # type: ignore[union-attr]
        with EventStream(sv) as again:
            assert again.status == 200
            job_id = sv.client.submit("demo")
            assert again.until("job.completed", job_id)
            assert second.until("job.completed", job_id)


def test_a_log_flood_is_sent_at_a_bounded_rate_with_a_note_of_the_rest(start, worker):
    """Past log_event_rate lines a second a job's log lines are not events; one warning
    event says how many, before the job's completion; the log file has them all."""
    sv = start({"demo": worker()}, log_event_rate=5)
    with EventStream(sv, "/events?channel=kind:demo") as stream:
        job_id = sv.client.submit("demo", {"actions": [["logs", 300, "info", "line"]]})
        events = stream.until("job.completed", job_id)
    logs = [e for e in events if e.name == "job.external.log"]
    lines = [e for e in logs if "dropped" not in (e.data["data"] or {})]
    notes = [e for e in logs if "dropped" in (e.data["data"] or {})]
    assert notes and all(n.data["level"] == "warning" for n in notes)
    assert len(lines) + sum(n.data["data"]["dropped"] for n in notes) == 300
    assert len(lines) < 300
    assert sv.call(lambda: sv.sup.counters.log_events_dropped) == 300 - len(lines)
    log_file = sv.settings.state_dir / "logs" / f"{job_id}.log"
    assert sum("line " in text for text in log_file.read_text().splitlines()) == 300
