"""Message classes: the type table, validation of every field, canonical to_wire."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import (
    LOG_LEVELS,
    MESSAGE_TYPES,
    PROTOCOL_VERSION,
    SUPERVISOR_MESSAGES,
    WORKER_MESSAGES,
    Ack,
    Cancel,
    Completed,
    ErrorCode,
    Failed,
    Heartbeat,
    Hello,
    InvalidMessage,
    Log,
    Progress,
    UnknownMessageType,
    Welcome,
    from_wire,
)
from protocol.messages import _CHECKS, _FAST, OUTCOMES

# The smallest valid map of each type: required fields only.
MINIMAL: dict[str, dict[str, Any]] = {
    "hello": {"type": "hello", "v": 2, "job_id": "j", "pid": 1},
    "challenge": {"type": "challenge", "nonce": bytes(32), "proof": bytes(32)},
    "auth": {"type": "auth", "proof": bytes(32)},
    "welcome": {
        "type": "welcome",
        "job_id": "j",
        "name": "n",
        "data": None,
        "attempt": 1,
        "heartbeat_interval": 5,
        "reconnect_interval": 2,
        "give_up_after": 60.0,
    },
    "error": {"type": "error", "code": "bad_token", "message": "m"},
    "started": {"type": "started"},
    "progress": {"type": "progress", "percent": 0},
    "heartbeat": {"type": "heartbeat"},
    "log": {"type": "log", "level": "info", "message": "m"},
    "completed": {"type": "completed"},
    "failed": {"type": "failed", "error": "e"},
    "ack": {"type": "ack", "of": "completed"},
    "cancel": {"type": "cancel"},
}

# Optional fields of each type, with a valid value for each.
OPTIONAL: dict[str, dict[str, Any]] = {
    "hello": {"nonce": bytes(range(32)), "ts": 1},
    "challenge": {"ts": 1},
    "auth": {"ts": 1},
    "welcome": {"ts": 1.5},
    "error": {"ts": 1},
    "started": {"ts": 1},
    "progress": {"message": "m", "data": {"k": [1]}, "ts": 1},
    "heartbeat": {"ts": 1},
    "log": {"data": [1, 2], "ts": 1},
    "completed": {"result": {"ok": True}, "ts": 1},
    "failed": {"stack": "s", "ts": 1},
    "ack": {"ts": 1},
    "cancel": {"reason": "r", "ts": 1},
}

NAN = math.nan
INF = math.inf

# Values every field must refuse. A field absent from this table accepts anything.
BAD: dict[str, list[Any]] = {
    "v": [-1, "1", 1.0, True, None, [1]],
    "job_id": ["", 7, b"j", None],
    "nonce": [b"", bytes(31), bytes(33), "0" * 32, 7, [0] * 32],
    "proof": [b"", bytes(31), bytes(33), "0" * 32, None],
    "pid": [0, -5, "4242", 1.5, True, None],
    "name": [7, b"n", None],
    "attempt": [0, "1", 1.0, True, None],
    "heartbeat_interval": [0, -1, 0.0, "5", NAN, INF, True, None],
    "reconnect_interval": [0, -1, 0.0, "5", NAN, INF, True, None],
    "give_up_after": [0, -0.5, "60", NAN, INF, False, None],
    "code": [7, b"c", None],
    "message": [7, b"m", {"m": 1}],
    "percent": [-1, 100.5, 150, -0.5, NAN, INF, "50", True, [50]],
    "level": ["fatal", "INFO", "warning", 1, b"info"],
    "error": [7, b"e", None],
    "stack": [7, b"s"],
    "of": ["maybe", "Completed", "ack", 1],
    "reason": [7, b"r"],
    "ts": ["now", NAN, INF, -INF, True, [1]],
}


def _field_cases() -> list[tuple[str, str, Any]]:
    cases = []
    for tag, minimal in MINIMAL.items():
        for name in [*minimal, *OPTIONAL[tag]]:
            if name == "type":
                continue
            for value in BAD.get(name, []):
                required = name in minimal
                if value is None and not required:
                    continue  # nil in an optional field means absent: valid
                cases.append((tag, name, value))
    return cases


def test_type_table_maps_each_tag_to_its_class() -> None:
    """MESSAGE_TYPES holds the thirteen types, each class keyed by its own TYPE."""
    assert set(MESSAGE_TYPES) == set(MINIMAL)
    for tag, cls in MESSAGE_TYPES.items():
        assert tag == cls.TYPE


def test_every_type_has_exactly_one_sending_side() -> None:
    """Worker and supervisor message sets are disjoint and together cover the table."""
    assert WORKER_MESSAGES.isdisjoint(SUPERVISOR_MESSAGES)
    assert set(MESSAGE_TYPES) == WORKER_MESSAGES | SUPERVISOR_MESSAGES


def test_protocol_version_is_two() -> None:
    """The current protocol version is 2 (the challenge-response handshake)."""
    assert PROTOCOL_VERSION == 2


@pytest.mark.parametrize("tag", sorted(MINIMAL))
def test_minimal_message_validates_and_round_trips(tag: str) -> None:
    """The required fields alone make a valid message whose to_wire is the same map."""
    message = from_wire(dict(MINIMAL[tag]))
    assert type(message) is MESSAGE_TYPES[tag]
    assert message.to_wire() == MINIMAL[tag]


@pytest.mark.parametrize("tag", sorted(MINIMAL))
def test_optional_fields_round_trip_in_declaration_order(tag: str) -> None:
    """With every optional field set, to_wire has type first, then fields in class order."""
    full = MINIMAL[tag] | OPTIONAL[tag]
    message = from_wire(full)
    wire = message.to_wire()
    declared = ["type"] + [f.name for f in dataclasses.fields(message)]  # type: ignore[arg-type]
    assert list(wire) == declared
    assert wire == full


@pytest.mark.parametrize("tag", sorted(MINIMAL))
def test_missing_required_field_names_type_and_field(tag: str) -> None:
    """Dropping any required field raises InvalidMessage naming the type and the field."""
    for name in MINIMAL[tag]:
        if name == "type":
            continue
        wire = {k: v for k, v in MINIMAL[tag].items() if k != name}
        with pytest.raises(InvalidMessage, match=f"^{tag} is missing required field '{name}'$"):
            from_wire(wire)


@pytest.mark.parametrize(("tag", "name", "value"), _field_cases())
def test_bad_field_value_names_type_field_and_value(tag: str, name: str, value: Any) -> None:
    """A mistyped or out-of-range field raises InvalidMessage naming type.field and the value."""
    wire = MINIMAL[tag] | {name: value}
    with pytest.raises(InvalidMessage) as info:
        from_wire(wire)
    text = str(info.value)
    assert text.startswith(f"{tag}.{name} must be "), text
    kind = "nil" if value is None else type(value).__name__
    assert f", got {kind} " in text, text
    if not isinstance(value, list | dict):
        assert repr(value)[:20] in text, text
    assert info.value.code is ErrorCode.INVALID_MESSAGE


def test_every_checked_field_of_every_type_has_bad_values() -> None:
    """The BAD table covers every field except the free-form data and result."""
    names = {n for tag in MINIMAL for n in [*MINIMAL[tag], *OPTIONAL[tag]]} - {"type"}
    assert names - set(BAD) == {"data", "result"}


@pytest.mark.parametrize("level", sorted(LOG_LEVELS))
def test_each_log_level_is_accepted(level: str) -> None:
    """debug, info, warn and error are the log levels."""
    assert from_wire({"type": "log", "level": level, "message": "m"}) == Log(level, "m")


@pytest.mark.parametrize("percent", [0, 100, 0.0, 100.0, 42.5, 5e-324])
def test_percent_bounds_are_inclusive(percent: float) -> None:
    """percent accepts integers and floats from 0 to 100 inclusive."""
    assert from_wire({"type": "progress", "percent": percent}) == Progress(percent)


def test_large_integers_are_valid_where_only_a_minimum_is_set() -> None:
    """pid, attempt, v and ts accept values up to uint64 max."""
    big = 2**64 - 1
    assert from_wire({"type": "hello", "v": big, "job_id": "j", "pid": big}).pid == big
    assert from_wire({"type": "heartbeat", "ts": big}) == Heartbeat(ts=big)


def test_nil_in_an_optional_field_means_absent() -> None:
    """An optional field sent as nil is dropped and not re-encoded."""
    message = from_wire({"type": "progress", "percent": 1, "message": None, "ts": None})
    assert message == Progress(1)
    assert message.to_wire() == {"type": "progress", "percent": 1}


def test_nil_result_is_the_same_as_no_result() -> None:
    """completed with result nil equals completed without result, and encodes without it."""
    assert from_wire({"type": "completed", "result": None}) == Completed()
    assert Completed(result=None).to_wire() == {"type": "completed"}


def test_welcome_always_sends_its_data_even_when_nil() -> None:
    """welcome.data is required on the wire but may be nil, and to_wire keeps the nil."""
    message = from_wire(MINIMAL["welcome"])
    assert isinstance(message, Welcome)
    assert message.data is None
    assert "data" in message.to_wire()


def test_falsy_values_are_present_not_absent() -> None:
    """0, "", false, [] and {} in optional fields are values and are encoded."""
    for result in (0, "", False, [], {}):
        assert Completed(result=result).to_wire() == {"type": "completed", "result": result}
    assert Cancel(reason="").to_wire() == {"type": "cancel", "reason": ""}


def test_unknown_extra_fields_are_ignored() -> None:
    """Fields this version does not know are dropped, so newer peers can add optional ones."""
    message = from_wire({"type": "heartbeat", "cpu": 0.5, "nested": {"a": [1]}})
    assert message == Heartbeat()
    assert message.to_wire() == {"type": "heartbeat"}


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ([1, 2], "a message must be a map, got list"),
        ("hello", "a message must be a map, got str"),
        (5, "a message must be a map, got int"),
        (None, "a message must be a map, got nil"),
        (b"\x80", "a message must be a map, got bytes"),
        ({}, "a message must have a 'type' field"),
        ({"v": 1}, "a message must have a 'type' field"),
        ({"type": 5}, "'type' must be a string, got int 5"),
        ({"type": b"hello"}, "'type' must be a string, got bytes b'hello'"),
        ({"type": ["hello"]}, "'type' must be a string, got list of length 1"),
    ],
)
def test_not_a_message_is_invalid(body: Any, text: str) -> None:
    """Non-maps, maps without type and non-string types raise InvalidMessage saying so."""
    with pytest.raises(InvalidMessage) as info:
        from_wire(body)
    assert str(info.value) == text
    assert type(info.value) is InvalidMessage


@pytest.mark.parametrize("tag", ["shutdown", "Hello", "", "hello "])
def test_unknown_type_names_the_type(tag: str) -> None:
    """A string type this version does not define raises UnknownMessageType naming it."""
    with pytest.raises(UnknownMessageType, match=f"unknown message type {tag!r}") as info:
        from_wire({"type": tag})
    assert info.value.code is ErrorCode.UNKNOWN_TYPE
    assert isinstance(info.value, InvalidMessage)


def test_long_unknown_type_is_shortened_in_the_error() -> None:
    """A huge unknown type is cut in the error text, so errors stay one line."""
    with pytest.raises(UnknownMessageType) as info:
        from_wire({"type": "x" * 10_000})
    assert len(str(info.value)) < 80


def test_long_bad_value_is_shortened_in_the_error() -> None:
    """A huge bad string value is cut to a short repr in the error text."""
    with pytest.raises(InvalidMessage) as info:
        from_wire({"type": "log", "level": "x" * 100_000, "message": "m"})
    assert str(info.value).endswith("...")
    assert len(str(info.value)) < 200


def test_deeply_nested_bad_value_does_not_overflow_the_stack() -> None:
    """A bad field nested past Python's recursion limit gives InvalidMessage, not RecursionError."""
    deep: Any = 1
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(InvalidMessage, match=r"hello\.pid must be an integer >= 1, got list of"):
        from_wire(MINIMAL["hello"] | {"pid": deep})
    with pytest.raises(InvalidMessage, match="'type' must be a string, got list of length 1"):
        from_wire({"type": deep})


