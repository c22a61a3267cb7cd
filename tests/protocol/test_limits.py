"""Resource limits: a huge announced length allocates nothing; big streams at any read size."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from protocol import (
    DEFAULT_MAX_FRAME,
    HEADER_SIZE,
    Completed,
    Decoder,
    DecoderFailed,
    Failed,
    FrameTooLarge,
    Heartbeat,
    Log,
    Message,
    Progress,
    Started,
    encode,
)

FOUR_GIB_HEADER = b"\xff\xff\xff\xff"
SMALL = 64 * 1024  # bytes: the most the decoder may allocate while refusing a 4 GiB frame


@contextmanager
def peak_memory() -> Iterator[list[int]]:
    """Yield a one-item list that holds the tracemalloc peak (bytes) once the block ends."""
    result = [0]
    tracemalloc.start()
    try:
        yield result
    finally:
        result[0] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


def test_4gib_header_is_refused_at_once_without_allocating() -> None:
    """Four 0xff bytes announce 4 GiB: feed raises FrameTooLarge and memory stays tiny."""
    with peak_memory() as peak:
        decoder = Decoder()
        with pytest.raises(FrameTooLarge, match="4294967295 bytes") as info:
            decoder.feed(FOUR_GIB_HEADER)
        capacity = decoder.buffer_capacity
    assert info.value.code == "frame_too_large"
    assert capacity == 0
    assert peak[0] < SMALL


def test_4gib_header_one_byte_at_a_time_is_refused_on_its_fourth_byte() -> None:
    """Three header bytes wait for more; the fourth raises; the buffer never exceeds 4 bytes."""
    with peak_memory() as peak:
        decoder = Decoder()
        capacities = []
        for byte in FOUR_GIB_HEADER[:3]:
            assert decoder.feed(bytes([byte])) == []
            capacities.append(decoder.buffer_capacity)
        with pytest.raises(FrameTooLarge):
            decoder.feed(FOUR_GIB_HEADER[3:])
    assert capacities == [1, 2, 3]
    assert decoder.buffer_capacity == 0
    assert peak[0] < SMALL
    with pytest.raises(DecoderFailed):
        decoder.feed(b"\x00")


def test_4gib_header_after_good_frames_still_refused_at_once() -> None:
    """A huge length following valid frames is refused when its header completes."""
    decoder = Decoder()
    decoder.receive_data(encode(Started()) + FOUR_GIB_HEADER)
    assert decoder.next_message() == Started()
    with pytest.raises(FrameTooLarge):
        decoder.next_message()


def long_stream() -> list[Message]:
    """About 3 MB of mixed messages: many small ones, some large, one of the maximal size."""
    out: list[Message] = []
    for i in range(600):
        out.append(Heartbeat(ts=i))
        out.append(Progress(percent=i % 101, message=f"step {i}", data={"i": i, "b": b"\x00" * i}))
        if i % 50 == 0:
            out.append(Log(level="info", message="é" * (i * 997 % 150_000), data=[i] * 300))
        if i % 200 == 7:
            out.append(Completed(result={"blob": bytes(range(256)) * 1000, "i": i}))
    out.append(Failed(error="x" * 1000, stack="s" * 300_000))
    # The body of an empty-message log, with the 1-byte fixstr marker swapped for str32's 5.
    overhead = len(encode(Log(level="warn", message=""))) - HEADER_SIZE - 1 + 5
    out.append(Log(level="warn", message="m" * (DEFAULT_MAX_FRAME - overhead)))
    assert len(encode(out[-1])) == HEADER_SIZE + DEFAULT_MAX_FRAME
    return out


def decode_in_chunks(data: bytes, size: int) -> list[Message]:
    decoder = Decoder()
    got: list[Message] = []
    view = memoryview(data)
    for start in range(0, len(data), size):
        got += decoder.feed(view[start : start + size])
        assert decoder.buffer_capacity < HEADER_SIZE + DEFAULT_MAX_FRAME
    assert decoder.buffered == 0
    return got


def test_long_stream_one_byte_and_one_mib_at_a_time_agree() -> None:
    """A ~3 MB mixed stream decodes identically fed 1 byte or 1 MiB per read."""
    messages = long_stream()
    data = b"".join(encode(m) for m in messages)
    assert len(data) > 3 * DEFAULT_MAX_FRAME
    by_byte = decode_in_chunks(data, 1)
    by_mib = decode_in_chunks(data, DEFAULT_MAX_FRAME)
    assert by_byte == by_mib == messages
