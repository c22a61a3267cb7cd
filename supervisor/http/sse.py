"""``GET /events``: the supervisor's events as Server-Sent Events (docs/http-api.md, "Events").

Theory of operation. The route (registered here, like every other route, so auth and
query checks are shared) answers an ``OpenStream``; the HTTP server then turns that
connection into a stream: the response head goes out with no length (chunked), and
from then on the connection is a ``Sink`` that this module writes frames into. The
connection is neither idle nor reading any more, so it is never evicted for a new one or
timed out; instead at most ``sse_max_streams`` streams are open at once (503 past it).

``EventStreams`` subscribes to every event on the bus. The bus emits only after the
commit of what an event reports, and what is written to a connection is released
after the commit too, so a stream never shows what the store could lose. Each event
is rendered once by the bus (``Event.json``); a frame is three lines around it.

Resuming: a client that sends ``Last-Event-ID`` (or ``?last_event_id=``) first gets the
events after it from the bus's replay window, then live ones; both come from the loop
thread, so there is no gap and no duplicate between them. An id from an earlier run, or
one whose successors have left the window, gets ``event: reset`` instead: the client
must re-read the state over the REST API. The reset carries the current position as
its id, so a client that reconnects again resumes from there.

Slow clients: events are written optimistically, and what the socket does not take
waits in the connection's buffer. A stream whose *backlog* (bytes released after an
earlier commit that its socket has still not taken) is over ``sse_buffer`` when the
next event or keep-alive comes is closed (``sse_clients_dropped`` counts them): one
stalled reader costs at most that much plus one iteration's events, and nobody waits
for it. What the current iteration wrote does not count: a burst of events in one
iteration, or one event larger than the limit, reaches a client that keeps up.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol
from urllib.parse import parse_qs, urlsplit

from supervisor.errors import BadRequest
from supervisor.http.exchange import Request, Response
from supervisor.http.routes import error_response, route
from supervisor.logthrottle import LogThrottle

if TYPE_CHECKING:
    from supervisor.config import Settings
    from supervisor.core import Supervisor
    from supervisor.events import Event, EventBus
    from supervisor.metrics import Counters

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/event-stream; charset=utf-8"
CHANNEL_KINDS = ("job", "workflow", "kind")
MAX_CHANNELS = 64
KEEPALIVE = b": keep-alive\n\n"
# Sent first: a browser's EventSource reconnects after 1 s instead of its default 3 s.
RECONNECT = b"retry: 1000\n\n"
# The position a stream opened at: a client that has read no event yet resumes from it.
POSITION_HEADER = "x-last-event-id"


@dataclass(frozen=True, slots=True)
class OpenStream(Response):
    """The route's answer: make this connection a stream (the server does it)."""

    channels: frozenset[str] = field(default_factory=frozenset)
    last_event_id: str | None = None


class Sink(Protocol):
    """A streaming connection, as this module sees it (``supervisor.http.server``)."""

    id: int

    def send_chunk(self, data: bytes) -> None: ...
    def backlog(self) -> int: ...
    def close(self, reason: str = "closed") -> None: ...


@route("/events", "GET", ("channel", "last_event_id"))
def open_events(sup: Supervisor, request: Request, params: dict[str, str]) -> Response:
    channels = parse_channels(request.target)
    last = request.query.get("last_event_id") or request.headers.get("last-event-id") or None
    if request.method == "HEAD":
        # Where a stream opened now would start: a client that reads it, then submits a
        # job and streams from it, misses none of the job's events.
        headers = [("cache-control", "no-cache"), (POSITION_HEADER, sup.events.watch())]
        return Response(200, b"", CONTENT_TYPE, headers)
    return OpenStream(200, b"", CONTENT_TYPE, channels=channels, last_event_id=last)


