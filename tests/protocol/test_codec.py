"""The codec: canonical msgpack encoding, DecodeError for every msgpack failure, Decoder."""

from __future__ import annotations

import struct
from typing import Any

import msgpack
import pytest

from protocol import (
    Ack,
    Completed,
    DecodeError,
    Decoder,
    DecoderFailed,
    ErrorCode,
    FrameTooLarge,
    Heartbeat,
    Hello,
    InvalidMessage,
    Log,
    Progress,
    ProtocolError,
    Started,
    UnknownMessageType,
    codec,
    decode_body,
    encode,
    encode_body,
    encode_frame,
    pack,
    unpack,
)

HELLO = Hello(v=2, job_id="j", pid=42, nonce=bytes(32))
GOOD = [HELLO, Started(), Progress(percent=10, message="m"), Heartbeat(ts=5), Completed(result=1)]
BAD_FRAME = encode_frame(b"\xc1")


def stream(*messages: Any) -> bytes:
    return b"".join(encode(m) for m in messages)


# --- encoding ----------------------------------------------------------------------------


def test_encode_is_frame_of_encode_body() -> None:
    """encode() is the length prefix plus encode_body()."""
    assert encode(HELLO) == encode_frame(encode_body(HELLO))


def test_encode_puts_type_first_then_declared_fields() -> None:
    """The body is a map with type first and fields in class order, None fields omitted."""
    body = encode_body(Progress(percent=5, data={"a": 1}))
    assert body == b"\x83\xa4type\xa8progress\xa7percent\x05\xa4data\x81\xa1a\x01"


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, b"\x00"),
        (127, b"\x7f"),
        (128, b"\xcc\x80"),
        (256, b"\xcd\x01\x00"),
        (65536, b"\xce\x00\x01\x00\x00"),
        (2**32, b"\xcf\x00\x00\x00\x01\x00\x00\x00\x00"),
        (-1, b"\xff"),
        (-32, b"\xe0"),
        (-33, b"\xd0\xdf"),
        (-129, b"\xd1\xff\x7f"),
        (-32769, b"\xd2\xff\xff\x7f\xff"),
        (-(2**31) - 1, b"\xd3\xff\xff\xff\xff\x7f\xff\xff\xff"),
        (1.0, b"\xcb" + struct.pack(">d", 1.0)),
        (0.5, b"\xcb" + struct.pack(">d", 0.5)),
        ("é", b"\xa2\xc3\xa9"),
        ("x" * 32, b"\xd9\x20" + b"x" * 32),
        (b"\x00", b"\xc4\x01\x00"),
        (True, b"\xc3"),
        (None, b"\xc0"),
    ],
)
def test_pack_uses_the_smallest_form_and_float64(value: Any, encoded: bytes) -> None:
    """Integers take their smallest form, floats are float64, str and bin stay distinct."""
    assert pack(value) == encoded
    assert unpack(encoded) == value
    assert type(unpack(encoded)) is type(value)


def test_decode_body_validates() -> None:
    """decode_body turns a body into its message, or raises the message-level error."""
    assert decode_body(encode_body(HELLO)) == HELLO
    with pytest.raises(UnknownMessageType):
        decode_body(pack({"type": "nope"}))


def test_timestamp_extension_decodes_to_float_seconds() -> None:
    """The standard msgpack timestamp (ext -1) is the one extension allowed: a float."""
    assert unpack(b"\xd6\xff" + struct.pack(">I", 1_700_000_000)) == 1_700_000_000.0


# --- every msgpack failure is a DecodeError ------------------------------------------------

# (name, body, the exception msgpack itself raises, our text)
MSGPACK_FAILURES = [
    ("format", b"\xc1", msgpack.FormatError, "reserved or unknown type byte"),
    ("extra", b"\xc0\xc0", msgpack.ExtraData, "trailing bytes after the message"),
    ("stack", b"\x91" * 2000 + b"\xc0", msgpack.StackError, "nesting too deep"),
    ("truncated", b"\x92\x01", ValueError, "the body ends in the middle of a value"),
    ("empty", b"", ValueError, "the body ends in the middle of a value"),
    ("utf8", b"\xa1\xff", UnicodeDecodeError, "a string is not valid UTF-8"),
    ("map_key", b"\x81\x01\x02", ValueError, "not allowed for map key"),
    ("array_len", b"\xdd\xff\xff\xff\xff", ValueError, "exceeds max_array_len"),
    ("map_len", b"\xdf\xff\xff\xff\xff", ValueError, "exceeds max_map_len"),
    ("bin_len", b"\xc6\xff\xff\xff\xff", ValueError, "ends in the middle"),
    ("ext", b"\xd4\x05\x00", ValueError, "msgpack extension type 5 is not allowed"),
    ("timestamp", b"\xd5\xff\x00\x00", ValueError, "invalid timestamp"),
]


@pytest.mark.parametrize(
    ("body", "raw_error", "text"),
    [case[1:] for case in MSGPACK_FAILURES],
    ids=[case[0] for case in MSGPACK_FAILURES],
)
def test_every_msgpack_failure_becomes_decode_error(
    body: bytes, raw_error: type[Exception], text: str
) -> None:
    """Whatever msgpack raises for a bad body, unpack raises DecodeError with a clear text."""
    with pytest.raises(raw_error):
        msgpack.unpackb(body, raw=False, timestamp=1, ext_hook=codec._refuse_ext)
    with pytest.raises(DecodeError) as info:
        unpack(body)
    assert text in str(info.value)
    assert str(info.value).startswith("invalid msgpack: ")
    assert info.value.code is ErrorCode.INVALID_MSGPACK
    assert info.value.__cause__ is None and info.value.__suppress_context__


