"""Events (named in docs/states.md), in-process subscribers with ``*`` wildcards, a replay ring.

``emit`` is called by the supervisor core *after* the state change it reports is
committed (the loop releases events only after its commit phase), so a subscriber never
sees something the store might still lose. Each event gets a monotonically increasing
id; the last ``history`` events are kept so a streaming client can resume from an id.

Matching: ``*`` matches any run of characters (dots included), so ``job.*`` sees every
job event and ``job.*.completed`` sees per-kind completions. The set of subscribers for
an event name is cached, so emitting costs one dict lookup when nobody listens.
"""

from __future__ import annotations

import fnmatch
import itertools
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    name: str
    data: dict[str, Any]
    time: float  # wall clock, seconds since the epoch
    channels: tuple[str, ...] = field(default=())  # e.g. ("job:<id>",)


Callback = Callable[[Event], Any]


class EventBus:
    def __init__(self, history: int = 1000) -> None:
        self._subs: list[tuple[int, str, Callback]] = []
        self._cache: dict[str, list[Callback]] = {}
        self._ids = itertools.count(1)
        self._tokens = itertools.count(1)
        self.recent: deque[Event] = deque(maxlen=history)
        self.last_id = 0

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
        event = Event(next(self._ids), name, data, time, channels)
        self.last_id = event.id
        self.recent.append(event)
        for callback in self._matching(name):
            try:
                callback(event)
            except Exception:
                # A subscriber's bug must not take the supervisor (or other subscribers) down.
                log.exception("event subscriber %r failed on %s", callback, name)
        return event
