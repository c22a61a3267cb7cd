"""The shape limit every door of jobvisor shares: how deeply a value may nest.

Theory of operation. A job's data, result, progress data and log fields cross several
encoders: JSON over HTTP, msgpack on the wire and in the store, JSON again when they are
shown. Each has its own recursion limit, and they disagree (msgpack-python packs 511
levels and unpacks 1024; Python's JSON and our renderer stop near the interpreter's
recursion limit of 1000 frames, less whatever is on the stack). A value one layer
accepted could then be stored, run, and never shown again. So every door (the HTTP body,
``Supervisor.enqueue``, the wire decoder) applies this one limit, far below all of theirs,
and whatever got in can always be rendered.

Depth counts containers: a scalar is depth 0, ``[]`` and ``{}`` are 1, ``[[1]]`` is 2.
The walk is iterative, so a hostile value cannot exhaust the stack while being checked.
Pure: no I/O, usable by every worker library.
"""

from __future__ import annotations

from typing import Any, Final

MAX_DEPTH: Final = 64


class TooDeep(ValueError):
    """A value nests containers deeper than ``MAX_DEPTH``."""

    def __init__(self, what: str, limit: int = MAX_DEPTH) -> None:
        super().__init__(f"{what} nests deeper than {limit} levels")
        self.what = what
        self.limit = limit


def depth_exceeds(value: Any, limit: int = MAX_DEPTH) -> bool:
    """True if ``value`` nests more than ``limit`` lists/tuples/dicts inside each other."""
    if not isinstance(value, dict | list | tuple):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        if depth > limit:
            return True
        children = (*node.keys(), *node.values()) if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, dict | list | tuple):
                push((child, depth + 1))
    return False


def check(value: Any, what: str = "value", limit: int = MAX_DEPTH) -> None:
    """Raise ``TooDeep`` naming ``what`` if ``value`` nests deeper than ``limit``."""
    if depth_exceeds(value, limit):
        raise TooDeep(what, limit)
