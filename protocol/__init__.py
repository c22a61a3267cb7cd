"""jobvisor's wire protocol, sans-IO: framing, message types, validation, errors.

Bytes in, messages out; messages in, bytes out. No sockets, no clock, no logging: the
supervisor and every worker library drive it with their own I/O. docs/protocol.md is the
specification for people writing a worker in a new language; ``vectors.json`` beside this
file holds the golden frames that every implementation is tested against.
"""

from protocol import handshake
from protocol.codec import Decoder, decode_body, encode, encode_body, pack, unpack
from protocol.errors import (
    DecodeError,
    DecoderFailed,
    ErrorCode,
    FrameTooLarge,
    InvalidMessage,
    ProtocolError,
    UnknownMessageType,
)
from protocol.framing import DEFAULT_MAX_FRAME, HEADER_SIZE, FrameDecoder, encode_frame
from protocol.messages import (
    LOG_LEVELS,
    MESSAGE_TYPES,
    PROTOCOL_VERSION,
    SUPERVISOR_MESSAGES,
    WORKER_MESSAGES,
    Ack,
    Auth,
    Cancel,
    Challenge,
    Completed,
    Error,
    Failed,
    Heartbeat,
    Hello,
    Log,
    Message,
    Progress,
    Started,
    Welcome,
    from_wire,
)

__all__ = [
    "DEFAULT_MAX_FRAME",
    "HEADER_SIZE",
    "LOG_LEVELS",
    "MESSAGE_TYPES",
    "PROTOCOL_VERSION",
    "SUPERVISOR_MESSAGES",
    "WORKER_MESSAGES",
    "Ack",
    "Auth",
    "Cancel",
    "Challenge",
    "Completed",
    "DecodeError",
    "Decoder",
    "DecoderFailed",
    "Error",
    "ErrorCode",
    "Failed",
    "FrameDecoder",
    "FrameTooLarge",
    "Heartbeat",
    "Hello",
    "InvalidMessage",
    "Log",
    "Message",
    "Progress",
    "ProtocolError",
    "Started",
    "UnknownMessageType",
    "Welcome",
    "decode_body",
    "encode",
    "encode_body",
    "encode_frame",
    "from_wire",
    "handshake",
    "pack",
    "unpack",
]
