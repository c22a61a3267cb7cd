"""GET /events (docs/http-api.md, "Events (SSE)"): real supervisors, real workers, and a
real HTTP connection reading the stream."""

from __future__ import annotations

import socket
import threading
import urllib.parse

import pytest

from supervisor.client import Client, ClientError, StreamEvent
from supervisor.testing import ServerProcess, wait_for
from tests.supervisor.rawhttp import request
from tests.supervisor.serverconfig import write_config
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
        assert stream.response.readline() == b"retry: 1000\n"  # browsers reconnect in 1 s
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
    sv = start({"demo": worker()}, sse_buffer=65536, log_event_rate=100_000)
    assert sv.http is not None
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before the handshake
    stalled.settimeout(20)
    stalled.connect((sv.http.host, sv.http.port))
    token = sv.client.token
    stalled.sendall(
        f"GET /events HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\n\r\n".encode()
    )
    # The steady reader's socket can hold everything the job sends: it keeps up even
    # when this thread is slow to read, on a machine busy with other tests.
    with EventStream(sv, rcvbuf=8 << 20) as steady:
        wait_for(lambda: sv.call(lambda: len(sv.http.streams)) == 2, message="two streams")  # type: ignore[union-attr]
        # 900 lines of 2 kB: far more than a stream's kernel buffer (256 KiB) and
        # sse_buffer hold, less than the steady reader's socket holds, and fewer lines
        # than the worker library buffers (so every line is sent).
        line = "y" * 2000
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
        assert sv.call(lambda: len(sv.http.streams)) == 1  # type: ignore[union-attr]
    assert logs == 900
    assert sv.call(lambda: sv.sup.counters.sse_clients_dropped) == 1
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Collector:
    """``Client.events()`` on a thread, collecting until it sees ``stop_at`` (a job id)."""

    def __init__(self, client: Client, **options: object) -> None:
        self.events: list[StreamEvent] = []
        self.stop_at = ""
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(client, options), daemon=True)
        self.thread.start()

    def _run(self, client: Client, options: dict) -> None:
        try:
            for event in client.events(retry=0.05, give_up=30, **options):
                self.events.append(event)
                if event.name == "job.completed" and event.data["id"] == self.stop_at:
                    return
        except BaseException as exc:  # reported to the test
            self.error = exc

    def saw(self, name: str, job_id: str | None = None) -> bool:
        assert self.error is None, self.error
        return any(
            e.name == name and (job_id is None or e.data.get("id") == job_id) for e in self.events
        )


def test_the_client_reader_resumes_after_a_drop_and_resets_after_a_restart(start, worker, tmp_path):
    """Client.events() reconnects by itself: after a dropped connection it resumes with no
    gap or duplicate; after a supervisor restart it yields a reset, then the new events."""
    state, port = tmp_path / "state", free_port()
    sv = start({"demo": worker()}, state=state, http=f"127.0.0.1:{port}")
    client = sv.client
    collector = Collector(client)
    wait_for(lambda: sv.call(lambda: len(sv.http.streams)) == 1, message="the stream")  # type: ignore[union-attr]
    first = client.submit("demo", {"actions": [["log", "info", "one"]]})
    wait_for(lambda: collector.saw("job.completed", first), message="the first job")

    def drop_streams() -> None:
        for conn in list(sv.http.conns.values()):  # type: ignore[union-attr]
            if conn.streaming:
                conn.close("dropped by the test")

    sv.call(drop_streams)
    second = client.submit("demo", {"actions": [["progress", 10, "x"]]})
    wait_for(lambda: collector.saw("job.completed", second), message="the second job")
    seqs = [int(e.id.rpartition("-")[2]) for e in collector.events]
    assert seqs == list(range(1, len(seqs) + 1))  # every event once, none missing
    sv.stop()
    sv = start({"demo": worker()}, state=state, http=f"127.0.0.1:{port}")
    wait_for(lambda: sv.call(lambda: len(sv.http.streams)) == 1, message="the reconnection")  # type: ignore[union-attr]
    third = sv.client.submit("demo")
    collector.stop_at = third
    collector.thread.join(timeout=30)
    assert not collector.thread.is_alive() and collector.error is None
    after = collector.events[len(seqs) :]
    assert after[0].name == "reset"
    assert [e.name for e in after[1:]][:2] == ["job.external.spawned", "job.completed"]
    assert {e.data["id"] for e in after[1:]} == {third}


