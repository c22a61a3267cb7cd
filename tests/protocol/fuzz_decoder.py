"""Fuzz the stream decoder: any bytes give messages or a ProtocolError, nothing else.

    python -m tests.protocol.fuzz_decoder --write-corpus DIR      # seed DIR from the vectors
    python -m tests.protocol.fuzz_decoder [LIBFUZZER_FLAGS] [DIR]  # atheris (coverage-guided)
    python -m tests.protocol.fuzz_decoder --hypothesis [N]         # Hypothesis, no atheris

docs/fuzzing.md explains installing atheris and reading a crash. The default test suite
runs a short smoke of ``check_stream`` (tests/protocol/test_fuzz_smoke.py); the long runs
are only ever started by hand or by a fuzzing job.

One input is: byte 0 picks a chunk size (1..64), byte 1 a frame limit, the rest is the
stream. ``check_stream`` decodes the stream whole and in chunks and checks:

- nothing but a ``ProtocolError`` escapes, and never ``DecoderFailed`` on first use;
- both runs give the same messages and the same error (any split of the stream is equal);
- after an error every further call raises ``DecoderFailed``;
- after draining, the buffer holds only an unfinished frame (< header + limit bytes);
- every decoded message re-encodes canonically: decode(encode(m)) encodes to the same bytes.
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from protocol import (
    DEFAULT_MAX_FRAME,
    HEADER_SIZE,
    Decoder,
    DecoderFailed,
    Message,
    ProtocolError,
    decode_body,
    encode,
)

MAX_FRAMES = (DEFAULT_MAX_FRAME, 16, 256, 4096)

Outcome = tuple[list[bytes], tuple[str, str, str] | None]


def _run(chunks: Sequence[bytes], max_frame: int) -> tuple[list[Message], Outcome]:
    decoder = Decoder(max_frame)
    messages: list[Message] = []
    error: ProtocolError | None = None
    for chunk in chunks:
        try:
            decoder.receive_data(chunk)
            while (message := decoder.next_message()) is not None:
                messages.append(message)
        except ProtocolError as exc:
            assert not isinstance(exc, DecoderFailed), f"DecoderFailed on first error: {exc}"
            error = exc
            break
        assert decoder.buffer_capacity == decoder.buffered < HEADER_SIZE + max_frame
    if error is not None:
        _assert_dead(decoder)
    shown = None if error is None else (type(error).__name__, str(error.code), str(error))
    return messages, ([encode(m) for m in messages], shown)


def _assert_dead(decoder: Decoder) -> None:
    calls: list[Callable[[], object]] = [
        decoder.next_message,
        lambda: decoder.receive_data(b"\x00"),
        lambda: decoder.feed(b""),
    ]
    for call in calls:
        try:
            call()
        except DecoderFailed:
            continue
        raise AssertionError("a failed decoder accepted another call")


def check_stream(data: bytes, chunk: int = 1, max_frame: int = DEFAULT_MAX_FRAME) -> Outcome:
    """Decode ``data`` whole and in ``chunk``-byte pieces; check the invariants above."""
    messages, whole = _run([data], max_frame)
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    _, split = _run(pieces, max_frame)
    assert whole == split, f"whole={whole!r}\nsplit={split!r}"
    for message, frame in zip(messages, whole[0], strict=True):
        again = decode_body(frame[HEADER_SIZE:])
        assert encode(again) == frame, f"not canonical: {message!r}"
    return whole


def fuzz_one(data: bytes) -> None:
    """The fuzz target: byte 0 picks the chunk size, byte 1 the frame limit."""
    if len(data) < 2:
        return
    check_stream(data[2:], chunk=data[0] % 64 + 1, max_frame=MAX_FRAMES[data[1] % 4])


def write_corpus(directory: Path) -> int:
    """Seed a corpus with every vector's frame (and all valid frames in one stream)."""
    from tests.protocol.wirejson import load_vectors

    vectors = load_vectors()
    directory.mkdir(parents=True, exist_ok=True)
    stream = b""
    count = 0
    for section in ("valid", "noncanonical", "invalid"):
        for case in vectors[section]:
            if "hex" not in case:
                continue  # the 1 MiB frame is longer than any useful fuzz input
            frame = bytes.fromhex(case["hex"])
            stream += frame if section != "invalid" else b""
            (directory / f"{section}-{case['name']}").write_bytes(b"\x07\x00" + frame)
            count += 1
    (directory / "all-valid").write_bytes(b"\x00\x00" + stream)
    return count + 1


def hypothesis_main(argv: list[str]) -> None:
    """Run the structured Hypothesis fuzzer, by default with the long "fuzz" profile."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    import tests.conftest  # noqa: F401 - registers the shared "ci" and "fuzz" profiles
    from tests.protocol.strategies import hostile_streams

    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fuzz"))
    overrides = {"max_examples": int(argv[0])} if argv else {}

    @settings(**overrides)  # type: ignore[arg-type]
    @given(hostile_streams(), st.integers(1, 64), st.sampled_from(MAX_FRAMES))
    def fuzz(data: bytes, chunk: int, max_frame: int) -> None:
        check_stream(data, chunk, max_frame)

    print(f"hypothesis: {settings().max_examples if not argv else argv[0]} examples")
    fuzz()
    print("hypothesis: no failure")


def _protocol_functions() -> list[Callable[..., object]]:
    """Every Python function of the protocol package, for coverage feedback.

    atheris.instrument_all() would do, but it rewrites every loaded function (~9 s at
    start-up); protocol/ is what we fuzz (msgpack's C code gives no feedback anyway).
    The field checkers are closures, reached through the module-level tables.
    """
    found: dict[int, Callable[..., object]] = {}

    def visit(value: object) -> None:
        if isinstance(value, property):
            value = value.fget
        value = getattr(value, "__func__", value)  # staticmethod / classmethod
        if inspect.isfunction(value):
            found.setdefault(id(value), value)

    for name, module in list(sys.modules.items()):
        if name != "protocol" and not name.startswith("protocol."):
            continue
        for value in vars(module).values():
            if inspect.isclass(value) and value.__module__ == name:
                for attr in vars(value).values():
                    visit(attr)
            elif isinstance(value, Mapping):
                for item in value.values():
                    visit(item)
            elif getattr(value, "__module__", None) == name:
                visit(value)
    return [*found.values(), check_stream, _run, fuzz_one]


def atheris_main(argv: list[str]) -> None:
    """Run libFuzzer through atheris; argv is passed on (corpus dirs, -max_total_time=...)."""
    try:
        import atheris
    except ImportError:
        sys.exit(
            "atheris is not installed (pip install atheris, see docs/fuzzing.md); use --hypothesis"
        )
    for function in _protocol_functions():
        atheris.instrument_func(function)
    atheris.Setup([sys.argv[0], *argv], fuzz_one)
    atheris.Fuzz()


def main(argv: list[str]) -> None:
    if argv[:1] == ["--write-corpus"]:
        directory = Path(argv[1])
        print(f"wrote {write_corpus(directory)} seeds to {directory}")
    elif argv[:1] == ["--hypothesis"]:
        hypothesis_main(argv[1:])
    else:
        atheris_main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
