"""When to try reaching the supervisor again, and when to give up. Sans-IO: time is passed in.

Theory of operation. An *outage* starts when a welcomed connection is lost (or when the
worker starts) and ends with the next welcome; ``start`` and ``next_delay`` take the
caller's monotonic ``now``. A supervisor restart usually takes well under a second, and
the reconnection benchmark measures how fast workers come back, so during the first
``fast_window`` seconds of an outage we retry every ~20 ms (jittered +-50% so that a
thousand workers do not knock in lockstep). A supervisor still absent after that is down
for longer: back off exponentially from 50 ms, doubling, capped at ``reconnect_interval``.
After ``give_up_after`` seconds of continuous failure ``next_delay`` returns ``None``: the
caller stops the job (a restarted supervisor has declared it lost by then). The last
delay is clipped so that one final attempt happens right at the deadline.

``cap`` and ``give_up_after`` start as the library's options and are replaced by what the
supervisor sends in each ``welcome`` (``adopt``): the supervisor decides how long it waits
for a worker, so the worker must follow the same schedule (docs/protocol.md, section 6).

A connection that is welcomed and then dropped at once (a supervisor that closes us on
every replay, say) does not begin a new outage with a new fast window: ``resume`` only
moves the give-up deadline (a supervisor that welcomed us knows we live) and keeps the
fast window and the back-off where they were. Such a loop therefore slows down to one try
per ``cap`` seconds once the first fast window is over, instead of fifty tries a second
for as long as it lasts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import random

FAST_INTERVAL: Final = 0.020
FAST_JITTER: Final = 0.5  # +-50%
BACKOFF_START: Final = 0.050
BACKOFF_FACTOR: Final = 2.0


class RetryPolicy:
    """Delays between connection attempts during one outage."""

    __slots__ = (
        "_backoff_attempts",
        "_fast_until",
        "_outage_start",
        "_random",
        "cap",
        "fast_window",
        "give_up_after",
    )

    def __init__(
        self,
        *,
        cap: float,
        give_up_after: float,
        fast_window: float,
        rng: random.Random | None = None,
    ) -> None:
        self.cap = cap
        self.give_up_after = give_up_after
        self.fast_window = fast_window
        self._random = rng  # made at the first jitter: most jobs never fail to connect
        self._outage_start = 0.0
        self._fast_until = 0.0
        self._backoff_attempts = 0

    def start(self, now: float) -> None:
        """An outage begins (connection lost, or the worker just started)."""
        self._outage_start = now
        self._fast_until = now + self.fast_window
        self._backoff_attempts = 0

    def resume(self, now: float) -> None:
        """A connection was welcomed, then dropped right away: the same outage goes on.

        The give-up window starts again from ``now``; the fast window and the back-off
        do not.
        """
        self._outage_start = now

    def adopt(self, cap: float, give_up_after: float) -> None:
        """Follow the schedule a supervisor sent in its welcome."""
        self.cap = cap
        self.give_up_after = give_up_after

    @property
    def outage_start(self) -> float:
        return self._outage_start

    def deadline(self) -> float:
        """Monotonic time at which the current outage makes us give up."""
        return self._outage_start + self.give_up_after

    def in_fast_window(self, now: float) -> bool:
        """True while the outage is young enough for ~20 ms retries (else: backing off)."""
        return now < self._fast_until

    def next_delay(self, now: float) -> float | None:
        """Seconds to wait after a failed attempt at ``now``; ``None``: give up."""
        deadline = self.deadline()
        if now >= deadline:
            return None
        if self.in_fast_window(now):
            if self._random is None:
                import random  # noqa: PLC0415 - see __init__

                self._random = random.Random()  # noqa: S311 - jitter, not a secret
            jitter = self._random.uniform(1.0 - FAST_JITTER, 1.0 + FAST_JITTER)
            delay = FAST_INTERVAL * jitter
        else:
            delay = min(BACKOFF_START * BACKOFF_FACTOR**self._backoff_attempts, self.cap)
            if delay < self.cap:
                self._backoff_attempts += 1
        return min(delay, deadline - now)