def test_the_client_reader_filters_by_channel_and_refuses_a_bad_token(start, worker):
    """Client.events(channels=...) passes the channels on; a wrong token raises at once
    instead of retrying."""
    sv = start({"demo": worker(), "other": worker()})
    wrong = Client(sv.client.url, "wrong")
    with pytest.raises(ClientError) as refused:
        next(wrong.events())
    assert refused.value.status == 401
    kept = sv.client.events(["kind:other"])
    job_ids = [sv.client.submit("demo"), sv.client.submit("other")]
    for event in kept:
        assert event.data["id"] == job_ids[1], event
        if event.name == "job.completed":
            break
    kept.close()


def test_head_events_answers_the_position_without_a_stream(start, worker):
    """HEAD /events ends at once, opens no stream, and says the current position: a job
    submitted after it is followed from its first event (Client.event_position)."""
    sv = start({"demo": worker()})
    reply = request(sv, "HEAD", "/events")
    assert reply.status == 200 and reply.body == b""
    assert reply.headers["content-type"].startswith("text/event-stream")
    assert sv.call(lambda: len(sv.http.streams)) == 0  # type: ignore[union-attr]
    assert reply.headers["x-last-event-id"] == sv.call(lambda: sv.sup.events.last_id)
    position = sv.client.event_position()
    job_id = sv.client.submit("demo")
    sv.wait(job_id)  # done before the stream opens: it is replayed from the position
    names = []
    for event in sv.client.events([f"job:{job_id}"], last_event_id=position):
        names.append(event.name)
        if event.name == "job.demo.completed":
            break
    assert names == ["job.external.spawned", "job.completed", "job.demo.completed"]


@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_a_reader_catches_up_after_the_supervisor_is_killed(transport, tmp_path, marker):
    """Across a kill -9 of `jobvisor serve`, Client.events() reconnects by itself and gets
    a reset (what happened while it was away must be re-read), then live events: the
    running job, re-attached meanwhile, completes."""
    port = free_port()
    config = write_config(tmp_path, marker, transport=transport)
    config.write_text(config.read_text().replace('"127.0.0.1:0"', f'"127.0.0.1:{port}"'))
    server = ServerProcess(config).start()
    try:
        # An id of no run: the stream starts with a reset, which shows it is connected.
        collector = Collector(server.client, last_event_id="0-0")
        wait_for(lambda: collector.saw("reset"), message="the stream")
        go = tmp_path / "go"
        job_id = server.client.submit("demo", {"actions": [["wait_file", str(go)]]})
        wait_for(lambda: collector.saw("job.external.spawned", job_id), message="the spawn")
        before = len(collector.events)
        server.kill()
        server = ServerProcess(config).start()
        wait_for(lambda: len(collector.events) > before, message="the reconnection")
        # The reset says: re-read the state. The job re-attached meanwhile.
        assert server.client.get(job_id)["process_state"] in ("running", "orphaned")
        go.touch()
        collector.stop_at = job_id
        collector.thread.join(timeout=30)
        assert not collector.thread.is_alive() and collector.error is None
    finally:
        server.kill()
    assert [e.name for e in collector.events[:before]] == ["reset", "job.external.spawned"]
    after = [e.name for e in collector.events[before:]]
    assert after[0] == "reset"
    assert after[-1] == "job.completed"
    assert collector.events[-1].data["id"] == job_id