def parse_channels(target: str) -> frozenset[str]:
    """The ``channel`` parameters (repeatable), each ``job:ID``, ``workflow:ID`` or
    ``kind:NAME``; none means every event."""
    values = parse_qs(urlsplit(target).query, keep_blank_values=True).get("channel", [])
    if len(values) > MAX_CHANNELS:
        raise BadRequest(f"at most {MAX_CHANNELS} channel parameters, got {len(values)}")
    for value in values:
        prefix, sep, rest = value.partition(":")
        if not sep or prefix not in CHANNEL_KINDS or not rest:
            raise BadRequest(f"channel {value!r} is not job:ID, workflow:ID or kind:NAME")
    return frozenset(values)


def frame(event: Event) -> bytes:
    return f"id: {event.id}\nevent: {event.name}\ndata: {event.json}\n\n".encode()


def reset_frame(position: str, reason: str) -> bytes:
    data = json.dumps({"reason": reason}, ensure_ascii=False)
    return f"id: {position}\nevent: reset\ndata: {data}\n\n".encode()


@dataclass(slots=True)
class _Stream:
    sink: Sink
    channels: frozenset[str]

    def wants(self, event: Event) -> bool:
        return not self.channels or not self.channels.isdisjoint(event.channels)


class EventStreams:
    """Every open stream of one HTTP server, fed from the supervisor's event bus."""

    def __init__(
        self,
        bus: EventBus,
        settings: Settings,
        counters: Counters,
        monotonic: Callable[[], float],
    ) -> None:
        self.bus = bus
        self.monotonic = monotonic
        self.limit = settings.sse_buffer
        self.max_streams = settings.sse_max_streams
        self.keepalive_interval = settings.sse_keepalive
        self.counters = counters
        self._streams: dict[int, _Stream] = {}
        self._throttle = LogThrottle(log)  # a flood of slow clients: say so at a rate
        self._off = bus.on("*", self._publish)

    def __len__(self) -> int:
        return len(self._streams)

    def full(self) -> Response | None:
        """The 503 to answer when no more streams may open, else ``None``."""
        if len(self._streams) < self.max_streams:
            return None
        return error_response(
            503,
            "too_many_streams",
            f"{self.max_streams} event streams are open, the most this supervisor "
            "serves at once (sse_max_streams); retry later",
            [("retry-after", "5")],
        )

    def open(self, sink: Sink, request: OpenStream) -> None:
        """Start ``sink``'s stream: what it missed (or a reset), then live events."""
        self.bus.watch()
        stream = _Stream(sink, request.channels)
        self._streams[sink.id] = stream
        sink.send_chunk(RECONNECT)
        if request.last_event_id is None:
            return
        missed = self.bus.since(request.last_event_id)
        if missed is None:
            shown = request.last_event_id[:80]  # echoed, so bounded
            reason = (
                f"event {shown!r} is not in the replay window "
                "(from before a restart, too old, or never sent): re-read the state"
            )
            sink.send_chunk(reset_frame(self.bus.last_id, reason))
            return
        for event in missed:
            if stream.wants(event) and not self._write(stream, frame(event)):
                return

    def discard(self, sink_id: int) -> None:
        """The connection closed (for whatever reason)."""
        self._streams.pop(sink_id, None)

    def keepalive(self, sink_id: int) -> None:
        stream = self._streams.get(sink_id)
        if stream is not None:
            self._write(stream, KEEPALIVE)

    def _publish(self, event: Event) -> None:
        if not self._streams:
            return
        data = b""
        for stream in list(self._streams.values()):
            if stream.wants(event):
                data = data or frame(event)
                self._write(stream, data)

    def _write(self, stream: _Stream, data: bytes) -> bool:
        """Queue ``data``, or drop a client that has fallen too far behind."""
        if stream.sink.backlog() > self.limit:
            self.counters.sse_clients_dropped += 1
            self._throttle.log(
                logging.WARNING,
                "slow",
                self.monotonic(),
                "closed an event stream: its client is more than %d bytes behind",
                self.limit,
            )
            stream.sink.close("too slow: the event buffer is full")
            self.discard(stream.sink.id)
            return False
        stream.sink.send_chunk(data)
        return True

    def close(self) -> None:
        self._off()
        self._streams.clear()
