"""Write protocol/vectors.json from the readable case tables below.

    python -m tests.protocol.make_vectors          # rewrite the file
    python -m tests.protocol.make_vectors --check  # exit 1 if the file would change

The committed JSON is the golden truth: tests read it and never call this script. The
script exists so that a new case is one readable line here, and so that every case is
checked before it is written (valid cases decode and re-encode to the same bytes;
invalid cases raise the stated code with the stated text).

Nested maps in ``data``/``result`` are written with their keys sorted, so that an
encoder which sorts map keys (a common option in Go libraries) reproduces every byte.
"""

from __future__ import annotations

import hashlib
import json
import struct
import sys
from pathlib import Path
from typing import Any

import protocol
from protocol import (
    Ack,
    Auth,
    Cancel,
    Challenge,
    Completed,
    Decoder,
    Error,
    Failed,
    Heartbeat,
    Hello,
    Log,
    Message,
    Progress,
    ProtocolError,
    Started,
    Welcome,
    encode,
    encode_frame,
    pack,
)
from protocol.handshake import (
    SUPERVISOR_LABEL,
    WORKER_LABEL,
    proof_input,
    supervisor_proof,
    token_key,
    worker_proof,
)
from tests.protocol.wirejson import dumps, to_json

OUT = Path(protocol.__file__).with_name("vectors.json")

FORMAT = {
    "valid": (
        "Canonical frames. 'hex' is the whole frame (4-byte big-endian length, then the "
        "msgpack body), lowercase. 'message' is the body decoded, exactly as on the wire, "
        "in key order: 'type' first, then the fields in the order of the table in "
        "docs/protocol.md, optional fields absent when not set. An implementation must "
        "decode 'hex' to 'message' AND encode 'message' to exactly 'hex'."
    ),
    "noncanonical": (
        "Frames a decoder must accept although no encoder produces them (extra fields, "
        "another key order, nil optional fields, wider int/float forms, msgpack timestamp). "
        "'message' is the validated message in canonical form; encoding it gives "
        "'canonical_hex'."
    ),
    "invalid": (
        "Streams that must be rejected. 'error' is the error code (docs/protocol.md). "
        "'match' is a substring of the Python implementation's error text; other "
        "implementations need only agree on the code. 'messages_before' counts the valid "
        "messages that precede the bad frame in the stream (a decoder may deliver them); "
        "none follow it."
    ),
    "generated": (
        "A case without 'hex' has 'generate' instead: the frame is bytes(prefix_hex) + "
        "bytes(repeat_hex) * repeat_count + bytes(suffix_hex); its length is "
        "'frame_length' and its SHA-256 is 'sha256'."
    ),
    "json_values": (
        "JSON stands for msgpack values as follows: null, true/false, strings (str), "
        "arrays, objects (maps; keys are strings; nested maps have sorted keys). A bare "
        "JSON number is always an integer within +-(2**53 - 1). A one-key object whose key "
        "starts with '$' is a tagged value: {'$float': '1.0'} a float64 (shortest "
        "round-trip decimal text), {'$int': '18446744073709551615'} an integer beyond "
        "2**53 - 1, {'$bin': '00ff'} a bin (lowercase hex), {'$repeat': ['x', N]} a str "
        "made of the text repeated N times."
    ),
    "handshake": (
        "Proofs of the handshake (docs/protocol.md, section 5). For each case: "
        "key_hex = SHA-256(UTF-8 of token); supervisor_input_hex and worker_input_hex are "
        "the exact bytes each HMAC-SHA256 is computed over; supervisor_proof_hex (sent in "
        "challenge.proof) and worker_proof_hex (sent in auth.proof) are the results. The "
        "valid cases 'hello', 'challenge' and 'auth' are the frames of the first case."
    ),
    "integers": (
        "Canonical integers use the smallest form: non-negative as positive fixint, "
        "uint8, uint16, uint32, uint64; negative as negative fixint, int8, int16, int32, "
        "int64. Floats are always float64. Strings use fixstr/str8/str16/str32, bytes "
        "bin8/bin16/bin32."
    ),
}

U64_MAX = 2**64 - 1
I64_MIN = -(2**63)

JOB = "01HZX3J5Q8K2V7N4M6P9R0T1WA"
TOKEN = "k3Yw9_rT2fQ8xLm0pZs4vB7nC1dE6hJa"
TS = 1_717_171_717_171
# Fixed nonces, easy to recognise in a hex dump: 00 01 .. 1f and 20 21 .. 3f.
WORKER_NONCE = bytes(range(32))
SUPERVISOR_NONCE = bytes(range(32, 64))
KEY = token_key(TOKEN)

