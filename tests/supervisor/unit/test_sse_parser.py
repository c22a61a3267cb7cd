"""SseParser (supervisor/client.py): the text/event-stream format as the client reads it."""

from __future__ import annotations

from supervisor.client import SseParser, StreamEvent


def feed(text: str) -> list[StreamEvent]:
    parser = SseParser()
    events = []
    for line in text.splitlines(keepends=True):
        event = parser.feed(line)
        if event is not None:
            events.append(event)
    return events


def test_an_event_is_its_id_name_and_json_data():
    """id, event and data lines make one event when a blank line ends it; data is JSON."""
    text = 'id: 1-1\nevent: job.completed\ndata: {"id": "a"}\n\n'
    assert feed(text) == [StreamEvent("1-1", "job.completed", {"id": "a"})]


def test_comments_retry_and_data_less_blocks_make_no_event():
    """Keep-alive comments, a retry field and a block without data dispatch nothing."""
    assert feed(": keep-alive\n\nretry: 1000\n\nevent: x\n\n") == []


def test_crlf_multi_line_data_and_the_last_id_carry_over():
    """CRLF line ends work, data lines join with newlines (not JSON: kept as text), and an
    event without an id line keeps the last id, as the format says."""
    text = "id: 7-2\r\ndata: one\r\ndata: two\r\n\r\ndata: 3\r\n\r\n"
    assert feed(text) == [
        StreamEvent("7-2", "message", "one\ntwo"),
        StreamEvent("7-2", "message", 3),
    ]
