"""The warm pool's refill rule (docs/workflows.md, "The warm pool"), on a manual clock: a
worker taken less than ``REFILL_DELAY`` ago counts as coming back, one busy for longer as
away, so a chain of short steps does not make the pool start an interpreter per refill."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from supervisor.clock import ManualClock
from supervisor.workflows.pool import REFILL_DELAY, WarmPool, _Waiting


def pool_on(clock: ManualClock, size: int = 4) -> WarmPool:
    pool = WarmPool("pkg.mod:fn", size=size)
    runner: Any = SimpleNamespace(loop=SimpleNamespace(clock=clock))
    pool._runner = runner
    return pool


def take(pool: WarmPool, pid: int, clock: ManualClock) -> None:
    worker = _Waiting(handle=None, pipe=-1, argv=(), cwd=None, env={})  # type: ignore[arg-type]
    worker.taken_at = clock.monotonic()
    pool._busy[pid] = worker


def test_nothing_busy_wants_the_full_size() -> None:
    """With no worker out, the pool wants ``size`` waiting and no second look."""
    assert pool_on(ManualClock())._idle_target() == (4, None)


def test_a_worker_just_taken_counts_as_coming_back_until_refill_delay() -> None:
    """A step taken a moment ago lowers the target by one, with a look again when it would
    count as away; from then on it is replaced like any long step."""
    clock = ManualClock()
    pool = pool_on(clock)
    take(pool, 1, clock)
    assert pool._idle_target() == (3, pytest.approx(REFILL_DELAY))
    clock.advance(REFILL_DELAY * 0.75)
    target, recheck = pool._idle_target()
    assert (target, recheck) == (3, pytest.approx(REFILL_DELAY * 0.25))
    assert recheck is not None
    clock.advance(recheck)  # when the timer it asks for fires
    assert pool._idle_target() == (4, None)


def test_a_chain_keeps_the_target_below_size_while_each_step_is_short() -> None:
    """In a chain one worker is always busy, each freshly taken: every refill sees it as
    coming back, so it never asks for the interpreter the returning worker would make
    surplus; the next look is due when the newest taken would count as away."""
    clock = ManualClock()
    pool = pool_on(clock)
    for pid in range(1, 6):
        pool._busy.clear()  # the previous step's worker came back
        take(pool, pid, clock)
        clock.advance(0.003)
        target, recheck = pool._idle_target()
        assert target == 3
        assert recheck == pytest.approx(REFILL_DELAY - 0.003)


def test_size_zero_never_asks_for_a_worker() -> None:
    """``workflow_pool_size = 0``: nothing waits, busy or not."""
    clock = ManualClock()
    pool = pool_on(clock, size=0)
    take(pool, 1, clock)
    assert pool._idle_target() == (0, None)
