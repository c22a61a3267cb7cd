"""The golden vectors in protocol/vectors.json, checked in both directions.

These tests read the committed file and never regenerate it: a change to the encoder
that alters a single byte of a canonical frame fails here, and must be a deliberate
protocol change (edit tests/protocol/make_vectors.py, regenerate, review the diff).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Any

import pytest

import protocol
from protocol import (
    DEFAULT_MAX_FRAME,
    MESSAGE_TYPES,
    PROTOCOL_VERSION,
    Decoder,
    ErrorCode,
    ProtocolError,
    decode_body,
    encode,
    from_wire,
    handshake,
)
from tests.protocol.wirejson import case_frame, dumps, from_json, load_vectors

VECTORS = load_vectors()
VALID = VECTORS["valid"]
NONCANONICAL = VECTORS["noncanonical"]
INVALID = VECTORS["invalid"]
INLINE_VALID = [case for case in VALID if "hex" in case]
GENERATED = [case for case in VALID if "generate" in case]


def ids(cases: list[dict[str, Any]]) -> list[str]:
    return [case["name"] for case in cases]


# --- the file itself -----------------------------------------------------------------------


def test_file_describes_its_format() -> None:
    """The file carries a comment and a format section for readers in other languages."""
    assert "_comment" in VECTORS
    assert {"valid", "noncanonical", "invalid", "json_values", "generated"} <= set(
        VECTORS["format"]
    )
    assert VECTORS["protocol_version"] == PROTOCOL_VERSION
    assert VECTORS["max_frame"] == DEFAULT_MAX_FRAME


def test_case_names_are_unique() -> None:
    """Every case has a distinct name, so failures in any language point at one case."""
    names = ids(VALID + NONCANONICAL + INVALID)
    assert len(names) == len(set(names))


def test_hex_is_lowercase_and_even() -> None:
    """All hex strings are lowercase with an even number of digits."""
    for case in VALID + NONCANONICAL + INVALID:
        for key in ("hex", "canonical_hex"):
            if key in case:
                assert re.fullmatch(r"(?:[0-9a-f]{2})*", case[key]), case["name"]


def test_every_message_type_has_a_valid_vector() -> None:
    """Each of the thirteen message types appears in at least one valid vector."""
    covered = {case["message"]["type"] for case in VALID}
    assert covered == set(MESSAGE_TYPES)


def test_there_are_at_least_ten_invalid_vectors() -> None:
    """The invalid section is substantial, and covers each decoding error code."""
    assert len(INVALID) >= 10
    decode_codes = {
        ErrorCode.FRAME_TOO_LARGE,
        ErrorCode.INVALID_MSGPACK,
        ErrorCode.INVALID_MESSAGE,
        ErrorCode.UNKNOWN_TYPE,
    }
    assert {case["error"] for case in INVALID} == decode_codes


def test_json_numbers_are_integers_within_the_safe_range() -> None:
    """No bare float or unsafe integer appears anywhere: such values must be tagged."""

    def walk(value: Any) -> None:
        assert not isinstance(value, float), value
        if isinstance(value, int) and not isinstance(value, bool):
            assert abs(value) <= 2**53 - 1, value
        if isinstance(value, list):
            for item in value:
                walk(item)
        if isinstance(value, dict):
            for item in value.values():
                walk(item)

    for case in VALID + NONCANONICAL:
        walk(case["message"])


def test_vectors_ship_as_package_data() -> None:
    """vectors.json sits beside the protocol package, where setup.cfg's package_data finds it."""
    path = protocol.__file__.rsplit("/", 1)[0] + "/vectors.json"
    with open(path, encoding="utf-8") as handle:
        assert json.load(handle) == VECTORS


# --- valid: hex -> message and message -> hex ----------------------------------------------


@pytest.mark.parametrize("case", VALID, ids=ids(VALID))
def test_valid_hex_decodes_to_message(case: dict[str, Any]) -> None:
    """The frame decodes to exactly the stated message: same values, types and key order."""
    (decoded,) = Decoder().feed(case_frame(case))
    assert dumps(decoded.to_wire()) == dumps(from_json(case["message"]))


@pytest.mark.parametrize("case", VALID, ids=ids(VALID))
def test_valid_message_encodes_to_hex(case: dict[str, Any]) -> None:
    """Validating the stated message and encoding it reproduces the frame byte for byte."""
    message = from_wire(from_json(case["message"]))
    frame = case_frame(case)
    assert encode(message) == frame
    assert encode(decode_body(frame[4:])) == frame


@pytest.mark.parametrize("case", INLINE_VALID, ids=ids(INLINE_VALID))
def test_valid_frame_fed_one_byte_at_a_time(case: dict[str, Any]) -> None:
    """Each valid frame decodes the same when it arrives one byte at a time."""
    frame = case_frame(case)
    decoder = Decoder()
    got = []
    for index in range(len(frame)):
        got += decoder.feed(frame[index : index + 1])
    assert got == Decoder().feed(frame)
    assert decoder.buffer_capacity == 0


def test_all_valid_frames_in_one_stream() -> None:
    """The valid frames concatenated decode to the valid messages, in order."""
    frames = [case_frame(case) for case in VALID]
    got = Decoder().feed(b"".join(frames))
    assert [dumps(m.to_wire()) for m in got] == [dumps(from_json(c["message"])) for c in VALID]


