"""What a ``Session`` reports after consuming bytes from the supervisor.

The driver (the I/O thread, or a benchmark's selectors loop) reacts to these; the session
has already updated its own state when it returns them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from protocol import Welcome


@dataclass(frozen=True, slots=True)
class Welcomed:
    """The supervisor accepted our hello; ``first`` is False after a reconnect."""

    welcome: Welcome
    first: bool


@dataclass(frozen=True, slots=True)
class Refused:
    """The supervisor sent an ``error`` frame and will close the connection.

    ``fatal`` is True when it answered our hello with a code that means the job is not
    ours any more (``FATAL_CODES``): the driver must stop the job, not reconnect.
    """

    code: str
    message: str
    fatal: bool


@dataclass(frozen=True, slots=True)
class Acked:
    """The outcome (``completed`` or ``failed``) is durable; it will not be resent."""

    of: str


@dataclass(frozen=True, slots=True)
class CancelRequested:
    """The supervisor asks the job to stop."""

    reason: str | None


@dataclass(frozen=True, slots=True)
class ProtocolViolation:
    """The supervisor sent bytes or a message that make no sense here; close and retry."""

    reason: str


Event: TypeAlias = Welcomed | Refused | Acked | CancelRequested | ProtocolViolation
