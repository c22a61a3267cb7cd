"""The protocol's errors: one small hierarchy, every failure typed and named.

Anything other than a ``ProtocolError`` escaping the decoder is a bug (the promise h11
makes for its parser, kept here for ours). Each error carries a ``code``: the same
string a supervisor puts in the ``error`` frame it sends before closing, so a worker
author can look the code up in docs/protocol.md.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Codes carried by ``error`` frames (docs/protocol.md lists what each means)."""

    # Raised by this package while decoding a byte stream.
    FRAME_TOO_LARGE = "frame_too_large"
    INVALID_MSGPACK = "invalid_msgpack"
    INVALID_MESSAGE = "invalid_message"
    UNKNOWN_TYPE = "unknown_type"
    # Decided by the supervisor during the handshake or later in a connection.
    UNSUPPORTED_VERSION = "unsupported_version"
    HANDSHAKE_REQUIRED = "handshake_required"
    UNKNOWN_JOB = "unknown_job"
    WRONG_JOB = "wrong_job"
    BAD_TOKEN = "bad_token"  # noqa: S105 - an error code, not a secret
    JOB_NOT_RUNNING = "job_not_running"
    UNEXPECTED_MESSAGE = "unexpected_message"


class ProtocolError(Exception):
    """Base of every error raised by ``protocol``; ``code`` is an :class:`ErrorCode`."""

    code: ErrorCode = ErrorCode.INVALID_MESSAGE

    def __init__(self, message: str, *, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0])


class FrameTooLarge(ProtocolError):
    """A frame header announced more bytes than the configured maximum."""

    code = ErrorCode.FRAME_TOO_LARGE


class DecodeError(ProtocolError):
    """A frame body is not valid msgpack (or uses a type the protocol forbids)."""

    code = ErrorCode.INVALID_MSGPACK


class InvalidMessage(ProtocolError):
    """A frame decoded, but is not a valid message: not a map, bad or missing fields."""

    code = ErrorCode.INVALID_MESSAGE


class UnknownMessageType(InvalidMessage):
    """The frame's ``type`` is a string this protocol version does not define."""

    code = ErrorCode.UNKNOWN_TYPE


class DecoderFailed(ProtocolError):
    """The decoder was used again after it raised: a connection must close on error."""
