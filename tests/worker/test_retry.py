"""The reconnection policy: pure arithmetic on the caller's clock, so no sleeping here."""

from __future__ import annotations

import random

import pytest

from jobvisor_worker._retry import RetryPolicy


def policy(**kwargs: float) -> RetryPolicy:
    defaults = {"cap": 2.0, "give_up_after": 60.0, "fast_window": 5.0}
    defaults.update(kwargs)
    return RetryPolicy(rng=random.Random(7), **defaults)


def test_fast_retries_every_20ms_jittered_during_the_window():
    """In the first 5 s of an outage the delay is 20 ms +-50%."""
    p = policy()
    p.start(100.0)
    now = 100.0
    delays = []
    while now < 104.99:
        delay = p.next_delay(now)
        assert delay is not None
        delays.append(delay)
        now += delay
    assert all(0.010 <= d <= 0.030 for d in delays)
    assert min(delays) < 0.015 < 0.025 < max(delays)  # it really is jittered


def test_backoff_doubles_from_50ms_up_to_the_cap_after_the_window():
    """After the fast window: 50 ms, 100 ms, ... capped at reconnect_interval."""
    p = policy()
    p.start(0.0)
    now = 5.0
    delays = []
    for _ in range(9):
        delay = p.next_delay(now)
        assert delay is not None
        delays.append(round(delay, 6))
        now += delay
    assert delays == [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0]


def test_gives_up_after_the_window_with_a_last_attempt_at_the_deadline():
    """The last delay ends exactly at the give-up time; after it, next_delay is None."""
    p = policy(cap=2.0, give_up_after=60.0)
    p.start(0.0)
    for now in range(5, 12):  # backed off to the 2 s cap by now
        p.next_delay(float(now))
    assert p.next_delay(59.5) == pytest.approx(0.5)
    assert p.next_delay(60.0) is None
    assert p.deadline() == 60.0


def test_fast_window_ends_exactly_fast_window_after_the_outage_start():
    """in_fast_window holds from the outage start until fast_window seconds later."""
    p = policy(fast_window=5.0)
    p.start(10.0)
    assert p.in_fast_window(10.0)
    assert p.in_fast_window(14.999)
    assert not p.in_fast_window(15.0)


def test_start_resets_the_outage():
    """A new outage starts fast again, with a fresh give-up deadline."""
    p = policy()
    p.start(0.0)
    for now in (5.0, 5.05, 5.15):
        p.next_delay(now)
    p.start(1000.0)
    delay = p.next_delay(1000.0)
    assert delay is not None
    assert delay <= 0.030
    assert p.deadline() == 1060.0


def test_small_knobs_give_a_short_window():
    """reconnect_interval=0.05 x 10 attempts gives up after 0.5 s."""
    p = policy(cap=0.05, give_up_after=0.5)
    p.start(0.0)
    now, attempts = 0.0, 0
    while (delay := p.next_delay(now)) is not None:
        now += delay
        attempts += 1
    assert now == pytest.approx(0.5)
    assert attempts > 10  # fast retries the whole time: the window is shorter than 5 s


def test_adopt_replaces_the_cap_and_the_give_up_window():
    """A welcome's schedule changes the back-off cap and the deadline of the next outage."""
    p = policy(cap=2.0, give_up_after=60.0, fast_window=0.0)
    p.adopt(0.25, 3.0)
    p.start(10.0)
    assert p.deadline() == 13.0
    delays = []
    now = 10.0
    while (delay := p.next_delay(now)) is not None:
        delays.append(delay)
        now += delay
    assert max(delays) == 0.25
    assert now == pytest.approx(13.0)


def test_resume_keeps_the_fast_window_and_the_back_off_but_moves_the_deadline():
    """After a connection dropped right away, delays keep growing; the give-up restarts."""
    p = policy(cap=2.0, give_up_after=60.0, fast_window=1.0)
    p.start(0.0)
    assert p.in_fast_window(0.5)
    p.resume(0.5)  # welcomed and dropped at once: the fast window still ends at 1.0
    assert not p.in_fast_window(1.0)
    first = p.next_delay(1.0)
    p.resume(1.1)
    second = p.next_delay(1.1)
    assert (first, second) == (0.05, 0.1)  # the back-off went on, it did not restart
    assert p.deadline() == 61.1
