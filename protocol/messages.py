"""Message types: one frozen, slotted dataclass per ``type`` and one table from tag to class.

A message on the wire is a msgpack map with a string ``type`` plus the fields below.
``from_wire`` validates a decoded map into an instance (or raises ``InvalidMessage``
naming the message type, the field and the bad value); ``to_wire`` produces the
canonical map: ``type`` first, then the fields in declaration order, optional fields
omitted when ``None``. Unknown extra keys are ignored, so a newer peer may add optional
fields without breaking an older one; an unknown ``type`` is an error.

Every message may carry ``ts`` (milliseconds since the epoch, the sender's clock). It is
informational only: receivers never use it for liveness or stored times.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Final, TypeAlias

from protocol.errors import InvalidMessage, UnknownMessageType
from protocol.handshake import NONCE_SIZE, PROOF_SIZE

PROTOCOL_VERSION: Final = 2
LOG_LEVELS: Final = frozenset({"debug", "info", "warn", "error"})
OUTCOMES: Final = frozenset({"completed", "failed"})

Checker: TypeAlias = Callable[[str, str, Any], Any]


def _type_name(value: object) -> str:
    return "nil" if value is None else type(value).__name__


def _show(value: object) -> str:
    # Containers are summarised, never repr'd: a peer controls their nesting (up to
    # msgpack's depth limit, past Python's recursion limit) and their size.
    if isinstance(value, list | dict):
        return f"of length {len(value)}"
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _bad(tag: str, name: str, expected: str, value: object) -> InvalidMessage:
    got = f"{_type_name(value)} {_show(value)}"
    return InvalidMessage(f"{tag}.{name} must be {expected}, got {got}")


def _any(tag: str, name: str, value: Any) -> Any:
    return value


def _str(tag: str, name: str, value: Any) -> str:
    if type(value) is not str:
        raise _bad(tag, name, "a string", value)
    return value


def _nonempty_str(tag: str, name: str, value: Any) -> str:
    if type(value) is not str or not value:
        raise _bad(tag, name, "a non-empty string", value)
    return value


def _int_at_least(minimum: int) -> Checker:
    def check(tag: str, name: str, value: Any) -> int:
        if type(value) is not int or value < minimum:
            raise _bad(tag, name, f"an integer >= {minimum}", value)
        return value

    return check


def _number(tag: str, name: str, value: Any) -> float | int:
    if type(value) not in (int, float) or (type(value) is float and not math.isfinite(value)):
        raise _bad(tag, name, "a finite number", value)
    return value  # type: ignore[no-any-return]


def _positive_number(tag: str, name: str, value: Any) -> float | int:
    if _number(tag, name, value) <= 0:
        raise _bad(tag, name, "a number > 0", value)
    return value  # type: ignore[no-any-return]


def _percent(tag: str, name: str, value: Any) -> float | int:
    if type(value) not in (int, float) or not 0 <= value <= 100:  # NaN fails the range
        raise _bad(tag, name, "a number from 0 to 100", value)
    return value  # type: ignore[no-any-return]


def _bin_of_size(size: int) -> Checker:
    def check(tag: str, name: str, value: Any) -> bytes:
        if type(value) is not bytes or len(value) != size:
            raise _bad(tag, name, f"bin of exactly {size} bytes", value)
        return value

    return check


def _one_of(allowed: frozenset[str]) -> Checker:
    expected = "one of " + ", ".join(sorted(allowed))

    def check(tag: str, name: str, value: Any) -> str:
        if type(value) is not str or value not in allowed:
            raise _bad(tag, name, expected, value)
        return value

    return check


# Field name -> checker. Names are shared across message types so that one table holds
# the meaning of a name; a field is required when its dataclass field has no default.
_CHECKS: Final[Mapping[str, Checker]] = {
    "v": _int_at_least(0),
    "job_id": _nonempty_str,
    "pid": _int_at_least(1),
    "nonce": _bin_of_size(NONCE_SIZE),
    "proof": _bin_of_size(PROOF_SIZE),
    "name": _str,
    "data": _any,
    "attempt": _int_at_least(1),
    "heartbeat_interval": _positive_number,
    "reconnect_interval": _positive_number,
    "give_up_after": _positive_number,
    "code": _str,
    "message": _str,
    "percent": _percent,
    "level": _one_of(LOG_LEVELS),
    "result": _any,
    "error": _str,
    "stack": _str,
    "of": _one_of(OUTCOMES),
    "reason": _str,
    "ts": _number,
}


class Message:
    """Base of every message class; ``TYPE`` is the wire tag."""

    __slots__ = ()
    TYPE: ClassVar[str]
    # (name, checker, required) per field, in wire order; filled in by ``_register``.
    _SPEC: ClassVar[tuple[tuple[str, Checker, bool], ...]]

    def to_wire(self) -> dict[str, Any]:
        """The canonical map for this message (what ``encode`` packs)."""
        wire: dict[str, Any] = {"type": self.TYPE}
        for name, _check, required in self._SPEC:
            value = getattr(self, name)
            if required or value is not None:
                wire[name] = value
        return wire


MESSAGE_TYPES: dict[str, type[Message]] = {}
_ABSENT: Final = object()


def _register(cls: type[Message]) -> type[Message]:
    spec = []
    for f in fields(cls):  # type: ignore[arg-type]
        required = f.default is f.default_factory  # both MISSING: no default given
        spec.append((f.name, _CHECKS[f.name], required))
    cls._SPEC = tuple(spec)
    MESSAGE_TYPES[cls.TYPE] = cls
    _PARSERS[cls.TYPE] = _parser(cls)
    return cls


Parser: TypeAlias = Callable[[dict[str, Any], str], Message]
_PARSERS: dict[str, Parser] = {}


_POSITIVE: Final = "(type(v) is int or (type(v) is float and isfinite(v))) and v > 0"
# Field name -> a Python expression in ``v`` that is true exactly when ``_CHECKS[name]``
# accepts ``v`` (``None``: anything goes). The generated parsers test this inline and
# call the checker only to raise its error; tests/protocol check that the two agree.
_FAST: Final[Mapping[str, str | None]] = {
    "v": "type(v) is int and v >= 0",
    "job_id": "type(v) is str and v != ''",
    "pid": "type(v) is int and v >= 1",
    "nonce": f"type(v) is bytes and len(v) == {NONCE_SIZE}",
    "proof": f"type(v) is bytes and len(v) == {PROOF_SIZE}",
    "name": "type(v) is str",
    "data": None,
    "attempt": "type(v) is int and v >= 1",
    "heartbeat_interval": _POSITIVE,
    "reconnect_interval": _POSITIVE,
    "give_up_after": _POSITIVE,
    "code": "type(v) is str",
    "message": "type(v) is str",
    "percent": "(type(v) is int or type(v) is float) and 0 <= v <= 100",
    "level": "type(v) is str and v in LOG_LEVELS",
    "result": None,
    "error": "type(v) is str",
    "stack": "type(v) is str",
    "of": "type(v) is str and v in OUTCOMES",
    "reason": "type(v) is str",
    "ts": "type(v) is int or (type(v) is float and isfinite(v))",
}


def _missing(tag: str, name: str) -> InvalidMessage:
    return InvalidMessage(f"{tag} is missing required field {name!r}")


def _parser(cls: type[Message]) -> Parser:
    """A validating constructor for ``cls``, generated once as straight-line code.

    Hot path: a supervisor decodes every heartbeat and progress of every worker. The
    generated function tests each field inline (``_FAST``), makes the instance with
    ``object.__new__`` and fills its slots through their member descriptors, which skips
    the frozen dataclass ``__init__`` (an ``object.__setattr__`` per field) and a kwargs
    dict; the result is the same immutable object. Every optional field of every message
    defaults to ``None``, and nil in an optional field means "absent".
    """
    namespace: dict[str, Any] = {
        "new": object.__new__,
        "cls": cls,
        "ABSENT": _ABSENT,
        "missing": _missing,
        "isfinite": math.isfinite,
        "LOG_LEVELS": LOG_LEVELS,
        "OUTCOMES": OUTCOMES,
    }
    lines = ["def parse(obj, tag):", "    message = new(cls)", "    get = obj.get"]
    for name, check, required in cls._SPEC:
        namespace[f"put_{name}"] = getattr(cls, name).__set__
        namespace[f"check_{name}"] = check
        fast = _FAST[name]
        if required:
            lines += [
                f"    v = get({name!r}, ABSENT)",
                "    if v is ABSENT:",
                f"        raise missing(tag, {name!r})",
            ]
            if fast is not None:
                lines += [f"    if not ({fast}):", f"        check_{name}(tag, {name!r}, v)"]
        else:
            lines.append(f"    v = get({name!r})")
            if fast is not None:
                lines += [
                    f"    if v is not None and not ({fast}):",
                    f"        check_{name}(tag, {name!r}, v)",
                ]
        lines.append(f"    put_{name}(message, v)")
    lines.append("    return message")
    exec("\n".join(lines), namespace)  # noqa: S102 - our own fixed templates, no input
    parse: Parser = namespace["parse"]
    return parse


def from_wire(obj: Any) -> Message:
    """Validate one decoded frame body into its message class."""
    if type(obj) is not dict:
        raise InvalidMessage(f"a message must be a map, got {_type_name(obj)}")
    tag = obj.get("type")
    if tag is None:
        raise InvalidMessage("a message must have a 'type' field")
    if type(tag) is not str:
        raise InvalidMessage(f"'type' must be a string, got {_type_name(tag)} {_show(tag)}")
    if tag == "heartbeat" and len(obj) == 1:
        return HEARTBEAT  # the commonest message of all carries nothing: share one
    parse = _PARSERS.get(tag)
    if parse is None:
        shown = tag if len(tag) <= 40 else tag[:37] + "..."
        raise UnknownMessageType(f"unknown message type {shown!r}")
    return parse(obj, tag)


# --- worker -> supervisor ----------------------------------------------------------------


@_register
@dataclass(frozen=True, slots=True)
class Hello(Message):
    """First frame of every connection (and of every reconnection); opens the handshake.

    ``nonce`` is required by version 2 but optional on the wire, so that a hello of
    another version (version 1 sent the token instead) still decodes and can be answered
    with ``unsupported_version`` rather than a bare ``invalid_message``.
    """

    TYPE: ClassVar[str] = "hello"
    v: int
    job_id: str
    pid: int
    nonce: bytes | None = None
    ts: float | None = None


@_register
@dataclass(frozen=True, slots=True)
class Auth(Message):
    """The worker's proof that it knows the token (sent only after a valid challenge)."""

    TYPE: ClassVar[str] = "auth"
    proof: bytes
    ts: float | None = None


