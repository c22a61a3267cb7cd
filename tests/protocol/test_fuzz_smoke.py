"""A short smoke of the fuzz target; the long runs are started by hand (docs/fuzzing.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import Decoder, Started, encode
from tests.protocol.fuzz_decoder import check_stream, fuzz_one, write_corpus

ROOT = Path(__file__).resolve().parents[2]


def run_entry_point(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.protocol.fuzz_decoder", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=90,
        check=False,
    )


def test_every_seed_passes_the_fuzz_target(tmp_path: Path) -> None:
    """Each vector, written as a fuzz seed, satisfies the target's invariants."""
    count = write_corpus(tmp_path)
    seeds = sorted(tmp_path.iterdir())
    assert len(seeds) == count > 100
    for seed in seeds:
        fuzz_one(seed.read_bytes())


@given(st.binary(max_size=300))
def test_fuzz_target_on_random_inputs(data: bytes) -> None:
    """The fuzz target itself accepts any input without an unexpected exception."""
    fuzz_one(data)


def test_check_stream_reports_messages_and_error() -> None:
    """check_stream returns the encoded messages and the error it ended on."""
    frames, error = check_stream(encode(Started()) + b"\xff\xff\xff\xff", chunk=3)
    assert frames == [encode(Started())]
    assert error is not None and error[:2] == ("FrameTooLarge", "frame_too_large")


def test_check_stream_catches_a_split_dependent_decoder(monkeypatch: pytest.MonkeyPatch) -> None:
    """A decoder whose result depends on read sizes fails the target (the oracle works)."""
    real_feed = Decoder.receive_data

    def lossy(self: Decoder, data: bytes) -> None:
        real_feed(self, data[:-1] if len(data) == 2 else data)

    monkeypatch.setattr(Decoder, "receive_data", lossy)
    with pytest.raises(AssertionError):
        check_stream(encode(Started()) * 2, chunk=2)


def test_hypothesis_entry_point_runs() -> None:
    """python -m tests.protocol.fuzz_decoder --hypothesis N runs N examples and passes."""
    result = run_entry_point("--hypothesis", "25")
    assert result.returncode == 0, result.stderr
    assert "no failure" in result.stdout


def test_atheris_entry_point_runs(tmp_path: Path) -> None:
    """With atheris installed, a few hundred libFuzzer runs over the seeds find nothing."""
    pytest.importorskip("atheris", reason="atheris is optional (docs/fuzzing.md)")
    write_corpus(tmp_path)
    result = run_entry_point("-runs=300", "-max_len=4096", str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Done 300 runs" in result.stderr
