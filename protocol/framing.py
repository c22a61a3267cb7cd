"""Length-prefixed framing: a 4-byte big-endian length N, then N bytes of body.

Theory of operation: bytes arrive in arbitrary pieces. They are appended to one
``bytearray``; ``_pos`` marks where the next unread frame starts. Taking a frame moves
``_pos`` forward and copies only that frame's body. The consumed prefix is dropped once
per ``compact()`` (called after a batch of frames is drained), so the cost is linear in
the bytes received, never "copy the whole buffer for every frame".

A header that announces more than ``max_frame`` bytes is rejected as soon as its four
bytes are present; nothing of that size is ever allocated, and the buffer never holds
more than one maximal frame plus one read's worth of bytes.
"""

from __future__ import annotations

import struct
from typing import Final

from protocol.errors import DecoderFailed, FrameTooLarge

HEADER: Final = struct.Struct(">I")
HEADER_SIZE: Final = HEADER.size
DEFAULT_MAX_FRAME: Final = 1 << 20  # 1 MiB: docs/protocol.md, section 2
MAX_FRAME_LIMIT: Final = (1 << 32) - 1  # what four header bytes can announce

_unpack_header = HEADER.unpack_from


def encode_frame(body: bytes) -> bytes:
    """Prefix ``body`` with its length; the exact bytes that go on the wire."""
    if len(body) > MAX_FRAME_LIMIT:
        raise ValueError(f"frame body of {len(body)} bytes does not fit a 4-byte length")
    return HEADER.pack(len(body)) + body


class FrameDecoder:
    """Split a byte stream into frame bodies. Sans-IO: bytes in, ``bytes`` out."""

    __slots__ = ("_buf", "_failed", "_pos", "max_frame")

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        if not 0 < max_frame <= MAX_FRAME_LIMIT:
            raise ValueError(f"max_frame must be in 1..{MAX_FRAME_LIMIT}, got {max_frame}")
        self.max_frame = max_frame
        self._buf = bytearray()
        self._pos = 0
        self._failed = False

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as frames."""
        return len(self._buf) - self._pos

    @property
    def buffer_capacity(self) -> int:
        """Bytes the internal buffer currently holds (including consumed ones)."""
        return len(self._buf)

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Append received bytes. Call :meth:`next_frame` until it returns ``None``."""
        self._check_open()
        self._buf += data

    def next_frame(self) -> bytearray | None:
        """Return the next complete frame body, or ``None`` when more bytes are needed."""
        self._check_open()
        buf = self._buf
        pos = self._pos
        available = len(buf) - pos
        if available < HEADER_SIZE:
            return None
        (size,) = _unpack_header(buf, pos)
        if size > self.max_frame:
            raise self._too_large(size)
        end = pos + HEADER_SIZE + size
        if end > len(buf):
            return None
        body = buf[pos + HEADER_SIZE : end]  # the one copy: this frame's body
        self._pos = end
        return body

    def frames(self) -> tuple[list[bytearray], FrameTooLarge | None]:
        """Every complete frame body now buffered, then compact; the same as calling
        ``next_frame`` until ``None``, in one pass. An oversized header ends the list and
        is returned (not raised) so the frames before it are not lost."""
        self._check_open()
        buf = self._buf
        pos = self._pos
        end = len(buf)
        limit = self.max_frame
        bodies: list[bytearray] = []
        while end - pos >= HEADER_SIZE:
            (size,) = _unpack_header(buf, pos)
            if size > limit:
                return bodies, self._too_large(size)
            stop = pos + HEADER_SIZE + size
            if stop > end:
                break
            bodies.append(buf[pos + HEADER_SIZE : stop])
            pos = stop
        self._pos = pos
        self.compact()
        return bodies, None

    def compact(self) -> None:
        """Drop consumed bytes; cheap, since only a partial frame can remain."""
        if self._pos:
            if self._pos == len(self._buf):
                self._buf = bytearray()  # all consumed: let a big burst's memory go
            else:
                del self._buf[: self._pos]
            self._pos = 0

    def _check_open(self) -> None:
        if self._failed:
            raise DecoderFailed("decoder already failed; the connection must be closed")

    def _too_large(self, size: int) -> FrameTooLarge:
        """Fail the stream (freeing the buffer) for a header announcing ``size`` bytes."""
        self.fail()
        return FrameTooLarge(
            f"frame announces {size} bytes, more than the {self.max_frame}-byte limit"
        )

    def fail(self) -> None:
        """Mark the stream broken (a later frame was invalid) and free the buffer."""
        self._failed = True
        self._buf = bytearray()
        self._pos = 0
