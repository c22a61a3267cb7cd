"""One nesting limit for the wire: a frame deeper than ``MAX_DEPTH`` is a protocol error."""

from __future__ import annotations

from typing import Any

import pytest

from protocol import (
    Completed,
    Decoder,
    InvalidMessage,
    Log,
    Progress,
    decode_body,
    encode,
    encode_frame,
    pack,
)
from protocol.limits import MAX_DEPTH, TooDeep, check, depth_exceeds


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


def test_depth_counts_containers_not_scalars() -> None:
    """A scalar is depth 0; each list, tuple or dict around it adds one level."""
    assert not depth_exceeds(1, 0)
    assert not depth_exceeds([], 1) and depth_exceeds([], 0)
    assert not depth_exceeds(nested(MAX_DEPTH)) and depth_exceeds(nested(MAX_DEPTH + 1))
    assert depth_exceeds({(1, (2,)): 0}, 2)  # keys count too


def test_check_names_what_is_too_deep() -> None:
    """check raises TooDeep (a ValueError) whose message names the value and the limit."""
    with pytest.raises(TooDeep, match=f"^result nests deeper than {MAX_DEPTH} levels$"):
        check(nested(MAX_DEPTH + 1), "result")
    check(nested(100_000), "x", limit=200_000)  # iterative: no RecursionError


FRAMES = {
    "result": lambda deep: Completed(result=deep),
    "progress data": lambda deep: Progress(percent=1.0, data=deep),
    "log fields": lambda deep: Log(level="info", message="m", data=deep),
}


@pytest.mark.parametrize("kind", list(FRAMES))
def test_a_frame_nested_too_deep_is_refused_by_every_decoding_path(kind: str) -> None:
    """Results, progress and log data past the limit: InvalidMessage, however decoded."""
    # Built by hand: encode() itself refuses such a message.
    frame = encode_frame(pack(FRAMES[kind](nested(MAX_DEPTH + 1)).to_wire()))
    with pytest.raises(InvalidMessage, match=f"deeper than {MAX_DEPTH} levels"):
        decode_body(frame[4:])
    with pytest.raises(InvalidMessage, match=f"deeper than {MAX_DEPTH} levels"):
        Decoder().feed(frame)
    messages, error = Decoder().receive(encode(FRAMES[kind]("fine")) + frame)
    assert len(messages) == 1
    assert isinstance(error, InvalidMessage) and error.code == "invalid_message"


@pytest.mark.parametrize("kind", list(FRAMES))
def test_a_frame_at_the_limit_decodes(kind: str) -> None:
    """A payload exactly at the limit (as deep as job data may be) decodes whole."""
    message = FRAMES[kind](nested(MAX_DEPTH))
    assert Decoder().feed(encode(message)) == [message]


@pytest.mark.parametrize("kind", list(FRAMES))
def test_encoding_refuses_what_decoding_would_refuse(kind: str) -> None:
    """A sender learns at once (TooDeep, a ValueError) rather than by a refused frame."""
    with pytest.raises(TooDeep, match=f"payload nests deeper than {MAX_DEPTH} levels"):
        encode(FRAMES[kind](nested(MAX_DEPTH + 1)))
    assert isinstance(TooDeep("x"), ValueError)
