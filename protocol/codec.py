"""Bytes <-> messages: msgpack encoding of frames and the streaming ``Decoder``.

Encoding is canonical (docs/protocol.md): msgpack with the str/bin distinction, integers
in their smallest form, floats as float64, maps in the order ``to_wire`` builds them.

Decoding turns every msgpack failure into a ``DecodeError`` naming the problem;
msgpack raises a zoo (``FormatError``, ``StackError``, ``ExtraData``, plain ``ValueError``
for truncation, ``UnicodeDecodeError``, ``TypeError`` ...), none of which may escape.
Extension types are refused, except the standard timestamp, which decodes to a float.
A frame that nests deeper than ``protocol.limits.MAX_DEPTH`` (payload levels; the
message map itself is one more) is an ``InvalidMessage``: what a worker reports must be
as showable as what was submitted. Encoding refuses such a message too
(``limits.TooDeep``, a ``ValueError``), so a sender learns it at the call that passed
the value instead of having its frame refused, and replayed, on every reconnection.
"""

from __future__ import annotations

from typing import Any, Final

import msgpack

from protocol.errors import DecodeError, DecoderFailed, InvalidMessage, ProtocolError
from protocol.framing import DEFAULT_MAX_FRAME, FrameDecoder, encode_frame
from protocol.limits import MAX_DEPTH, TooDeep, depth_exceeds
from protocol.messages import Message, from_wire

_packb = msgpack.packb  # a fresh Packer per call: worker libraries pack from several threads
_unpackb = msgpack.unpackb

# The shape msgpack errors come in; everything else escaping unpackb would be our bug.
_MSGPACK_ERRORS: Final = (ValueError, TypeError, OverflowError, msgpack.UnpackException)
# A message is a map whose fields carry the payloads: one level more than a payload may.
_FRAME_DEPTH: Final = MAX_DEPTH + 1
# Every byte but those that can open a msgpack container (fixmap, fixarray, array and
# map 16/32). Deleting them from a body leaves at least one byte per container, so a
# body with _FRAME_DEPTH such bytes or fewer cannot nest too deep and skips the walk:
# a C-speed scan instead of a Python walk per message (string bytes may count too,
# which only costs a walk).
_NOT_CONTAINER: Final = bytes(b for b in range(256) if not (0x80 <= b <= 0x9F or 0xDC <= b <= 0xDF))


def _too_deep(body: bytes | bytearray | memoryview, value: Any) -> bool:
    if len(body) <= _FRAME_DEPTH:
        return False
    if isinstance(body, memoryview):
        body = body.tobytes()
    return len(body.translate(None, _NOT_CONTAINER)) > _FRAME_DEPTH and depth_exceeds(
        value, _FRAME_DEPTH
    )


def _decode(body: bytes | bytearray | memoryview, value: Any) -> Message:
    """The message of the unpacked ``value``, checked against the depth limit.

    ``from_wire`` runs first so that a malformed message reports its own problem (the
    golden vectors state those errors).
    """
    message = from_wire(value)
    if _too_deep(body, value):
        raise _depth_error(message)
    return message


def _depth_error(message: Message) -> InvalidMessage:
    return InvalidMessage(
        f"{message.TYPE} nests deeper than {MAX_DEPTH} levels (the limit for job data, "
        "results, progress and log data)"
    )


class _ForbiddenExt(ValueError):
    pass


def _refuse_ext(code: int, data: bytes) -> Any:
    raise _ForbiddenExt(f"msgpack extension type {code} is not allowed")


def pack(obj: Any) -> bytes:
    """msgpack-encode a value the way the protocol does (used for bodies and stores)."""
    return _packb(obj, use_bin_type=True)  # type: ignore[no-any-return]