@_register
@dataclass(frozen=True, slots=True)
class Started(Message):
    """The worker began (or, after a reconnect, resumed) its job."""

    TYPE: ClassVar[str] = "started"
    ts: float | None = None


@_register
@dataclass(frozen=True, slots=True)
class Progress(Message):
    TYPE: ClassVar[str] = "progress"
    percent: float
    message: str | None = None
    data: Any = None
    ts: float | None = None


@_register
@dataclass(frozen=True, slots=True)
class Heartbeat(Message):
    TYPE: ClassVar[str] = "heartbeat"
    ts: float | None = None


@_register
@dataclass(frozen=True, slots=True)
class Log(Message):
    TYPE: ClassVar[str] = "log"
    level: str
    message: str
    data: Any = None
    ts: float | None = None


@_register
@dataclass(frozen=True, slots=True)
class Completed(Message):
    """The job's outcome: success. Kept and resent by the worker until acked."""

    TYPE: ClassVar[str] = "completed"
    result: Any = None
    ts: float | None = None


@_register
@dataclass(frozen=True, slots=True)
class Failed(Message):
    """The job's outcome: failure. Kept and resent by the worker until acked."""

    TYPE: ClassVar[str] = "failed"
    error: str
    stack: str | None = None
    ts: float | None = None