@pytest.mark.parametrize("exc", [TypeError("bad arg"), OverflowError("too big"), ValueError("")])
def test_other_msgpack_exception_kinds_are_converted(
    monkeypatch: pytest.MonkeyPatch, exc: Exception
) -> None:
    """TypeError, OverflowError and text-less errors from msgpack also become DecodeError."""

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise exc

    monkeypatch.setattr(codec, "_unpackb", explode)
    with pytest.raises(DecodeError, match=r"^invalid msgpack: \w"):
        unpack(b"\xc0")


# --- the streaming Decoder -----------------------------------------------------------------


def test_feed_returns_every_completed_message() -> None:
    """feed() returns all messages its bytes complete, in order."""
    assert Decoder().feed(stream(*GOOD)) == GOOD


def test_feed_of_nothing_returns_nothing() -> None:
    """Feeding empty bytes is allowed and returns an empty list."""
    decoder = Decoder()
    assert decoder.feed(b"") == []
    assert decoder.buffered == 0


def test_feed_keeps_a_partial_frame_for_later() -> None:
    """Bytes of an unfinished frame stay buffered until the rest arrives."""
    decoder = Decoder()
    data = stream(HELLO, Started())
    assert decoder.feed(data[:-3]) == [HELLO]
    assert decoder.buffered == len(encode(Started())) - 3
    assert decoder.feed(data[-3:]) == [Started()]
    assert decoder.buffered == decoder.buffer_capacity == 0


def test_next_message_returns_good_messages_before_raising() -> None:
    """With receive_data + next_message, messages before a bad frame are delivered first."""
    decoder = Decoder()
    decoder.receive_data(stream(HELLO, Started()) + BAD_FRAME + stream(Heartbeat()))
    assert decoder.next_message() == HELLO
    assert decoder.next_message() == Started()
    with pytest.raises(DecodeError, match="reserved"):
        decoder.next_message()


def test_feed_raises_on_a_bad_frame_even_after_good_ones() -> None:
    """feed() raises on the bad frame; callers wanting the earlier ones use next_message."""
    with pytest.raises(DecodeError):
        Decoder().feed(stream(HELLO) + BAD_FRAME)


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (BAD_FRAME, DecodeError),
        (b"\xff\xff\xff\xff", FrameTooLarge),
        (encode_frame(pack([1])), InvalidMessage),
        (encode_frame(pack({"type": "x"})), UnknownMessageType),
    ],
)
def test_decoder_fails_for_good_after_any_error(bad: bytes, error: type[ProtocolError]) -> None:
    """After an error every later receive_data, feed and next_message raises DecoderFailed."""
    decoder = Decoder()
    with pytest.raises(error):
        decoder.feed(bad)
    assert decoder.buffer_capacity == 0
    with pytest.raises(DecoderFailed):
        decoder.next_message()
    with pytest.raises(DecoderFailed):
        decoder.feed(encode(HELLO))
    with pytest.raises(DecoderFailed):
        decoder.receive_data(b"")
    with pytest.raises(DecoderFailed):
        decoder.next_message()


def test_decoder_failed_is_a_protocol_error() -> None:
    """DecoderFailed is part of the one hierarchy, so a single except clause covers it."""
    assert issubclass(DecoderFailed, ProtocolError)


def test_decoder_max_frame_is_configurable() -> None:
    """A Decoder built with a smaller limit refuses frames above it."""
    decoder = Decoder(max_frame=32)
    assert decoder.max_frame == 32
    assert decoder.feed(encode(Ack(of="failed"))) == [Ack(of="failed")]
    with pytest.raises(FrameTooLarge, match="more than the 32-byte limit"):
        decoder.feed(encode(Log(level="info", message="x" * 40)))


def test_decoder_accepts_memoryview_chunks() -> None:
    """feed() takes memoryview slices, as a recv_into loop would hand them over."""
    data = memoryview(stream(*GOOD))
    decoder = Decoder()
    got = []
    for start in range(0, len(data), 7):
        got += decoder.feed(data[start : start + 7])
    assert got == GOOD


def test_error_codes_of_the_hierarchy() -> None:
    """Each decoding error carries the code a supervisor puts in its error frame."""
    assert FrameTooLarge("x").code is ErrorCode.FRAME_TOO_LARGE
    assert DecodeError("x").code is ErrorCode.INVALID_MSGPACK
    assert InvalidMessage("x").code is ErrorCode.INVALID_MESSAGE
    assert UnknownMessageType("x").code is ErrorCode.UNKNOWN_TYPE
    assert ProtocolError("x", code=ErrorCode.BAD_TOKEN).code is ErrorCode.BAD_TOKEN
    assert ProtocolError("text").message == "text"


def test_error_codes_are_snake_case_strings() -> None:
    """Every ErrorCode value is the lowercase snake_case form of its name."""
    for code in ErrorCode:
        assert code.value == code.name.lower()
        assert code == code.value
