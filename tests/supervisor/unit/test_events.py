"""EventBus (supervisor/events.py): wildcard subscriptions, isolation, the replay ring."""

from __future__ import annotations

import json
import logging

import pytest

from supervisor.events import Event, EventBus

NAMES = [
    "job.external.spawned",
    "job.x.completed",
    "job.completed",
    "job.resize.failed",
    "workflow.step.started",
]


def received(bus: EventBus, pattern: str) -> list[str]:
    seen: list[str] = []
    bus.on(pattern, lambda event: seen.append(event.name))
    for name in NAMES:
        bus.emit(name, {}, time=0.0)
    return seen


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("*", NAMES),
        ("job.*", NAMES[:4]),
        ("job.*.completed", ["job.x.completed"]),
        ("*.completed", ["job.x.completed", "job.completed"]),
        ("job.completed", ["job.completed"]),
        ("job.external.spawned", ["job.external.spawned"]),
        ("job", []),
        ("workflow.*", ["workflow.step.started"]),
        ("job.*.failed", ["job.resize.failed"]),
    ],
)
def test_patterns_match_names_with_star_spanning_dots(pattern, expected):
    """``*`` matches any run of characters, dots included; other patterns match exactly."""
    assert received(EventBus(), pattern) == expected


def test_subscribers_get_the_event_with_data_time_and_channels():
    """A subscriber is called with the Event emitted, fields intact."""
    bus = EventBus()
    seen: list[Event] = []
    bus.on("job.*", seen.append)
    event = bus.emit("job.completed", {"id": "j1"}, time=12.5, channels=("job:j1",))
    assert seen == [event]
    assert (event.name, event.data, event.time, event.channels) == (
        "job.completed",
        {"id": "j1"},
        12.5,
        ("job:j1",),
    )


def test_unsubscribe_function_stops_delivery_to_that_subscriber_only():
    """The function returned by on() unsubscribes exactly that subscription."""
    bus = EventBus()
    first: list[str] = []
    second: list[str] = []
    off = bus.on("job.*", lambda e: first.append(e.name))
    bus.on("job.*", lambda e: second.append(e.name))
    bus.emit("job.completed", {}, time=0.0)
    off()
    off()  # twice is harmless
    bus.emit("job.failed", {}, time=0.0)
    assert first == ["job.completed"]
    assert second == ["job.completed", "job.failed"]


def test_same_callback_subscribed_twice_is_called_twice_until_one_unsubscribes():
    """Each on() is its own subscription, even for the same callback."""
    bus = EventBus()
    seen: list[str] = []
    off = bus.on("*", lambda e: seen.append(e.name))
    bus.on("job.*", lambda e: seen.append(e.name))
    bus.emit("job.stale", {}, time=0.0)
    off()
    bus.emit("job.lost", {}, time=0.0)
    assert seen == ["job.stale", "job.stale", "job.lost"]


def test_a_raising_subscriber_does_not_stop_the_others(caplog):
    """A subscriber's exception is logged; later subscribers still get the event."""
    bus = EventBus()
    seen: list[str] = []

    def broken(event: Event) -> None:
        raise RuntimeError("subscriber bug")

    bus.on("job.*", lambda e: seen.append("before"))
    bus.on("job.*", broken)
    bus.on("job.*", lambda e: seen.append("after"))
    with caplog.at_level(logging.ERROR, logger="supervisor.events"):
        event = bus.emit("job.completed", {}, time=0.0)
    assert seen == ["before", "after"]
    assert bus.last_id == event.id
    assert any("job.completed" in r.getMessage() for r in caplog.records)


def test_ids_increase_and_last_id_follows():
    """Every event gets the next id, "<epoch>-<seq>" with seq from 1, listened to or not."""
    bus = EventBus(epoch=1700)
    ids = [bus.emit(f"e{i}", {}, time=0.0).id for i in range(5)]
    assert ids == ["1700-1", "1700-2", "1700-3", "1700-4", "1700-5"]
    assert bus.last_id == "1700-5"


def test_recent_ring_keeps_only_the_last_events():
    """The replay ring holds the newest ``history`` events, oldest dropped first."""
    bus = EventBus(history=3)
    bus.watch()
    for i in range(10):
        bus.emit(f"e{i}", {"i": i}, time=float(i))
    assert [e.seq for e in bus.recent] == [8, 9, 10]
    assert [e.name for e in bus.recent] == ["e7", "e8", "e9"]


def test_a_subscriber_added_later_sees_only_later_events():
    """Subscribing after an emit does not replay it (the ring is for streaming clients)."""
    bus = EventBus()
    bus.emit("job.completed", {}, time=0.0)
    bus.emit("job.completed", {}, time=0.0)  # fills the match cache for this name
    seen: list[int] = []
    bus.on("job.*", lambda e: seen.append(e.seq))
    bus.emit("job.completed", {}, time=0.0)
    assert seen == [3]


def test_since_replays_what_followed_an_id_of_this_run():
    """since(id) is every later event, oldest first; the newest id gives nothing more."""
    bus = EventBus(epoch=42)
    bus.watch()
    events = [bus.emit(f"e{i}", {}, time=0.0) for i in range(5)]
    assert [e.seq for e in bus.since(events[1].id) or []] == [3, 4, 5]
    assert bus.since(events[-1].id) == []
    assert [e.seq for e in bus.since("42-0") or []] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    "event_id", ["41-1", "42-6", "42-x", "42-²", "nonsense", "", "-1", "42--1"]
)
def test_since_refuses_ids_not_from_this_run(event_id):
    """An id from another epoch, a future one or garbage gets None (a reset), not events."""
    bus = EventBus(epoch=42)
    bus.watch()
    for i in range(5):
        bus.emit(f"e{i}", {}, time=0.0)
    assert bus.since(event_id) is None


def test_since_refuses_an_id_whose_successors_left_the_window():
    """Once events after an id are gone from the ring, resuming from it would leave a gap."""
    bus = EventBus(history=3, epoch=7)
    bus.watch()
    for i in range(10):
        bus.emit(f"e{i}", {}, time=0.0)
    assert bus.since("7-6") is None
    assert [e.seq for e in bus.since("7-7") or []] == [8, 9, 10]


def test_the_window_is_bounded_by_bytes_too():
    """A few huge payloads push older events out of the window by their JSON size."""
    bus = EventBus(history=1000, history_bytes=10_000, epoch=1)
    bus.watch()
    for i in range(10):
        bus.emit("big", {"blob": "x" * 3000, "i": i}, time=0.0)
    assert [e.data["i"] for e in bus.recent] == [7, 8, 9]
    assert bus.since("1-6") is None


def test_each_event_is_rendered_once_as_json_with_its_time():
    """Event.json is the payload plus an ISO time; bytes show as $base64, NaN as a string."""
    bus = EventBus(epoch=1)
    event = bus.emit("e", {"b": b"\x00", "n": float("nan")}, time=0.5)
    assert json.loads(event.json) == {
        "b": {"$base64": "AA=="},
        "n": "nan",
        "time": "1970-01-01T00:00:00.500Z",
    }


def test_an_unwatched_bus_keeps_nothing_and_resumes_only_from_its_watch():
    """Before anyone is handed an id, events are neither kept nor rendered; from the
    position watch() hands out, resuming works, and earlier ids are a gap."""
    bus = EventBus(epoch=3)
    early = bus.emit("e", {}, time=0.0)
    assert not bus.recent and early._json is None
    position = bus.watch()
    assert position == "3-1"
    bus.emit("e", {}, time=0.0)
    assert [e.seq for e in bus.since(position) or []] == [2]
    assert bus.since("3-0") is None
