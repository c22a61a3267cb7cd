"""The pool worker on its own: waiting, end-of-file, and what is (not) an assignment."""

from __future__ import annotations

import subprocess
import sys

import pytest

from supervisor.workflows.poolworker import (
    EXIT_BAD_ASSIGNMENT,
    Assignment,
    BadAssignment,
    parse_assignment,
    resolve_entry,
)
from tests.workflows.poolhelpers import POOLWORKER, STEPS


def start_worker(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, *POOLWORKER, "--path", str(STEPS), "--import", "poolsteps", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_end_of_file_before_an_assignment_exits_zero_silently():
    """A closed pipe (the supervisor is gone) ends a waiting worker at once, saying nothing."""
    worker = start_worker()
    out, err = worker.communicate(b"", timeout=30)
    assert (worker.returncode, out, err) == (0, b"", b"")


def test_a_line_that_is_not_an_assignment_exits_saying_why():
    """Garbage on the pipe: exit code 2 and one line on stderr naming the problem."""
    worker = start_worker()
    _out, err = worker.communicate(b"not json\n", timeout=30)
    assert worker.returncode == EXIT_BAD_ASSIGNMENT
    assert b"[poolworker]" in err and b"not JSON" in err


def test_an_unwritable_log_exits_saying_why(tmp_path):
    """An assignment whose log cannot be opened: exit code 2, the reason on stderr."""
    line = Assignment(env={}, log=str(tmp_path / "missing" / "x.log"), entry="m:f").encode()
    worker = start_worker()
    _out, err = worker.communicate(line, timeout=30)
    assert worker.returncode == EXIT_BAD_ASSIGNMENT
    assert b"cannot open the job's log" in err


def test_an_assignment_round_trips():
    """What the pool encodes is what the worker parses."""
    sent = Assignment(env={"JOBVISOR_JOB_ID": "abc", "X": "é"}, log="/l/a.log", entry="p.m:f")
    assert parse_assignment(sent.encode()) == sent


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b"[]", "not a JSON object"),
        (b'{"env": {"A": 1}, "log": "/a", "entry": "m:f"}', "env is not an object of strings"),
        (b'{"env": {"A=B": "1"}, "log": "/a", "entry": "m:f"}', "invalid names"),
        (b'{"env": {}, "log": "rel.log", "entry": "m:f"}', "not an absolute path"),
        (b'{"env": {}, "log": "/a", "entry": "nocolon"}', "'package.module:function'"),
        (b'{"env": {}, "log": "/a"}', "'package.module:function'"),
        (b"\xff\n", "not JSON"),
    ],
)
def test_bad_assignments_are_refused_naming_the_problem(line, problem):
    """Each malformed assignment is a ``BadAssignment`` whose message names what is wrong."""
    with pytest.raises(BadAssignment) as caught:
        parse_assignment(line)
    assert problem in str(caught.value)


def test_entries_resolve_to_callables_or_say_which_entry_is_wrong(monkeypatch):
    """``module:function`` resolves; a missing or non-callable attribute names the entry."""
    monkeypatch.syspath_prepend(str(STEPS))
    assert resolve_entry("poolsteps:run").__name__ == "run"
    with pytest.raises(AttributeError, match="'poolsteps:nope'"):
        resolve_entry("poolsteps:nope")
    with pytest.raises(TypeError, match="'poolsteps:not_callable'"):
        resolve_entry("poolsteps:not_callable")
