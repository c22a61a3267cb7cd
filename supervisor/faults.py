"""Fault injection: die by SIGKILL at a named point, so tests can crash us precisely;
step the wall clock, so tests can show that liveness does not depend on it.

``JOBVISOR_CRASH_AT="point"`` (or ``"point:n"`` for the n-th time) makes the supervisor
kill itself with SIGKILL when it reaches ``point``; unset, ``reached`` is one comparison.
Points: ``start`` (a batch of attempts committed, workers not spawned yet), ``spawn``
(a worker spawned, its PID not committed), ``outcome`` (an outcome committed, its ack
not sent). The crash tests in tests/supervisor/test_chaos.py use all three.

``JOBVISOR_WALL_OFFSET="seconds"`` adds that much to every wall-clock reading of this
supervisor process (``clock.SystemClock.wall``): a clock step (NTP, a VM resumed, an
operator) that happened while the previous supervisor was down.
"""

from __future__ import annotations

import os
import signal

_SPEC = os.environ.get("JOBVISOR_CRASH_AT", "")
_POINT, _, _NTH = _SPEC.partition(":")
_WANTED = int(_NTH) if _NTH.isdigit() else 1
_seen = 0


def _wall_offset() -> float:
    try:
        return float(os.environ.get("JOBVISOR_WALL_OFFSET", "0") or 0)
    except ValueError:
        return 0.0


WALL_OFFSET = _wall_offset()


def reached(point: str) -> None:
    global _seen
    if point != _POINT:
        return
    _seen += 1
    if _seen == _WANTED:
        os.kill(os.getpid(), signal.SIGKILL)