INTS = {
    "fixint_max": 127,
    "uint8_min": 128,
    "uint8_max": 255,
    "uint16_min": 256,
    "uint16_max": 65535,
    "uint32_min": 65536,
    "uint32_max": 2**32 - 1,
    "uint64_min": 2**32,
    "safe_max": 2**53 - 1,
    "beyond_safe": 2**53 + 1,
    "uint64_max": U64_MAX,
}
NEG_INTS = {
    "negfixint_min": -32,
    "int8_min": -128,
    "int8_top": -33,
    "int16_min": -32768,
    "int16_top": -129,
    "int32_min": -(2**31),
    "int32_top": -32769,
    "int64_min": I64_MIN,
    "int64_top": -(2**31) - 1,
    "minus_one": -1,
}


def _nested_lists(depth: int) -> Any:
    """``depth`` lists inside each other, the innermost empty: ``[[[]]]`` is depth 3."""
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


def _sorted_maps(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted_maps(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted_maps(item) for item in value]
    return value


VALID: list[tuple[str, Message]] = [
    # handshake
    ("hello", Hello(v=2, job_id=JOB, pid=4242, nonce=WORKER_NONCE)),
    ("hello_with_ts", Hello(v=2, job_id="job-1", pid=1, nonce=WORKER_NONCE, ts=TS)),
    (
        "hello_ts_float",
        Hello(v=2, job_id="job-1", pid=2**31 - 1, nonce=SUPERVISOR_NONCE, ts=1717171717171.5),
    ),
    # A hello of another version decodes (without a nonce) so that it can be answered
    # with unsupported_version.
    ("hello_without_nonce", Hello(v=1, job_id="j", pid=1)),
    (
        "challenge",
        Challenge(
            nonce=SUPERVISOR_NONCE,
            proof=supervisor_proof(KEY, JOB, WORKER_NONCE, SUPERVISOR_NONCE),
        ),
    ),
    ("challenge_with_ts", Challenge(nonce=bytes(32), proof=bytes(range(255, 223, -1)), ts=TS)),
    ("auth", Auth(proof=worker_proof(KEY, JOB, SUPERVISOR_NONCE, WORKER_NONCE))),
    ("auth_with_ts", Auth(proof=bytes(32), ts=TS)),
    (
        "welcome",
        Welcome(
            job_id=JOB,
            name="process-video",
            data={"url": "https://example.com/v.mp4"},
            attempt=1,
            heartbeat_interval=5.0,
            reconnect_interval=2.0,
            give_up_after=60.0,
        ),
    ),
    (
        "welcome_nil_data",
        Welcome(
            job_id="j",
            name="n",
            data=None,
            attempt=1,
            heartbeat_interval=5,
            reconnect_interval=1,
            give_up_after=30,
        ),
    ),
    (
        "welcome_empty_data",
        Welcome(
            job_id="j",
            name="n",
            data={},
            attempt=3,
            heartbeat_interval=0.5,
            reconnect_interval=0.25,
            give_up_after=7.5,
        ),
    ),
    (
        "welcome_nested_data",
        Welcome(
            job_id="job-7",
            name="resize",
            data=_sorted_maps(
                {
                    "sizes": [[64, 64], [1280, 720]],
                    "opts": {"quality": 0.85, "strip": True, "tags": [], "meta": {}},
                    "owner": None,
                    "title": "Ünïcödé ✓",
                }
            ),
            attempt=2,
            heartbeat_interval=2.5,
            reconnect_interval=2.0,
            give_up_after=120.0,
            ts=TS,
        ),
    ),
    (
        "welcome_scalar_data",
        Welcome(
            job_id="j",
            name="n",
            data="just a string",
            attempt=1,
            heartbeat_interval=30,
            reconnect_interval=2,
            give_up_after=60,
        ),
    ),
    ("error", Error(code="bad_token", message="token does not match job 'job-1'")),
    ("error_empty_message", Error(code="unknown_job", message="")),
    (
        "error_with_ts",
        Error(code="frame_too_large", message="frame announces 4294967295 bytes", ts=TS),
    ),
    # worker -> supervisor
    ("started", Started()),
    ("started_with_ts", Started(ts=TS)),
    ("progress_zero", Progress(percent=0)),
    ("progress_hundred", Progress(percent=100)),
    ("progress_float", Progress(percent=42.5, message="frames 425/1000")),
    ("progress_float_whole", Progress(percent=1.0)),
    (
        "progress_all_fields",
        Progress(percent=99.99, message="almost", data={"eta_s": 3, "rate": 1.25}, ts=TS),
    ),
    ("progress_empty_message", Progress(percent=50, message="")),
    ("heartbeat", Heartbeat()),
    ("heartbeat_with_ts", Heartbeat(ts=TS)),
    ("log_debug", Log(level="debug", message="d")),
    ("log_info", Log(level="info", message="downloading")),
    ("log_warn", Log(level="warn", message="slow disk", data={"free_mb": 120})),
    ("log_error", Log(level="error", message="retrying", data={"attempt": 2}, ts=TS)),
    (
        "log_unicode_emoji",
        Log(level="info", message="rocket \U0001f680 dev \U0001f469\u200d\U0001f4bb"),
    ),
    ("log_unicode_combining", Log(level="info", message="e\u0301 vs \u00e9, a\u0308\u0304")),
    (
        "log_unicode_cjk_rtl",
        Log(level="info", message="\u65e5\u672c\u8a9e \u05e2\u05d1\u05e8\u05d9\u05ea"),
    ),
    ("log_nul_in_string", Log(level="debug", message="a\x00b")),
    ("log_str8_32_bytes", Log(level="info", message="y" * 32)),
    ("log_fixstr_31_bytes", Log(level="info", message="y" * 31)),
    ("log_str16_256_bytes", Log(level="info", message="z" * 256)),
    ("log_empty_data", Log(level="info", message="m", data={})),
    ("completed", Completed()),
    ("completed_with_ts", Completed(ts=TS)),
    ("completed_result_map", Completed(result={"count": 3, "ok": True})),
    ("completed_result_string", Completed(result="done")),
    ("completed_result_empty_string", Completed(result="")),
    ("completed_result_false", Completed(result=False)),
    ("completed_result_zero", Completed(result=0)),
    ("completed_result_empty_array", Completed(result=[])),
    ("completed_result_empty_map", Completed(result={})),
    ("completed_bin8", Completed(result=bytes(range(16)))),
    ("completed_bin8_empty", Completed(result=b"")),
    ("completed_bin16", Completed(result=bytes(i % 256 for i in range(300)))),
    ("completed_positive_ints", Completed(result=dict(sorted(INTS.items())))),
    ("completed_negative_ints", Completed(result=dict(sorted(NEG_INTS.items())))),
    (
        "completed_floats",
        Completed(
            result=[
                0.5,
                -0.5,
                1.0,
                -1.0,
                0.0,
                -0.0,
                1e300,
                -1e300,
                5e-324,
                2.0**53,
                0.1,
                3.141592653589793,
            ]
        ),
    ),
    (
        "completed_nested",
        Completed(
            result=_sorted_maps(
                {
                    "rows": [{"id": 1, "tags": ["a", "b"]}, {"id": 2, "tags": []}],
                    "matrix": [[1, 2], [3, [4, [5, [6]]]]],
                    "blob": b"\x00\xff",
                    "none": None,
                    "flags": [True, False, None],
                    "emoji": {"\U0001f600": "grin"},
                }
            )
        ),
    ),
    # The deepest payload a receiver accepts: 64 containers (the body map is one more).
    ("completed_result_depth_64", Completed(result=_nested_lists(64))),
    ("completed_array16", Completed(result=list(range(16)))),
    ("completed_map16", Completed(result={f"k{i:02d}": i for i in range(16)})),
    ("failed", Failed(error="ValueError: bad input")),
    (
        "failed_with_stack",
        Failed(
            error="boom",
            stack='Traceback (most recent call last):\n  File "w.py", line 3\nRuntimeError: boom\n',
            ts=TS,
        ),
    ),
    ("failed_unicode", Failed(error="échec: fichier « données.csv » introuvable \U0001f4a5")),
    ("failed_empty_error", Failed(error="")),
    # supervisor -> worker
    ("ack_completed", Ack(of="completed")),
    ("ack_failed", Ack(of="failed")),
    ("ack_with_ts", Ack(of="completed", ts=TS)),
    ("cancel", Cancel()),
    ("cancel_with_reason", Cancel(reason="cancelled by user")),
    ("cancel_with_reason_and_ts", Cancel(reason="timeout after 3600 s", ts=TS)),
]


# --- hand-made bytes ---------------------------------------------------------------------


def s(text: str) -> bytes:
    """msgpack str, smallest form."""
    return pack(text)


def fmap(*pairs: bytes) -> bytes:
    """A fixmap of already-encoded key and value bytes, in the order given."""
    assert len(pairs) % 2 == 0 and len(pairs) // 2 < 16
    return bytes([0x80 | len(pairs) // 2]) + b"".join(pairs)


def f64(value: float) -> bytes:
    return b"\xcb" + struct.pack(">d", value)


HB = fmap(s("type"), s("heartbeat"))

NONCANONICAL: list[tuple[str, bytes, Message]] = [
    (
        "unknown_extra_fields_ignored",
        fmap(s("type"), s("heartbeat"), s("future"), s("x"), s("n"), pack([1, 2])),
        Heartbeat(),
    ),
    (
        "key_order_free",
        fmap(
            s("pid"),
            pack(7),
            s("nonce"),
            pack(WORKER_NONCE),
            s("job_id"),
            s("j"),
            s("v"),
            pack(2),
            s("type"),
            s("hello"),
        ),
        Hello(v=2, job_id="j", pid=7, nonce=WORKER_NONCE),
    ),
    (
        "hello_version_1_token_ignored",
        fmap(
            s("type"),
            s("hello"),
            s("v"),
            pack(1),
            s("job_id"),
            s("j"),
            s("token"),
            s("t"),
            s("pid"),
            pack(7),
        ),
        Hello(v=1, job_id="j", pid=7),
    ),
    (
        "nil_optional_field_is_absent",
        fmap(s("type"), s("progress"), s("percent"), pack(5), s("message"), b"\xc0"),
        Progress(percent=5),
    ),
    ("nil_result_is_absent", fmap(s("type"), s("completed"), s("result"), b"\xc0"), Completed()),
    (
        "wide_int_uint32",
        fmap(s("type"), s("ack"), s("of"), s("failed"), s("ts"), b"\xce\x00\x00\x00\x07"),
        Ack(of="failed", ts=7),
    ),
    (
        "wide_int_int64_positive",
        fmap(s("type"), s("heartbeat"), s("ts"), b"\xd3" + struct.pack(">q", 100)),
        Heartbeat(ts=100),
    ),
    (
        "float32_percent",
        fmap(s("type"), s("progress"), s("percent"), b"\xca" + struct.pack(">f", 12.5)),
        Progress(percent=12.5),
    ),
    ("str8_for_short_str", fmap(s("type"), b"\xd9\x07started"), Started()),
    ("str16_for_short_str", fmap(s("type"), b"\xda\x00\x09heartbeat"), Heartbeat()),
    ("map16_for_small_map", b"\xde\x00\x01" + s("type") + s("heartbeat"), Heartbeat()),
    (
        "timestamp_ext_decodes_to_float",
        fmap(s("type"), s("heartbeat"), s("ts"), b"\xd6\xff" + struct.pack(">I", 1_700_000_000)),
        Heartbeat(ts=1_700_000_000.0),
    ),
    (
        "timestamp_ext_64bit_decodes_to_float",
        fmap(
            s("type"),
            s("heartbeat"),
            s("ts"),
            b"\xd7\xff" + struct.pack(">Q", 500_000_000 << 34 | 1_700_000_000),
        ),
        Heartbeat(ts=1_700_000_000.5),
    ),
    (
        "timestamp_ext_96bit_decodes_to_float",
        fmap(
            s("type"),
            s("heartbeat"),
            s("ts"),
            b"\xc7\x0c\xff" + struct.pack(">Iq", 500_000_000, -2),
        ),
        Heartbeat(ts=-1.5),
    ),
    (
        "duplicate_key_last_wins",
        fmap(s("type"), s("ack"), s("of"), s("maybe"), s("of"), s("completed")),
        Ack(of="completed"),
    ),
]


def frame(body: bytes) -> bytes:
    return encode_frame(body)


HELLO_BODY = pack({"type": "hello", "v": 1, "job_id": "j", "pid": 4242})

INVALID: list[tuple[str, bytes, str, str]] = [
    # framing
    ("length_4gib", b"\xff\xff\xff\xff", "frame_too_large", "4294967295 bytes"),
    ("length_max_plus_one", struct.pack(">I", (1 << 20) + 1), "frame_too_large", "1048577 bytes"),
    (
        "length_2gib_with_body_start",
        b"\x80\x00\x00\x00" + HB,
        "frame_too_large",
        "2147483648 bytes",
    ),
    (
        "oversized_after_good_frame",
        frame(HB) + b"\x01\x00\x00\x00",
        "frame_too_large",
        "16777216 bytes",
    ),
    # msgpack
    ("empty_body", frame(b""), "invalid_msgpack", "ends in the middle"),
    ("reserved_byte_c1", frame(b"\xc1"), "invalid_msgpack", "reserved"),
    ("reserved_byte_in_map", frame(b"\x81\xa4type\xc1"), "invalid_msgpack", "reserved"),
    ("truncated_body", frame(HELLO_BODY[:-3]), "invalid_msgpack", "ends in the middle"),
    (
        "truncated_str_header",
        frame(b"\x81\xa4type\xdb\x00\x10\x00\x00ab"),
        "invalid_msgpack",
        "ends in the middle",
    ),
    ("trailing_bytes", frame(HB + b"\xc0"), "invalid_msgpack", "trailing bytes"),
    ("two_values_in_one_body", frame(HB + HB), "invalid_msgpack", "trailing bytes"),
    (
        "invalid_utf8",
        frame(fmap(s("type"), s("log"), s("level"), s("info"), s("message"), b"\xa3a\xffb")),
        "invalid_msgpack",
        "UTF-8",
    ),
    (
        "invalid_utf8_surrogate",
        frame(fmap(s("type"), b"\xa3\xed\xa0\x80")),
        "invalid_msgpack",
        "UTF-8",
    ),
    (
        "ext_type",
        frame(fmap(s("type"), s("completed"), s("result"), b"\xd4\x05\x00")),
        "invalid_msgpack",
        "extension type 5",
    ),
    (
        "ext8_type",
        frame(fmap(s("type"), s("completed"), s("result"), b"\xc7\x02\x01ab")),
        "invalid_msgpack",
        "extension type 1",
    ),
    (
        "bad_timestamp_ext",
        frame(fmap(s("type"), s("heartbeat"), s("ts"), b"\xd5\xff\x00\x00")),
        "invalid_msgpack",
        "timestamp",
    ),
    (
        "timestamp_nanoseconds_too_large",
        frame(
            fmap(
                s("type"),
                s("heartbeat"),
                s("ts"),
                b"\xd7\xff" + struct.pack(">Q", 1_000_000_000 << 34 | 1_700_000_000),
            )
        ),
        "invalid_msgpack",
        "nanoseconds",
    ),
    ("int_map_key", frame(b"\x82\xa4type\xa9heartbeat\x01\x02"), "invalid_msgpack", "map key"),
    ("array_map_key", frame(b"\x81\x91\x01\xa9heartbeat"), "invalid_msgpack", "map key"),
    (
        "nesting_too_deep",
        frame(b"\x82" + s("type") + s("completed") + s("result") + b"\x91" * 1100 + b"\xc0"),
        "invalid_msgpack",
        "nesting too deep",
    ),
    (
        # The body map and 1024 - 1 arrays: msgpack's limit holds, the payload limit not.
        "nesting_1024_is_payload_too_deep",
        frame(b"\x82" + s("type") + s("completed") + s("result") + b"\x91" * 1022 + b"\x90"),
        "invalid_message",
        "nests deeper than 64",
    ),
    (
        "nesting_1025_too_deep",
        frame(b"\x82" + s("type") + s("completed") + s("result") + b"\x91" * 1023 + b"\x90"),
        "invalid_msgpack",
        "nesting too deep",
    ),
    (
        "result_depth_65",
        frame(b"\x82" + s("type") + s("completed") + s("result") + b"\x91" * 64 + b"\x90"),
        "invalid_message",
        "completed nests deeper than 64",
    ),
    (
        # An unknown field is ignored, but it counts towards the depth limit all the same.
        "unknown_field_depth_65",
        frame(b"\x82" + s("type") + s("heartbeat") + s("x") + b"\x91" * 64 + b"\x90"),
        "invalid_message",
        "heartbeat nests deeper than 64",
    ),
    ("array32_length_lies", frame(b"\xdd\xff\xff\xff\xff"), "invalid_msgpack", "exceeds"),
    # message shape
    ("body_is_array", frame(pack(["hello", 1])), "invalid_message", "must be a map, got list"),
    ("body_is_string", frame(pack("hello")), "invalid_message", "must be a map, got str"),
    ("body_is_int", frame(pack(42)), "invalid_message", "must be a map, got int"),
    ("body_is_nil", frame(b"\xc0"), "invalid_message", "must be a map, got nil"),
    ("map_without_type", frame(pack({"v": 1, "job_id": "j"})), "invalid_message", "'type' field"),
    ("empty_map", frame(b"\x80"), "invalid_message", "'type' field"),
    (
        "type_is_int",
        frame(pack({"type": 7})),
        "invalid_message",
        "'type' must be a string, got int 7",
    ),
    (
        "type_is_bin",
        frame(pack({"type": b"hello"})),
        "invalid_message",
        "'type' must be a string, got bytes",
    ),
    (
        "type_is_deep_array",
        frame(b"\x81" + s("type") + b"\x91" * 1000 + b"\x01"),
        "invalid_message",
        "got list of length 1",
    ),
    ("unknown_type", frame(pack({"type": "shutdown"})), "unknown_type", "'shutdown'"),
    ("unknown_type_case", frame(pack({"type": "Hello"})), "unknown_type", "'Hello'"),
    (
        "missing_required_field",
        frame(pack({"type": "hello", "v": 1, "job_id": "j", "token": "t"})),
        "invalid_message",
        "hello is missing required field 'pid'",
    ),
    (
        "missing_welcome_data",
        frame(
            pack(
                {
                    "type": "welcome",
                    "job_id": "j",
                    "name": "n",
                    "attempt": 1,
                    "heartbeat_interval": 5,
                }
            )
        ),
        "invalid_message",
        "welcome is missing required field 'data'",
    ),
    (
        "missing_failed_error",
        frame(pack({"type": "failed", "stack": "s"})),
        "invalid_message",
        "failed is missing required field 'error'",
    ),
    (
        "pid_as_string",
        frame(pack({"type": "hello", "v": 1, "job_id": "j", "pid": "4242"})),
        "invalid_message",
        "hello.pid must be an integer >= 1, got str '4242'",
    ),
    (
        "pid_as_bool",
        frame(pack({"type": "hello", "v": 1, "job_id": "j", "pid": True})),
        "invalid_message",
        "hello.pid must be an integer >= 1, got bool True",
    ),
    (
        "pid_zero",
        frame(pack({"type": "hello", "v": 1, "job_id": "j", "pid": 0})),
        "invalid_message",
        "hello.pid must be an integer >= 1, got int 0",
    ),
    (
        "version_as_float",
        frame(pack({"type": "hello", "v": 1.0, "job_id": "j", "pid": 1})),
        "invalid_message",
        "hello.v must be an integer",
    ),
    (
        "job_id_empty",
        frame(pack({"type": "hello", "v": 1, "job_id": "", "pid": 1})),
        "invalid_message",
        "hello.job_id must be a non-empty string",
    ),
    (
        "nonce_too_short",
        frame(pack({"type": "hello", "v": 2, "job_id": "j", "pid": 1, "nonce": bytes(16)})),
        "invalid_message",
        "hello.nonce must be bin of exactly 32 bytes, got bytes",
    ),
    (
        "nonce_as_string",
        frame(pack({"type": "hello", "v": 2, "job_id": "j", "pid": 1, "nonce": "0" * 32})),
        "invalid_message",
        "hello.nonce must be bin of exactly 32 bytes, got str",
    ),
    (
        "challenge_without_proof",
        frame(pack({"type": "challenge", "nonce": SUPERVISOR_NONCE})),
        "invalid_message",
        "challenge is missing required field 'proof'",
    ),
    (
        "auth_proof_too_long",
        frame(pack({"type": "auth", "proof": bytes(33)})),
        "invalid_message",
        "auth.proof must be bin of exactly 32 bytes, got bytes",
    ),
    (
        "welcome_without_schedule",
        frame(
            pack(
                {
                    "type": "welcome",
                    "job_id": "j",
                    "name": "n",
                    "data": None,
                    "attempt": 1,
                    "heartbeat_interval": 1,
                }
            )
        ),
        "invalid_message",
        "welcome is missing required field 'reconnect_interval'",
    ),
    (
        "percent_150",
        frame(pack({"type": "progress", "percent": 150})),
        "invalid_message",
        "progress.percent must be a number from 0 to 100, got int 150",
    ),
    (
        "percent_negative",
        frame(pack({"type": "progress", "percent": -0.5})),
        "invalid_message",
        "got float -0.5",
    ),
    (
        "percent_nan",
        frame(fmap(s("type"), s("progress"), s("percent"), f64(float("nan")))),
        "invalid_message",
        "got float nan",
    ),
    (
        "percent_as_string",
        frame(pack({"type": "progress", "percent": "50"})),
        "invalid_message",
        "got str '50'",
    ),
    (
        "level_fatal",
        frame(pack({"type": "log", "level": "fatal", "message": "m"})),
        "invalid_message",
        "log.level must be one of debug, error, info, warn, got str 'fatal'",
    ),
    (
        "of_maybe",
        frame(pack({"type": "ack", "of": "maybe"})),
        "invalid_message",
        "ack.of must be one of completed, failed, got str 'maybe'",
    ),
    (
        "heartbeat_interval_zero",
        frame(
            pack(
                {
                    "type": "welcome",
                    "job_id": "j",
                    "name": "n",
                    "data": None,
                    "attempt": 1,
                    "heartbeat_interval": 0,
                }
            )
        ),
        "invalid_message",
        "welcome.heartbeat_interval must be a number > 0",
    ),
    (
        "attempt_zero",
        frame(
            pack(
                {
                    "type": "welcome",
                    "job_id": "j",
                    "name": "n",
                    "data": None,
                    "attempt": 0,
                    "heartbeat_interval": 1,
                }
            )
        ),
        "invalid_message",
        "welcome.attempt must be an integer >= 1",
    ),
    (
        "ts_infinite",
        frame(fmap(s("type"), s("heartbeat"), s("ts"), f64(float("inf")))),
        "invalid_message",
        "heartbeat.ts must be a finite number, got float inf",
    ),
    (
        "ts_as_string",
        frame(pack({"type": "heartbeat", "ts": "2024-01-01"})),
        "invalid_message",
        "heartbeat.ts must be a finite number",
    ),
    (
        "message_as_bin",
        frame(pack({"type": "log", "level": "info", "message": b"bytes"})),
        "invalid_message",
        "log.message must be a string, got bytes",
    ),
    (
        "required_field_nil",
        frame(pack({"type": "error", "code": None, "message": "m"})),
        "invalid_message",
        "error.code must be a string, got nil",
    ),
    ("bad_frame_after_good", frame(HB) + frame(pack({"type": "nope"})), "unknown_type", "'nope'"),
]


# --- the max-size frame ------------------------------------------------------------------

MAX_BODY = 1 << 20
_FILL_PREFIX_BODY = b"\x83" + s("type") + s("log") + s("level") + s("info") + s("message")
_FILL_COUNT = MAX_BODY - len(_FILL_PREFIX_BODY) - 5  # 5 = str32 marker + length


def max_frame_case() -> dict[str, Any]:
    """A log message whose body is exactly 1 MiB: the largest frame a default peer accepts."""
    body_prefix = _FILL_PREFIX_BODY + b"\xdb" + struct.pack(">I", _FILL_COUNT)
    prefix = struct.pack(">I", MAX_BODY) + body_prefix
    message = Log(level="info", message="x" * _FILL_COUNT)
    frame_bytes = prefix + b"x" * _FILL_COUNT
    assert encode(message) == frame_bytes
    assert len(frame_bytes) == 4 + MAX_BODY
    return {
        "name": "max_frame_1mib_body",
        "generate": {
            "prefix_hex": prefix.hex(),
            "repeat_hex": b"x".hex(),
            "repeat_count": _FILL_COUNT,
            "suffix_hex": "",
        },
        "frame_length": len(frame_bytes),
        "sha256": hashlib.sha256(frame_bytes).hexdigest(),
        "message": {"type": "log", "level": "info", "message": {"$repeat": ["x", _FILL_COUNT]}},
    }


# --- checking and writing ----------------------------------------------------------------


def _decode_all(data: bytes) -> list[Message]:
    return Decoder().feed(data)


def _assert_nested_sorted(name: str, value: Any) -> None:
    if isinstance(value, dict):
        assert list(value) == sorted(value), f"{name}: nested map keys must be sorted"
        for item in value.values():
            _assert_nested_sorted(name, item)
    elif isinstance(value, list):
        for item in value:
            _assert_nested_sorted(name, item)


def valid_case(name: str, message: Message) -> dict[str, Any]:
    wire = message.to_wire()
    for item in list(wire.values())[1:]:
        _assert_nested_sorted(name, item)
    frame_bytes = encode(message)
    (decoded,) = _decode_all(frame_bytes)
    assert decoded == message, name
    assert encode(decoded) == frame_bytes, name
    assert dumps(decoded.to_wire()) == dumps(wire), name
    return {"name": name, "hex": frame_bytes.hex(), "message": to_json(wire)}


def noncanonical_case(name: str, body: bytes, expected: Message) -> dict[str, Any]:
    frame_bytes = encode_frame(body)
    (decoded,) = _decode_all(frame_bytes)
    assert decoded == expected, (name, decoded, expected)
    assert dumps(decoded.to_wire()) == dumps(expected.to_wire()), name
    canonical = encode(decoded)
    assert canonical != frame_bytes, f"{name} is canonical; move it to VALID"
    return {
        "name": name,
        "hex": frame_bytes.hex(),
        "message": to_json(decoded.to_wire()),
        "canonical_hex": canonical.hex(),
    }


def invalid_case(name: str, data: bytes, code: str, match: str) -> dict[str, Any]:
    decoder = Decoder()
    decoder.receive_data(data)
    before = 0
    try:
        while decoder.next_message() is not None:
            before += 1
    except ProtocolError as exc:
        assert exc.code == code, (name, exc.code, str(exc))
        assert match in str(exc), (name, match, str(exc))
    else:
        raise AssertionError(f"invalid case {name} decoded without error")
    case = {"name": name, "hex": data.hex(), "error": code, "match": match}
    return case | {"messages_before": before}


HANDSHAKES: list[tuple[str, str, str, bytes, bytes]] = [
    ("example", TOKEN, JOB, WORKER_NONCE, SUPERVISOR_NONCE),
    ("empty_token_zero_nonces", "", "j", bytes(32), bytes(32)),
    ("utf8_job_id_swapped_nonces", "t\u00f8ken", "job-\u00fc", SUPERVISOR_NONCE, WORKER_NONCE),
]


def handshake_case(
    name: str, token: str, job_id: str, worker_nonce: bytes, supervisor_nonce: bytes
) -> dict[str, Any]:
    key = token_key(token)
    sup = supervisor_proof(key, job_id, worker_nonce, supervisor_nonce)
    wrk = worker_proof(key, job_id, supervisor_nonce, worker_nonce)
    assert sup != wrk, name
    return {
        "name": name,
        "token": token,
        "job_id": job_id,
        "worker_nonce_hex": worker_nonce.hex(),
        "supervisor_nonce_hex": supervisor_nonce.hex(),
        "key_hex": key.hex(),
        "supervisor_input_hex": proof_input(
            SUPERVISOR_LABEL, job_id, worker_nonce, supervisor_nonce
        ).hex(),
        "supervisor_proof_hex": sup.hex(),
        "worker_input_hex": proof_input(WORKER_LABEL, job_id, supervisor_nonce, worker_nonce).hex(),
        "worker_proof_hex": wrk.hex(),
    }


def build() -> dict[str, Any]:
    valid = [valid_case(name, message) for name, message in VALID]
    valid.append(max_frame_case())
    names = [case["name"] for case in valid]
    noncanonical = [noncanonical_case(*case) for case in NONCANONICAL]
    invalid = [invalid_case(*case) for case in INVALID]
    names += [case["name"] for case in noncanonical + invalid]
    assert len(names) == len(set(names)), "case names must be unique"
    assert {m.TYPE for _, m in VALID} == set(protocol.MESSAGE_TYPES), "cover every type"
    return {
        "_comment": (
            "Golden vectors of the jobvisor wire protocol, shared by the Python, Go and "
            "shell test suites. Generated by `python -m tests.protocol.make_vectors` from "
            "readable tables; this file is the truth. See docs/protocol.md and 'format'."
        ),
        "protocol_version": protocol.PROTOCOL_VERSION,
        "max_frame": protocol.DEFAULT_MAX_FRAME,
        "format": FORMAT,
        "valid": valid,
        "noncanonical": noncanonical,
        "invalid": invalid,
        "handshake": [handshake_case(*case) for case in HANDSHAKES],
    }


def render(doc: dict[str, Any]) -> str:
    """Pretty at the top, one line per case: diffs stay readable."""
    lines = ["{"]
    items = list(doc.items())
    for index, (key, value) in enumerate(items):
        comma = "," if index < len(items) - 1 else ""
        if isinstance(value, list):
            lines.append(f"  {json.dumps(key)}: [")
            for j, case in enumerate(value):
                sep = "," if j < len(value) - 1 else ""
                lines.append("    " + json.dumps(case, ensure_ascii=False) + sep)
            lines.append(f"  ]{comma}")
        else:
            text = json.dumps(value, ensure_ascii=False, indent=2).replace("\n", "\n  ")
            lines.append(f"  {json.dumps(key)}: {text}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    text = render(build())
    if "--check" in argv:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print(f"{OUT} is out of date; run python -m tests.protocol.make_vectors")
            return 1
        print(f"{OUT} is up to date")
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
