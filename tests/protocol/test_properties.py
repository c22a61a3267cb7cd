"""Hypothesis properties: round trips, any split of a stream, arbitrary bytes.

Bounded by the suite's "ci" profile (tests/conftest.py); HYPOTHESIS_PROFILE=fuzz turns
the same properties into a long run.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import (
    MESSAGE_TYPES,
    Decoder,
    Heartbeat,
    Message,
    ProtocolError,
    decode_body,
    encode,
    encode_body,
    from_wire,
)
from tests.protocol.fuzz_decoder import MAX_FRAMES, check_stream
from tests.protocol.strategies import (
    MESSAGES,
    hostile_streams,
    message_like_maps,
    messages,
    splits,
)


def decode_chunks(chunks: list[bytes]) -> tuple[list[Message], Decoder]:
    decoder = Decoder()
    got: list[Message] = []
    for chunk in chunks:
        got += decoder.feed(chunk)
    return got, decoder


@pytest.mark.parametrize("tag", sorted(MESSAGE_TYPES))
@given(data=st.data())
def test_encode_decode_round_trip(tag: str, data: st.DataObject) -> None:
    """Every valid message of every type decodes back to itself and re-encodes identically."""
    message = data.draw(MESSAGES[tag])
    frame = encode(message)
    (decoded,) = Decoder().feed(frame)
    assert decoded == message
    assert encode(decoded) == frame
    assert from_wire(message.to_wire()) == message


@given(messages)
def test_to_wire_puts_type_first_and_omits_none(message: Message) -> None:
    """The canonical map starts with type and holds no nil optional field (except data)."""
    wire = message.to_wire()
    assert next(iter(wire)) == "type"
    assert wire["type"] == message.TYPE
    nil_allowed = {"data"} if message.TYPE == "welcome" else set()
    assert all(value is not None for key, value in wire.items() if key not in nil_allowed)


@given(msgs=st.lists(messages, max_size=8), tail=messages, data=st.data())
def test_any_chunking_gives_the_same_messages(
    msgs: list[Message], tail: Message, data: st.DataObject
) -> None:
    """Whole, byte by byte or in random pieces, with a partial frame trailing: same messages."""
    stream = b"".join(encode(m) for m in msgs)
    tail_frame = encode(tail)
    trailing = tail_frame[: data.draw(st.integers(0, len(tail_frame) - 1))]
    full = stream + trailing
    ways = {
        "whole": [full],
        "bytes": [full[i : i + 1] for i in range(len(full))],
        "random": data.draw(splits(full)),
    }
    for way, chunks in ways.items():
        got, decoder = decode_chunks(chunks)
        assert got == msgs, way
        assert decoder.buffered == decoder.buffer_capacity == len(trailing), way
        assert decoder.feed(tail_frame[len(trailing) :]) == [tail], way


@given(st.binary(max_size=512), st.integers(1, 64), st.sampled_from(MAX_FRAMES))
def test_arbitrary_bytes_give_messages_or_a_protocol_error(
    data: bytes, chunk: int, max_frame: int
) -> None:
    """Random bytes, in any chunking, decode to messages or raise a ProtocolError, nothing else."""
    check_stream(data, chunk, max_frame)


@given(hostile_streams(), st.integers(1, 64), st.sampled_from(MAX_FRAMES))
def test_hostile_streams_give_messages_or_a_protocol_error(
    data: bytes, chunk: int, max_frame: int
) -> None:
    """Mixed good, mistyped and corrupted frames obey the decoder's invariant at any split."""
    check_stream(data, chunk, max_frame)


@given(message_like_maps)
def test_message_like_maps_validate_or_raise_invalid_message(wire: dict[str, Any]) -> None:
    """A map with any fields either validates into a message or raises a ProtocolError."""
    try:
        message = from_wire(wire)
    except ProtocolError:
        return
    body = encode_body(message)
    assert encode_body(decode_body(body)) == body


def _one_at_a_time(chunks: list[bytes]) -> tuple[list[Message], str | None]:
    decoder = Decoder()
    got: list[Message] = []
    for chunk in chunks:
        decoder.receive_data(chunk)
        try:
            while (message := decoder.next_message()) is not None:
                got.append(message)
        except ProtocolError as exc:
            return got, f"{exc.code}: {exc.message}"
    return got, None


def _batched(chunks: list[bytes]) -> tuple[list[Message], str | None]:
    decoder = Decoder()
    got: list[Message] = []
    for chunk in chunks:
        messages, error = decoder.receive(chunk)
        got += messages
        if error is not None:
            return got, f"{error.code}: {error.message}"
    return got, None


@given(hostile_streams(), st.data())
def test_batched_receive_agrees_with_next_message(data: bytes, draw: st.DataObject) -> None:
    """receive() (the supervisor's fast path) gives the same messages and error as next_message."""
    chunks = draw.draw(splits(data)) if data else [b""]
    assert _batched(chunks) == _one_at_a_time(chunks)
    whole = [data]
    assert _batched(whole) == _one_at_a_time(whole)


def test_heartbeats_without_fields_share_one_instance() -> None:
    """A bare heartbeat decodes to one shared frozen instance; one with ts does not."""
    frames = encode(Heartbeat()) * 2 + encode(Heartbeat(ts=5))
    first, second, third = Decoder().feed(frames)
    assert first is second
    assert third == Heartbeat(ts=5) and third is not first