def unpack(body: bytes | bytearray | memoryview) -> Any:
    """Decode one complete msgpack value, raising only ``DecodeError``."""
    try:
        return _unpackb(body, raw=False, timestamp=1, ext_hook=_refuse_ext)
    except _MSGPACK_ERRORS as exc:
        raise DecodeError(_describe(exc)) from None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, _ForbiddenExt):
        return f"invalid msgpack: {exc}"
    if isinstance(exc, msgpack.ExtraData):
        return "invalid msgpack: trailing bytes after the message"
    if isinstance(exc, msgpack.StackError):
        return "invalid msgpack: nesting too deep"
    if isinstance(exc, msgpack.FormatError):
        return "invalid msgpack: reserved or unknown type byte"
    if isinstance(exc, UnicodeDecodeError):
        return "invalid msgpack: a string is not valid UTF-8"
    text = str(exc) or type(exc).__name__
    if "incomplete" in text:
        return "invalid msgpack: the body ends in the middle of a value"
    return f"invalid msgpack: {text}"


def encode_body(message: Message) -> bytes:
    """The msgpack body of ``message``, without the length prefix; ``TooDeep`` if its
    payload nests deeper than the limit the receiver enforces."""
    wire = message.to_wire()
    body = pack(wire)
    if _too_deep(body, wire):
        raise TooDeep(f"{message.TYPE} payload", MAX_DEPTH)
    return body


def encode(message: Message) -> bytes:
    """The exact frame bytes of ``message``: length prefix plus msgpack body."""
    return encode_frame(encode_body(message))


def decode_body(body: bytes | bytearray | memoryview) -> Message:
    """Decode and validate one frame body."""
    return _decode(body, unpack(body))


class Decoder:
    """Sans-IO stream decoder: ``feed(bytes) -> list[Message]``.

    Any split of the stream gives the same messages. After an error the decoder is
    failed: every later call raises ``DecoderFailed`` and the connection must close.
    For per-message error isolation use ``receive_data`` plus ``next_message``: messages
    before a bad frame are returned before the error is raised.
    """

    __slots__ = ("_frames",)

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self._frames = FrameDecoder(max_frame)

    @property
    def max_frame(self) -> int:
        return self._frames.max_frame

    @property
    def buffered(self) -> int:
        return self._frames.buffered

    @property
    def buffer_capacity(self) -> int:
        return self._frames.buffer_capacity

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        self._frames.receive_data(data)

    def next_message(self) -> Message | None:
        """The next complete message, ``None`` if more bytes are needed."""
        frames = self._frames
        try:
            body = frames.next_frame()
            if body is None:
                frames.compact()
                return None
            return _decode(body, unpack(body))
        except DecoderFailed:
            raise
        except ProtocolError:
            frames.fail()
            raise

    def receive(
        self, data: bytes | bytearray | memoryview
    ) -> tuple[list[Message], ProtocolError | None]:
        """Append ``data``; return the messages it completes, and the error that ended
        the stream if one did (the messages before a bad frame are still returned).

        The fast path for a peer that reads a socket: one call per ``recv``. After an
        error the decoder is failed, as with ``next_message``.
        """
        frames = self._frames
        frames.receive_data(data)
        bodies, error = frames.frames()
        messages: list[Message] = []
        append = messages.append
        try:
            for body in bodies:
                # unpack() and _decode() inlined (same checks): this runs for every message.
                value = _unpackb(body, raw=False, timestamp=1, ext_hook=_refuse_ext)
                message = from_wire(value)
                if (
                    len(body) > _FRAME_DEPTH
                    and len(body.translate(None, _NOT_CONTAINER)) > _FRAME_DEPTH
                    and depth_exceeds(value, _FRAME_DEPTH)
                ):
                    raise _depth_error(message)
                append(message)
        except _MSGPACK_ERRORS as exc:
            frames.fail()
            return messages, DecodeError(_describe(exc))
        except ProtocolError as exc:
            frames.fail()
            return messages, exc
        return messages, error

    def feed(self, data: bytes | bytearray | memoryview) -> list[Message]:
        """Append ``data`` and return every message it completes."""
        self.receive_data(data)
        out = []
        while (message := self.next_message()) is not None:
            out.append(message)
        return out
