"""LogEventGate (supervisor/logevents.py): a bounded rate of log events per job, the rest
counted until their note is taken."""

from __future__ import annotations

from supervisor.logevents import WINDOW, LogEventGate


def test_lines_past_the_rate_are_counted_not_admitted():
    """In one window ``rate`` lines pass; the rest are counted for the note."""
    gate = LogEventGate(3)
    assert [gate.admit("a", 0.0) for _ in range(5)] == [True, True, True, False, False]
    assert gate.window_end("a") == WINDOW
    assert gate.take_dropped("a") == 2
    assert gate.take_dropped("a") == 0


def test_jobs_have_their_own_windows():
    """One job's flood does not hold back another job's lines."""
    gate = LogEventGate(1)
    assert gate.admit("a", 0.0) and not gate.admit("a", 0.1)
    assert gate.admit("b", 0.1)
    assert gate.window_end("b") is None


def test_a_late_note_keeps_counting_until_it_is_taken():
    """Past the window end, lines still count toward the pending note (none is lost from
    it); once it is taken a fresh window admits again."""
    gate = LogEventGate(1)
    gate.admit("a", 0.0)
    gate.admit("a", 0.5)
    assert not gate.admit("a", WINDOW + 0.1)
    assert gate.take_dropped("a") == 2
    assert gate.admit("a", WINDOW + 0.2)


def test_a_quiet_window_just_starts_again():
    """A window without drops ends by itself: the next line opens a new one."""
    gate = LogEventGate(1)
    assert gate.admit("a", 0.0)
    assert gate.admit("a", WINDOW)
