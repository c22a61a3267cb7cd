"""Timers: a deadline heap with lazy deletion (supervisor/timers.py)."""

from __future__ import annotations

from collections.abc import Callable, Hashable

from hypothesis import given
from hypothesis import strategies as st

from supervisor.timers import Timers


def recorder(fired: list[Hashable], key: Hashable) -> Callable[[], None]:
    return lambda: fired.append(key)


def drain(timers: Timers, now: float) -> list[Hashable]:
    """Pop and run every callback due at ``now``, one at a time as the loop does."""
    fired: list[Hashable] = []
    while (callback := timers.pop_due(now)) is not None:
        fired.append(callback())
    return fired


def test_due_callbacks_come_out_in_deadline_order():
    """Callbacks pop earliest deadline first, and only once their deadline has passed."""
    timers = Timers()
    for key, deadline in [("c", 3.0), ("a", 1.0), ("b", 2.0), ("d", 10.0)]:
        timers.set(key, deadline, lambda key=key: key)
    assert drain(timers, 5.0) == ["a", "b", "c"]
    assert timers.next_deadline() == 10.0
    assert len(timers) == 1 and "d" in timers


def test_equal_deadlines_fire_in_the_order_they_were_set():
    """Ties are broken by arming order, so equal deadlines are FIFO."""
    timers = Timers()
    for key in ["x", "y", "z"]:
        timers.set(key, 1.0, lambda key=key: key)
    assert drain(timers, 1.0) == ["x", "y", "z"]


def test_deadline_exactly_now_is_due():
    """A deadline equal to ``now`` is due; one a hair later is not."""
    timers = Timers()
    timers.set("a", 5.0, lambda: "a")
    timers.set("b", 5.000001, lambda: "b")
    assert drain(timers, 5.0) == ["a"]


def test_moving_a_deadline_makes_the_old_entry_stale():
    """Re-setting a key moves it: the old heap entry is skipped and the callback runs once."""
    timers = Timers()
    timers.set("k", 1.0, lambda: "old")
    timers.set("k", 4.0, lambda: "new")
    assert timers.deadline("k") == 4.0
    assert drain(timers, 2.0) == []
    assert drain(timers, 4.0) == ["new"]
    assert drain(timers, 100.0) == []
    assert "k" not in timers


def test_moving_a_deadline_earlier_fires_it_earlier():
    """A deadline moved earlier fires at the new time, and not again at the old one."""
    timers = Timers()
    timers.set("k", 10.0, lambda: "k")
    timers.set("k", 2.0, lambda: "k")
    assert drain(timers, 2.0) == ["k"]
    assert drain(timers, 10.0) == []


def test_cancel_forgets_the_key_and_tolerates_unknown_keys():
    """A cancelled deadline never fires; cancelling an unknown key is harmless."""
    timers = Timers()
    timers.set("a", 1.0, lambda: "a")
    timers.set("b", 2.0, lambda: "b")
    timers.cancel("a")
    timers.cancel("never-set")
    assert "a" not in timers and timers.deadline("a") is None
    assert drain(timers, 5.0) == ["b"]


def test_pop_due_one_at_a_time_obeys_a_cancel_made_by_an_earlier_callback():
    """A callback that cancels another already-due deadline stops it from firing."""
    timers = Timers()
    fired: list[str] = []

    def first() -> None:
        fired.append("first")
        timers.cancel("second")

    timers.set("first", 1.0, first)
    timers.set("second", 2.0, recorder(fired, "second"))
    timers.set("third", 3.0, recorder(fired, "third"))
    while (callback := timers.pop_due(10.0)) is not None:
        callback()
    assert fired == ["first", "third"]


def test_a_callback_may_move_another_due_deadline_into_the_future():
    """A callback that moves a due deadline later defers it past the current ``now``."""
    timers = Timers()
    fired: list[str] = []

    def first() -> None:
        fired.append("first")
        timers.set("second", 50.0, lambda: fired.append("second-moved"))

    timers.set("first", 1.0, first)
    timers.set("second", 2.0, lambda: fired.append("second"))
    while (callback := timers.pop_due(10.0)) is not None:
        callback()
    assert fired == ["first"]
    assert timers.deadline("second") == 50.0


def test_a_callback_may_rearm_its_own_key():
    """A callback that sets its own key again (a self re-arming timer) stays armed."""
    timers = Timers()
    armed_while_running: list[bool] = []

    def tick() -> None:
        armed_while_running.append("tick" in timers)
        timers.set("tick", 20.0, tick)

    timers.set("tick", 10.0, tick)
    drain(timers, 10.0)
    assert timers.deadline("tick") == 20.0
    assert armed_while_running == [False]  # popped before its callback ran


def test_next_deadline_skips_stale_and_cancelled_entries():
    """next_deadline reports the earliest live deadline, not a moved or cancelled one."""
    timers = Timers()
    assert timers.next_deadline() is None
    timers.set("a", 1.0, lambda: None)
    timers.set("b", 2.0, lambda: None)
    timers.set("c", 3.0, lambda: None)
    timers.set("a", 9.0, lambda: None)  # a's 1.0 entry is stale now
    timers.cancel("b")
    assert timers.next_deadline() == 3.0
    timers.cancel("c")
    assert timers.next_deadline() == 9.0
    timers.cancel("a")
    assert timers.next_deadline() is None
    assert timers._heap == []  # stale entries were dropped on the way


def test_moving_one_key_many_times_keeps_the_heap_small():
    """Moving one deadline 10,000 times rebuilds the heap instead of growing it."""
    timers = Timers()
    for i in range(10_000):
        timers.set("heartbeat", float(i), lambda: None)
        assert len(timers._heap) <= 65
    assert len(timers) == 1
    assert timers.next_deadline() == 9999.0


def test_heap_stays_bounded_when_most_entries_are_stale():
    """With many live keys each moved many times, the heap holds at most about twice them."""
    timers = Timers()
    for round_ in range(50):
        for key in range(100):
            timers.set(key, float(round_ * 100 + key), lambda: None)
    assert len(timers) == 100
    assert len(timers._heap) <= 2 * 100
    assert drain(timers, 1e9) == [None] * 100


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("set"), st.integers(0, 6), st.integers(0, 50)),
        st.tuples(st.just("cancel"), st.integers(0, 6), st.just(0)),
        st.tuples(st.just("pop"), st.just(0), st.integers(0, 50)),
    ),
    max_size=80,
)


@given(OPS)
def test_behaves_like_a_dict_of_key_to_deadline(ops):
    """Any mix of set/cancel/pop_due agrees with a plain dict model of key -> deadline."""
    timers = Timers()
    model: dict[int, tuple[float, int]] = {}  # key -> (deadline, arming order)
    order = 0
    for op, key, value in ops:
        if op == "set":
            order += 1
            model[key] = (float(value), order)
            timers.set(key, float(value), lambda key=key: key)
        elif op == "cancel":
            model.pop(key, None)
            timers.cancel(key)
        else:
            now = float(value)
            due = sorted((d, o, k) for k, (d, o) in model.items() if d <= now)
            expected = due[0][2] if due else None
            callback = timers.pop_due(now)
            got = None if callback is None else callback()
            assert got == expected
            if expected is not None:
                del model[expected]
        assert len(timers) == len(model)
        assert timers.next_deadline() == min((d for d, _o in model.values()), default=None)
        for k in range(7):
            assert timers.deadline(k) == (model[k][0] if k in model else None)
