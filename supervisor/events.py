"""Events (named in docs/states.md), in-process subscribers with ``*`` wildcards, a replay window.

``emit`` is called by the supervisor core *after* the state change it reports is
committed (the loop releases events only after its commit phase), so a subscriber never
sees something the store might still lose.

Ids. Each event's id is ``"<epoch>-<seq>"``: ``epoch`` is the wall time in milliseconds
when this supervisor's bus was made, ``seq`` counts from 1 in this run. Two runs never
share an epoch (one supervisor per state at a time, and a start takes far longer than a
millisecond), so an id never repeats across restarts, and an id from an earlier run is
recognised as such: a streaming client resuming from it is told to re-read the state
(``since`` answers ``None``), never handed an unrelated event.

The replay window. Every event is rendered at most once, as the JSON every outside
consumer sends (``Event.json``: the payload plus ``"time"``); the newest events are kept
in a ring bounded both by count (``history``) and by the bytes of those renderings
(``history_bytes``), so a few huge results cannot pin gigabytes. ``since(id)`` returns
what followed ``id`` while it is still in the window: a client that reconnects within it
misses nothing and sees nothing twice. The window is kept only once the bus is
``watch``ed (the first stream, the first position handed out): before that no client
holds an id of this run, and a supervisor nobody watches renders nothing.

Matching: ``*`` matches any run of characters (dots included), so ``job.*`` sees every
job event and ``job.*.completed`` sees per-kind completions. The set of subscribers for
an event name is cached, so emitting costs one dict lookup when nobody listens.
"""

from __future__ import annotations

import fnmatch
import itertools
import json
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from protocol.limits import TooDeep
from supervisor.views import iso, jsonable

log = logging.getLogger(__name__)

DEFAULT_HISTORY = 10_000
DEFAULT_HISTORY_BYTES = 16 << 20


@dataclass(frozen=True, slots=True)
class Event:
    id: str  # "<epoch>-<seq>": unique across restarts
    seq: int  # position in this run, from 1
    name: str
    data: dict[str, Any]
    time: float  # wall clock, seconds since the epoch
    channels: tuple[str, ...] = field(default=())  # e.g. ("job:<id>", "kind:<name>")
    _json: str | None = field(default=None, repr=False, compare=False)

    @property
    def json(self) -> str:
        """The payload plus ``"time"``, as one line of JSON (rendered once, when first
        asked for: most events of an unwatched supervisor never are)."""
        if self._json is None:
            object.__setattr__(self, "_json", render(self.data, self.time))
        assert self._json is not None
        return self._json


Callback = Callable[[Event], Any]


def render(data: dict[str, Any], time: float) -> str:
    """The payload as one line of JSON, with ``"time"`` (ISO 8601) added.

    Binary values show as ``{"$base64": ...}`` and non-finite numbers as strings, as in
    the HTTP API; a value nested past the shared limit (it cannot come in through any
    door) is replaced rather than allowed to break the event for every consumer.
    """
    try:
        shown = jsonable(data)
    except TooDeep:
        shown = {k: data[k] for k in ("id", "name", "status", "attempt") if k in data}
        shown["render_error"] = "the event's fields nest too deep to show"
    shown["time"] = iso(time)
    return json.dumps(shown, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


class EventBus:
    def __init__(
        self,
        history: int = DEFAULT_HISTORY,
        *,
        history_bytes: int = DEFAULT_HISTORY_BYTES,
        epoch: int = 0,
    ) -> None:
        self._subs: list[tuple[int, str, Callback]] = []
        self._cache: dict[str, list[Callback]] = {}
        self._seqs = itertools.count(1)
        self._tokens = itertools.count(1)
        self.epoch = str(epoch)
        self.recent: deque[Event] = deque()
        self._history = history
        self._history_bytes = history_bytes
        self._recent_bytes = 0
        self.last_seq = 0
        # Nobody can resume from an id of this run before one is handed out (a stream
        # opens, a client asks for the position): until then nothing is kept or rendered.
        self.watched = False

    @property
    def last_id(self) -> str:
        """The id of the newest event (``"<epoch>-0"`` before the first one): a client
        that resumes from it gets exactly what comes next."""
        return f"{self.epoch}-{self.last_seq}"

    def watch(self) -> str:
        """Keep the replay window from now on (a client may come back with an id of this
        run); returns ``last_id``, the position a resuming client starts from."""
        self.watched = True
        return self.last_id

    def on(self, pattern: str, callback: Callback) -> Callable[[], None]:
        """Subscribe; returns a function that unsubscribes."""
        token = next(self._tokens)
        self._subs.append((token, pattern, callback))
        self._cache.clear()

        def off() -> None:
            self._subs = [s for s in self._subs if s[0] != token]
            self._cache.clear()

        return off

    def _matching(self, name: str) -> list[Callback]:
        subs = self._cache.get(name)
        if subs is None:
            subs = [cb for _t, pattern, cb in self._subs if fnmatch.fnmatchcase(name, pattern)]
            self._cache[name] = subs
        return subs

    def emit(
        self, name: str, data: dict[str, Any], *, time: float, channels: tuple[str, ...] = ()
    ) -> Event:
        seq = next(self._seqs)
        event = Event(f"{self.epoch}-{seq}", seq, name, data, time, channels)
        self.last_seq = seq
        if self.watched:
            self._remember(event)
        for callback in self._matching(name):
            try:
                callback(event)
            except Exception:
                # A subscriber's bug must not take the supervisor (or other subscribers) down.
                log.exception("event subscriber %r failed on %s", callback, name)
        return event

    def _remember(self, event: Event) -> None:
        recent = self.recent
        recent.append(event)
        self._recent_bytes += len(event.json)
        while recent and (len(recent) > self._history or self._recent_bytes > self._history_bytes):
            self._recent_bytes -= len(recent.popleft().json)

    def since(self, event_id: str) -> list[Event] | None:
        """The events after ``event_id``, oldest first; ``None`` when it is not an id of
        this run, or so old that events after it have left the window (a gap)."""
        epoch, sep, seq_text = event_id.strip().rpartition("-")
        if not sep or epoch != self.epoch or not (seq_text.isascii() and seq_text.isdigit()):
            return None
        seq = int(seq_text)
        if seq > self.last_seq:
            return None  # never given out by this run
        oldest = self.recent[0].seq if self.recent else self.last_seq + 1
        if seq < oldest - 1:
            return None  # what followed it is no longer held
        start = seq - oldest + 1
        return list(itertools.islice(self.recent, start, None))
