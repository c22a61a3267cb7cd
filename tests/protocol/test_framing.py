"""Length-prefixed framing: encode_frame and the FrameDecoder (sans-IO, any split)."""

from __future__ import annotations

import struct

import pytest

from protocol import DEFAULT_MAX_FRAME, HEADER_SIZE, DecoderFailed, FrameDecoder, FrameTooLarge
from protocol.errors import ErrorCode
from protocol.framing import MAX_FRAME_LIMIT, encode_frame

BODIES = [b"", b"a", b"hello", bytes(range(256)) * 3]


def frames_of(decoder: FrameDecoder) -> list[bytes]:
    out = []
    while (body := decoder.next_frame()) is not None:
        out.append(body)
    decoder.compact()
    return out


def test_encode_frame_prefixes_big_endian_length() -> None:
    """encode_frame puts the body length as 4 big-endian bytes before the body."""
    assert encode_frame(b"abc") == b"\x00\x00\x00\x03abc"
    assert encode_frame(b"x" * 258) == b"\x00\x00\x01\x02" + b"x" * 258
    assert HEADER_SIZE == 4


def test_encode_frame_of_empty_body_is_a_bare_header() -> None:
    """An empty body encodes to a zero length and nothing else."""
    assert encode_frame(b"") == b"\x00\x00\x00\x00"


def test_encode_frame_refuses_a_body_a_header_cannot_announce() -> None:
    """A body longer than 2**32 - 1 bytes raises ValueError instead of wrapping the length."""

    class Huge(bytes):
        def __len__(self) -> int:
            return MAX_FRAME_LIMIT + 1

    with pytest.raises(ValueError, match="does not fit a 4-byte length"):
        encode_frame(Huge())


@pytest.mark.parametrize("max_frame", [0, -1, MAX_FRAME_LIMIT + 1])
def test_max_frame_out_of_range_is_refused(max_frame: int) -> None:
    """A max_frame that four header bytes cannot express, or no frame at all, is a ValueError."""
    with pytest.raises(ValueError, match="max_frame"):
        FrameDecoder(max_frame)


def test_default_max_frame_is_one_mebibyte() -> None:
    """The default limit is 1 MiB (docs/protocol.md, section 2)."""
    assert DEFAULT_MAX_FRAME == FrameDecoder().max_frame == 1 << 20


def test_partial_header_and_partial_body_need_more_data() -> None:
    """next_frame returns None until the whole header and body are present."""
    frame = encode_frame(b"hello")
    for end in range(len(frame)):
        decoder = FrameDecoder()
        decoder.receive_data(frame[:end])
        assert decoder.next_frame() is None
        assert decoder.buffered == end
        decoder.receive_data(frame[end:])
        assert decoder.next_frame() == b"hello"
        assert decoder.next_frame() is None


def test_many_frames_in_one_read_come_out_in_order() -> None:
    """Several frames received at once are returned one by one, in order."""
    decoder = FrameDecoder()
    decoder.receive_data(b"".join(encode_frame(body) for body in BODIES))
    assert frames_of(decoder) == BODIES
    assert decoder.buffered == 0


def test_every_split_point_of_a_stream_gives_the_same_frames() -> None:
    """Cutting the stream at any single byte boundary yields the same frames."""
    stream = b"".join(encode_frame(body) for body in BODIES[:3])
    for cut in range(len(stream) + 1):
        decoder = FrameDecoder()
        decoder.receive_data(stream[:cut])
        got = frames_of(decoder)
        decoder.receive_data(stream[cut:])
        got += frames_of(decoder)
        assert got == BODIES[:3], cut


def test_one_byte_at_a_time_gives_the_same_frames() -> None:
    """Feeding the stream byte by byte yields the same frames as feeding it whole."""
    stream = b"".join(encode_frame(body) for body in BODIES)
    decoder = FrameDecoder()
    got = []
    for index in range(len(stream)):
        decoder.receive_data(stream[index : index + 1])
        got += frames_of(decoder)
    assert got == BODIES


def test_receive_data_accepts_bytearray_and_memoryview() -> None:
    """Any bytes-like object can be received, as recv_into buffers are."""
    decoder = FrameDecoder()
    decoder.receive_data(bytearray(b"\x00\x00\x00\x02"))
    decoder.receive_data(memoryview(b"ok"))
    assert decoder.next_frame() == b"ok"


def test_compact_drops_consumed_bytes_and_keeps_the_partial_frame() -> None:
    """After compact() the buffer holds only the bytes of the unfinished frame."""
    decoder = FrameDecoder()
    partial = encode_frame(b"later")[:6]
    decoder.receive_data(encode_frame(b"a" * 100) + encode_frame(b"b") + partial)
    assert decoder.next_frame() == b"a" * 100
    assert decoder.next_frame() == b"b"
    assert decoder.next_frame() is None
    assert decoder.buffered == len(partial)
    assert decoder.buffer_capacity > len(partial)  # consumed bytes still there
    decoder.compact()
    assert decoder.buffer_capacity == decoder.buffered == len(partial)
    decoder.receive_data(encode_frame(b"later")[6:])
    assert decoder.next_frame() == b"later"


def test_compact_with_nothing_consumed_is_a_no_op() -> None:
    """compact() on a buffer whose first frame is unfinished keeps every byte."""
    decoder = FrameDecoder()
    decoder.receive_data(b"\x00\x00")
    decoder.compact()
    assert decoder.buffer_capacity == decoder.buffered == 2


def test_exactly_max_frame_is_accepted_and_one_more_is_refused() -> None:
    """A body of max_frame bytes is a frame; max_frame + 1 is FrameTooLarge."""
    decoder = FrameDecoder(max_frame=10)
    decoder.receive_data(encode_frame(b"x" * 10))
    assert decoder.next_frame() == b"x" * 10
    decoder.receive_data(struct.pack(">I", 11))
    with pytest.raises(FrameTooLarge, match="11 bytes, more than the 10-byte limit") as info:
        decoder.next_frame()
    assert info.value.code is ErrorCode.FRAME_TOO_LARGE


def test_oversized_header_is_refused_before_its_body_arrives() -> None:
    """The limit is checked as soon as the 4 header bytes are there, with no body at all."""
    decoder = FrameDecoder()
    decoder.receive_data(b"\x00\x10\x00")
    assert decoder.next_frame() is None
    decoder.receive_data(b"\x01")
    with pytest.raises(FrameTooLarge, match="1048577"):
        decoder.next_frame()
    assert decoder.buffer_capacity == 0


def test_failed_decoder_refuses_further_use() -> None:
    """After FrameTooLarge both receive_data and next_frame raise DecoderFailed."""
    decoder = FrameDecoder(max_frame=4)
    decoder.receive_data(encode_frame(b"12345"))
    with pytest.raises(FrameTooLarge):
        decoder.next_frame()
    with pytest.raises(DecoderFailed, match="already failed"):
        decoder.receive_data(b"\x00\x00\x00\x00")
    with pytest.raises(DecoderFailed, match="already failed"):
        decoder.next_frame()


def test_fail_frees_the_buffer_and_marks_the_stream_broken() -> None:
    """fail() (used when a later layer rejects a body) empties the buffer and blocks reuse."""
    decoder = FrameDecoder()
    decoder.receive_data(encode_frame(b"abc") + b"\x00\x00")
    decoder.fail()
    assert decoder.buffer_capacity == decoder.buffered == 0
    with pytest.raises(DecoderFailed):
        decoder.next_frame()
    with pytest.raises(DecoderFailed):
        decoder.receive_data(b"")
