"""Hypothesis strategies for wire values, every message type, and hostile byte streams."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

from hypothesis import strategies as st

from protocol import (
    LOG_LEVELS,
    MESSAGE_TYPES,
    Ack,
    Auth,
    Cancel,
    Challenge,
    Completed,
    Error,
    ErrorCode,
    Failed,
    Heartbeat,
    Hello,
    Log,
    Message,
    Progress,
    Started,
    Welcome,
    encode,
    encode_frame,
    pack,
)

U64_MAX = 2**64 - 1
I64_MIN = -(2**63)

# Everything msgpack can carry that the protocol allows in free-form fields (data, result).
# NaN is left out only because NaN != NaN would make equality checks meaningless.
scalars = (
    st.none()
    | st.booleans()
    | st.integers(I64_MIN, U64_MAX)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.binary(max_size=40)
)
wire_values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=25,
)

timestamps = (
    st.none() | st.integers(I64_MIN, U64_MAX) | st.floats(allow_nan=False, allow_infinity=False)
)
maybe_text = st.none() | st.text(max_size=60)
positive = st.integers(1, U64_MAX)

MESSAGES: dict[str, st.SearchStrategy[Message]] = {
    "hello": st.builds(
        Hello,
        v=st.integers(0, U64_MAX),
        job_id=st.text(min_size=1, max_size=40),
        pid=positive,
        nonce=st.none() | st.binary(min_size=32, max_size=32),
        ts=timestamps,
    ),
    "challenge": st.builds(
        Challenge,
        nonce=st.binary(min_size=32, max_size=32),
        proof=st.binary(min_size=32, max_size=32),
        ts=timestamps,
    ),
    "auth": st.builds(Auth, proof=st.binary(min_size=32, max_size=32), ts=timestamps),
    "welcome": st.builds(
        Welcome,
        job_id=st.text(min_size=1, max_size=40),
        name=st.text(max_size=40),
        data=wire_values,
        attempt=positive,
        heartbeat_interval=positive
        | st.floats(min_value=0, exclude_min=True, allow_infinity=False),
        reconnect_interval=st.floats(min_value=0, exclude_min=True, allow_infinity=False),
        give_up_after=positive | st.floats(min_value=0, exclude_min=True, allow_infinity=False),
        ts=timestamps,
    ),
    "error": st.builds(
        Error,
        code=st.sampled_from([c.value for c in ErrorCode]) | st.text(max_size=20),
        message=st.text(max_size=80),
        ts=timestamps,
    ),
    "started": st.builds(Started, ts=timestamps),
    "progress": st.builds(
        Progress,
        percent=st.integers(0, 100) | st.floats(0, 100),
        message=maybe_text,
        data=wire_values,
        ts=timestamps,
    ),
    "heartbeat": st.builds(Heartbeat, ts=timestamps),
    "log": st.builds(
        Log,
        level=st.sampled_from(sorted(LOG_LEVELS)),
        message=st.text(max_size=80),
        data=wire_values,
        ts=timestamps,
    ),
    "completed": st.builds(Completed, result=wire_values, ts=timestamps),
    "failed": st.builds(Failed, error=st.text(max_size=80), stack=maybe_text, ts=timestamps),
    "ack": st.builds(Ack, of=st.sampled_from(["completed", "failed"]), ts=timestamps),
    "cancel": st.builds(Cancel, reason=maybe_text, ts=timestamps),
}
assert set(MESSAGES) == set(MESSAGE_TYPES), "a new message type needs a strategy"

messages = st.one_of(*MESSAGES.values())

# Bodies that are valid msgpack maps shaped like messages but with arbitrary field values:
# they get past the msgpack layer and exercise every validator.
_FIELD_NAMES = sorted(
    {f.name for cls in MESSAGE_TYPES.values() for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
)
message_like_maps = st.fixed_dictionaries(
    {"type": st.sampled_from(sorted(MESSAGE_TYPES)) | wire_values},
    optional=dict.fromkeys(_FIELD_NAMES, wire_values),
)
hostile_frames = st.one_of(
    messages.map(encode),
    message_like_maps.map(lambda m: encode_frame(pack(m))),
    wire_values.map(lambda v: encode_frame(pack(v))),
    st.binary(max_size=64).map(encode_frame),
    st.binary(max_size=16),  # loose bytes: a header that lies, a broken length
)


@st.composite
def hostile_streams(draw: st.DrawFn) -> bytes:
    """Frames good and bad, joined, then maybe with a few bytes overwritten or cut."""
    data = bytearray(b"".join(draw(st.lists(hostile_frames, max_size=6))))
    if data and draw(st.booleans()):
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    if data and draw(st.booleans()):
        del data[draw(st.integers(0, len(data) - 1)) :]
    return bytes(data)


@st.composite
def splits(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """``data`` cut into chunks at random points (possibly none, possibly empty chunks)."""
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=24)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]