def test_messages_are_frozen_and_slotted() -> None:
    """Message instances cannot be changed and carry no per-instance dict."""
    message = Ack(of="failed")
    with pytest.raises(dataclasses.FrozenInstanceError):
        message.of = "completed"  # type: ignore[misc]
    assert not hasattr(message, "__dict__")


def test_messages_compare_by_value() -> None:
    """Two messages with equal fields are equal (tests and dedupe rely on it)."""
    assert Failed(error="e", stack="s") == Failed(error="e", stack="s")
    assert Failed(error="e") != Failed(error="e", stack="s")
    assert Hello(2, "j", 2) == from_wire(MINIMAL["hello"] | {"pid": 2})


_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.binary(max_size=4),
    st.sampled_from(["info", "warn", "completed", "failed", "", "debug", "error"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)


@pytest.mark.parametrize("name", sorted(_CHECKS))
@given(value=_VALUES)
def test_inline_fast_checks_agree_with_the_checkers(name: str, value: object) -> None:
    """The generated parsers' inline test accepts exactly what the field's checker accepts."""
    fast = _FAST[name]
    try:
        _CHECKS[name]("t", name, value)
        accepted = True
    except InvalidMessage:
        accepted = False
    if fast is None:
        assert accepted
        return
    namespace = {"isfinite": math.isfinite, "LOG_LEVELS": LOG_LEVELS, "OUTCOMES": OUTCOMES}
    assert bool(eval(fast, namespace, {"v": value})) is accepted
