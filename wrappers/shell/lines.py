"""The line protocol between ``jobvisor-job.sh`` and its helper (docs/worker-shell.md).

One request line from the script, one reply line from the helper, in turn. A line is
fields separated by one space; the last field of a request (a message, a JSON text) is the
rest of the line, so it may hold spaces. Text that could hold a newline is escaped so that
a line stays one line: a backslash becomes ``\\\\``, a newline ``\\n``, a tab ``\\t``.
That is the whole escape set, chosen because bash can produce it with two parameter
expansions and undo it with ``printf %b`` (every other backslash in the text is doubled, so
``%b`` finds no other escape to interpret).
"""

from __future__ import annotations

import re

_ESCAPES = {"\\\\": "\\", "\\n": "\n", "\\t": "\t"}
_ESCAPE = re.compile(r"\\(.|$)", re.DOTALL)


class LineError(ValueError):
    """A request line the helper cannot read; the reply names what is wrong."""


def escape(text: str) -> str:
    """``text`` as one line: backslash, newline and tab escaped."""
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")


def unescape(text: str) -> str:
    """The inverse of ``escape``; any other backslash sequence is a ``LineError``."""

    def one(match: re.Match[str]) -> str:
        found = _ESCAPES.get(match.group(0))
        if found is None:
            raise LineError(f"unknown escape {match.group(0)!r} (only \\\\, \\n and \\t)")
        return found

    return _ESCAPE.sub(one, text)


def split_request(line: str) -> tuple[str, list[str]]:
    """``"progress 50 half way"`` -> ``("progress", ["50", "half way"])``: the verb and
    its fields, the last one being the rest of the line (unescaped)."""
    verb, sep, rest = line.partition(" ")
    arity = ARITY.get(verb)
    if arity is None:
        raise LineError(f"unknown request {verb!r}; known: {', '.join(sorted(ARITY))}")
    if not sep:
        return verb, []
    fields = rest.split(" ", arity - 1) if arity > 1 else [rest]
    return verb, [*fields[:-1], unescape(fields[-1])]


def reply_ok(value: str = "") -> bytes:
    return f"ok {escape(value)}\n".encode()


def reply_error(message: str) -> bytes:
    return f"error {escape(message)}\n".encode()


def ready_line(job_id: str, name: str, attempt: int) -> bytes:
    """The helper's first line, once the supervisor welcomed the job."""
    return f"ready\t{escape(job_id)}\t{escape(name)}\t{attempt}\n".encode()


# Requests and how many fields each takes at most (the last one is the rest of the line).
ARITY: dict[str, int] = {
    "progress": 2,  # PERCENT [MESSAGE]
    "log": 2,  # LEVEL MESSAGE
    "data": 1,  # [KEY]
    "count": 1,  # [KEY]
    "complete": 1,  # [JSON]
    "fail": 1,  # MESSAGE
    "cancelled": 1,  # (nothing)
    "exit": 1,  # STATUS
}