def test_max_frame_vector_is_exactly_the_limit() -> None:
    """The generated vector's body is exactly 1 MiB, its hash matches, and one byte more fails."""
    (case,) = GENERATED
    frame = case_frame(case)
    assert len(frame) == case["frame_length"] == 4 + DEFAULT_MAX_FRAME
    assert int.from_bytes(frame[:4], "big") == DEFAULT_MAX_FRAME
    assert hashlib.sha256(frame).hexdigest() == case["sha256"]
    bigger = (DEFAULT_MAX_FRAME + 1).to_bytes(4, "big")
    with pytest.raises(protocol.FrameTooLarge):
        Decoder().feed(bigger + frame[4:] + b"x")


def test_generated_frame_with_a_wrong_hash_is_refused() -> None:
    """case_frame checks the sha256, so a wrong recipe cannot pass silently."""
    (case,) = GENERATED
    broken = case | {"sha256": "0" * 64}
    with pytest.raises(ValueError, match="sha256"):
        case_frame(broken)


# --- noncanonical: accepted, re-encoded canonically ------------------------------------------


@pytest.mark.parametrize("case", NONCANONICAL, ids=ids(NONCANONICAL))
def test_noncanonical_frame_is_accepted_and_canonicalised(case: dict[str, Any]) -> None:
    """A non-canonical frame decodes to the stated message, which encodes to canonical_hex."""
    (decoded,) = Decoder().feed(bytes.fromhex(case["hex"]))
    assert dumps(decoded.to_wire()) == dumps(from_json(case["message"]))
    assert encode(decoded).hex() == case["canonical_hex"]
    assert case["canonical_hex"] != case["hex"]


# --- invalid: the stated error, at any split -------------------------------------------------


def _drain(decoder: Decoder, data: bytes, got: list[Any]) -> None:
    decoder.receive_data(data)
    while (message := decoder.next_message()) is not None:
        got.append(message)


@pytest.mark.parametrize("case", INVALID, ids=ids(INVALID))
def test_invalid_stream_raises_the_stated_error(case: dict[str, Any]) -> None:
    """The stream raises a ProtocolError with the stated code and text, after the good messages."""
    decoder = Decoder()
    got: list[Any] = []
    with pytest.raises(ProtocolError) as info:
        _drain(decoder, bytes.fromhex(case["hex"]), got)
    assert info.value.code == case["error"]
    assert case["match"] in str(info.value)
    assert len(got) == case["messages_before"]


@pytest.mark.parametrize("case", INVALID, ids=ids(INVALID))
def test_invalid_stream_fails_the_same_one_byte_at_a_time(case: dict[str, Any]) -> None:
    """Fed byte by byte, an invalid stream gives the same messages and the same error."""
    data = bytes.fromhex(case["hex"])
    decoder = Decoder()
    got: list[Any] = []
    with pytest.raises(ProtocolError) as info:
        for index in range(len(data)):
            _drain(decoder, data[index : index + 1], got)
    assert info.value.code == case["error"]
    assert case["match"] in str(info.value)
    assert len(got) == case["messages_before"]


# --- the handshake's proofs ------------------------------------------------------------------

HANDSHAKES = VECTORS["handshake"]


@pytest.mark.parametrize("case", HANDSHAKES, ids=ids(HANDSHAKES))
def test_handshake_vectors_give_the_exact_proofs(case: dict[str, Any]) -> None:
    """From token, job id and both nonces, the key, proof inputs and proofs are byte-exact."""
    worker_nonce = bytes.fromhex(case["worker_nonce_hex"])
    supervisor_nonce = bytes.fromhex(case["supervisor_nonce_hex"])
    key = handshake.token_key(case["token"])
    assert key.hex() == case["key_hex"]
    assert hashlib.sha256(case["token"].encode()).hexdigest() == case["key_hex"]
    sup_input = handshake.proof_input(
        handshake.SUPERVISOR_LABEL, case["job_id"], worker_nonce, supervisor_nonce
    )
    wrk_input = handshake.proof_input(
        handshake.WORKER_LABEL, case["job_id"], supervisor_nonce, worker_nonce
    )
    assert sup_input.hex() == case["supervisor_input_hex"]
    assert wrk_input.hex() == case["worker_input_hex"]
    sup = handshake.supervisor_proof(key, case["job_id"], worker_nonce, supervisor_nonce)
    wrk = handshake.worker_proof(key, case["job_id"], supervisor_nonce, worker_nonce)
    assert sup.hex() == case["supervisor_proof_hex"]
    assert wrk.hex() == case["worker_proof_hex"]
    # Plain HMAC-SHA256 over the documented input: nothing hidden in the helpers.
    assert hmac.new(key, sup_input, "sha256").hexdigest() == case["supervisor_proof_hex"]


def test_handshake_frames_carry_the_first_cases_nonces_and_proofs() -> None:
    """The valid 'hello', 'challenge' and 'auth' frames belong to the first handshake case."""
    first = HANDSHAKES[0]
    by_name = {case["name"]: case["message"] for case in VALID}
    assert by_name["hello"]["nonce"] == {"$bin": first["worker_nonce_hex"]}
    assert by_name["hello"]["job_id"] == first["job_id"]
    assert by_name["challenge"]["nonce"] == {"$bin": first["supervisor_nonce_hex"]}
    assert by_name["challenge"]["proof"] == {"$bin": first["supervisor_proof_hex"]}
    assert by_name["auth"]["proof"] == {"$bin": first["worker_proof_hex"]}


def test_a_proof_of_one_side_is_never_a_proof_of_the_other() -> None:
    """Labels and nonce order differ, so a captured proof cannot be reflected back."""
    for case in HANDSHAKES:
        assert case["supervisor_proof_hex"] != case["worker_proof_hex"]
        assert case["supervisor_input_hex"] != case["worker_input_hex"]