# --- supervisor -> worker ----------------------------------------------------------------


@_register
@dataclass(frozen=True, slots=True)
class Welcome(Message):
    """Accepts a hello; carries the job's payload."""

    TYPE: ClassVar[str] = "welcome"
    job_id: str
    name: str
    data: Any  # the job's payload; may be nil, but the key is always sent
    attempt: int
    heartbeat_interval: float
    reconnect_interval: float  # the longest pause between the worker's reconnection tries
    give_up_after: float  # seconds without a supervisor after which the worker stops
    ts: float | None = None


@_register
@dataclass(frozen=True, slots=True)
class Challenge(Message):
    """Answers a hello: the supervisor's nonce and its proof that it knows the token."""

    TYPE: ClassVar[str] = "challenge"
    nonce: bytes
    proof: bytes
    ts: float | None = None


@_register
@dataclass(frozen=True, slots=True)
class Error(Message):
    """Refusal or protocol error; the sender closes the connection after it."""

    TYPE: ClassVar[str] = "error"
    code: str
    message: str
    ts: float | None = None


@_register
@dataclass(frozen=True, slots=True)
class Ack(Message):
    """The outcome ``of`` is durable in the store; the worker may stop resending it."""

    TYPE: ClassVar[str] = "ack"
    of: str
    ts: float | None = None


@_register
@dataclass(frozen=True, slots=True)
class Cancel(Message):
    """Asks the worker to stop; SIGTERM and then SIGKILL follow after a grace period."""

    TYPE: ClassVar[str] = "cancel"
    reason: str | None = None
    ts: float | None = None


HEARTBEAT: Final = Heartbeat()

WORKER_MESSAGES: Final = frozenset(
    {"hello", "auth", "started", "progress", "heartbeat", "log", "completed", "failed"}
)
SUPERVISOR_MESSAGES: Final = frozenset({"challenge", "welcome", "error", "ack", "cancel"})
