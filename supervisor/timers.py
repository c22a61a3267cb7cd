"""Deadlines in a heap with lazy deletion (the way trio's run loop keeps them).

Each deadline has a key (e.g. ``("heartbeat", job_id)``). ``set`` records the key's
current deadline and pushes a heap entry; ``cancel`` only forgets the key. A popped
entry whose deadline is no longer the key's current one is stale and skipped, so
moving or cancelling a deadline is O(1) plus one O(log n) push. When stale entries
outnumber live ones the heap is rebuilt, so it never grows without bound.

Hot paths avoid even the push: a worker's heartbeat only moves ``last_seen`` on the job,
and the single heartbeat deadline re-arms itself from ``last_seen`` when it fires.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Hashable
from typing import Any

TimerCallback = Callable[[], Any]


class Timers:
    __slots__ = ("_counter", "_current", "_heap")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Hashable]] = []
        self._current: dict[Hashable, tuple[float, int, TimerCallback]] = {}
        self._counter = itertools.count()

    def __len__(self) -> int:
        return len(self._current)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._current

    def set(self, key: Hashable, deadline: float, callback: TimerCallback) -> None:
        """Arm (or move) the deadline for ``key``; the callback runs once when it passes."""
        seq = next(self._counter)
        self._current[key] = (deadline, seq, callback)
        heapq.heappush(self._heap, (deadline, seq, key))
        if len(self._heap) > 64 and len(self._heap) > 2 * len(self._current):
            self._rebuild()

    def cancel(self, key: Hashable) -> None:
        self._current.pop(key, None)

    def deadline(self, key: Hashable) -> float | None:
        entry = self._current.get(key)
        return None if entry is None else entry[0]

    def next_deadline(self) -> float | None:
        """The earliest live deadline, dropping stale heap entries on the way."""
        heap, current = self._heap, self._current
        while heap:
            deadline, seq, key = heap[0]
            entry = current.get(key)
            if entry is not None and entry[1] == seq:
                return deadline
            heapq.heappop(heap)
        return None

    def pop_due(self, now: float) -> TimerCallback | None:
        """Remove and return the callback of the earliest deadline at or before ``now``.

        One at a time, so a callback that cancels or moves another due deadline is obeyed.
        """
        heap, current = self._heap, self._current
        while heap and heap[0][0] <= now:
            _deadline, seq, key = heapq.heappop(heap)
            entry = current.get(key)
            if entry is not None and entry[1] == seq:
                del current[key]
                return entry[2]
        return None

    def _rebuild(self) -> None:
        self._heap = [(d, s, k) for k, (d, s, _cb) in self._current.items()]
        heapq.heapify(self._heap)
