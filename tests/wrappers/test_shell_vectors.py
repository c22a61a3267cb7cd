"""The shell library on the wire: its frames are the golden vectors' bytes, and the
vectors' frames sent to it (challenge, welcome, ack, cancel, error) are understood.

Each test runs a real bash script that sources jobvisor-job.sh against a fake supervisor
that records raw bytes (``shell_fixtures.RecordingSupervisor``). Frames the library
stamps with ``ts`` are compared with their ``ts`` cut out (the wall clock is no vector).
"""

from __future__ import annotations

import json
import shlex
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest

from supervisor.testing import process_gone, wait_for
from tests.protocol.wirejson import from_json
from tests.wrappers.shell_fixtures import (
    HANDSHAKE,
    VALID,
    RecordingSupervisor,
    body,
    frame,
    proof,
    run_script,
    without_ts,
)

Make = Callable[..., RecordingSupervisor]


@pytest.fixture
def recording(tmp_path: Path) -> Iterator[Make]:
    """``recording(transport, welcome)``: a RecordingSupervisor, closed at teardown."""
    made: list[RecordingSupervisor] = []

    def make(transport: str = "unix", welcome: str = "welcome") -> RecordingSupervisor:
        folder = tmp_path / f"sync-{len(made)}"
        folder.mkdir()
        fake = RecordingSupervisor(folder, transport, welcome)
        made.append(fake)
        return fake

    yield make
    for fake in made:
        fake.close()
        assert not fake.errors, fake.errors


def _message(name: str) -> Any:
    return from_json(VALID[name]["message"])


def _quoted(name: str, field: str) -> str:
    return shlex.quote(_message(name)[field])


# (a call in bash, the vector its frame must equal): the vectors a shell can produce.
# A percent is a float on the wire whatever its text (the Python library sends float64, and
# the helper uses it), so "job_progress 1" is the float vector too; the int-percent vectors
# (progress_zero, ...) are not a shell's to produce.
CALLS = [
    ("job_progress 42.5 'frames 425/1000'", "progress_float"),
    ("job_progress 1.0", "progress_float_whole"),
    ("job_progress 1", "progress_float_whole"),
    ("job_debug d", "log_debug"),
    ("job_info downloading", "log_info"),
    *(
        (f"job_info {_quoted(name, 'message')}", name)
        for name in (
            "log_unicode_emoji",
            "log_unicode_combining",
            "log_unicode_cjk_rtl",
            "log_fixstr_31_bytes",
            "log_str8_32_bytes",
            "log_str16_256_bytes",
        )
    ),
    ("job_complete " + shlex.quote('{"count": 3, "ok": true}'), "completed_result_map"),
]


@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_handshake_reports_and_outcome_are_the_vectors_bytes(
    transport, recording, tmp_path, marker
):
    """hello, auth, started, progress, logs and completed equal the vectors; ack returns."""
    fake = recording(transport, "welcome")
    fake.hold_acks = True
    calls = "\n".join(f"{call}; step" if "complete" not in call else call for call, _ in CALLS)
    script = run_script(
        tmp_path,
        f"""
job_init; step
job_data_get url > "$SYNC/url"
{calls}
: > "$SYNC/returned"
""",
        fake.env(marker),
    )
    wait_for(lambda: fake.of_type("completed"), timeout=30, message="the completed frame")
    # The outcome is not acked yet: job_complete must still be waiting.
    time.sleep(0.3)  # proving an absence: nothing to wait for
    assert not (fake.folder / "returned").exists()
    # hello names the script (the process a supervisor would have started), not the helper
    assert body(fake.of_type("hello")[0])["pid"] == script.pid
    fake.send(frame("ack_completed"))
    assert script.wait(timeout=30) == 0, script.stderr.read() if script.stderr else ""
    assert (fake.folder / "returned").exists()
    assert (fake.folder / "url").read_text() == "https://example.com/v.mp4\n"

    hello, auth, started, *rest = [f for f in fake.frames if body(f)["type"] != "heartbeat"]
    message = body(hello)
    pid, nonce = message["pid"], message["nonce"]
    vector = frame("hello").replace(bytes.fromhex(HANDSHAKE["worker_nonce_hex"]), nonce)
    vector = vector.replace(b"\xa3pid\xcd\x10\x92", b"\xa3pid" + msgpack.packb(pid))
    assert hello[4:] == vector[4:]
    expected = proof(b"jobvisor/2 worker", fake.job_id, body(frame("challenge"))["nonce"], nonce)
    vector_auth = frame("auth").replace(body(frame("auth"))["proof"], expected)
    assert without_ts(auth) == vector_auth
    assert without_ts(started) == frame("started")
    assert [without_ts(f).hex() for f in rest] == [VALID[name]["hex"] for _, name in CALLS]


def test_progress_without_a_message_omits_it_and_an_empty_one_is_sent(recording, tmp_path, marker):
    """job_progress 0 sends no message field; job_progress 100 '' sends an empty one."""
    fake = recording("unix", "welcome")
    calls = "job_init; step\njob_progress 0; step\njob_progress 100 ''; step\n"
    script = run_script(tmp_path, calls, fake.env(marker))
    assert script.wait(timeout=30) == 0
    sent = [body(without_ts(f)) for f in fake.of_type("progress")]
    assert sent == [
        {"type": "progress", "percent": 0.0},
        {"type": "progress", "percent": 100.0, "message": ""},
    ]


@pytest.mark.parametrize(
    ("call", "vector"),
    [
        ("job_complete", "completed"),
        *(
            (f"job_complete {shlex.quote(json.dumps(_message(name)['result']))}", name)
            for name in (
                "completed_result_string",
                "completed_result_false",
                "completed_result_empty_map",
                "completed_floats",
                "completed_positive_ints",
                "completed_negative_ints",
            )
        ),
        *((f"job_fail {_quoted(name, 'error')}", name) for name in ("failed", "failed_unicode")),
        ("job_fail ''", "failed_empty_error"),
    ],
)
def test_outcomes_are_the_vectors_bytes(call, vector, recording, tmp_path, marker):
    """job_complete JSON and job_fail MESSAGE send exactly the vectors' outcome frames."""
    fake = recording("unix", "welcome_nil_data")
    script = run_script(tmp_path, f"job_init\n{call}\n", fake.env(marker))
    assert script.wait(timeout=30) == 0, script.stderr.read() if script.stderr else ""
    kind = _message(vector)["type"]
    (sent,) = fake.of_type(kind)
    assert without_ts(sent).hex() == VALID[vector]["hex"]


def test_payload_lookups_and_bad_calls_are_answered_and_the_job_goes_on(
    recording, tmp_path, marker
):
    """job_data_get walks nested keys of a vector welcome; bad calls fail alone."""
    fake = recording("unix", "welcome_nested_data")
    script = run_script(
        tmp_path,
        """
job_init
{
    echo "$JOB_ID $JOB_NAME $JOB_ATTEMPT"
    job_data_get opts.quality
    job_data_get opts.strip
    job_data_get opts.tags
    job_data_get opts.meta
    job_data_get owner
    job_data_get sizes.1.0
    job_data_get sizes
    job_data_get title
    job_data_count sizes
    job_data_get nowhere "the default"
    job_data_get sizes.5 || echo "rc=$?"
    job_data_get title.x || echo "rc=$?"
    job_progress 150 || echo "rc=$?"
    job_progress half || echo "rc=$?"
    job_info "still connected"
    job_warn $'tab\\there\\nnew line, \\\\n and back\\\\slash'
    printf 'a\nb\n' | while read -r line; do job_debug "from a pipe: $line"; done
    job_complete '{bad' || echo "rc=$?"
    job__request "bogus x" || echo "rc=$? $JOB__REPLY"
    job__request 'log info a \\q escape' || echo "rc=$? $JOB__REPLY"
    job_complete '"finally"'
} > "$SYNC/out"
""",
        fake.env(marker),
    )
    assert script.wait(timeout=30) == 0
    assert (fake.folder / "out").read_text().splitlines() == [
        "job-7 resize 2",
        "0.85",
        "true",
        "[]",
        "{}",
        "null",
        "1280",
        "[[64,64],[1280,720]]",
        "Ünïcödé ✓",
        "2",
        "the default",
        "rc=1",
        "rc=1",
        "rc=1",
        "rc=1",
        "rc=1",
        "rc=1 unknown request 'bogus'; known: cancelled, complete, count, data, exit, fail, log, progress",
        "rc=1 unknown escape '\\\\q' (only \\\\, \\n and \\t)",
    ]
    errors = script.stderr.read() if script.stderr else ""
    assert "job_data_get: sizes is an array of 2: no index 5" in errors
    assert "job_data_get: title is a string, not an object or array" in errors
    assert "job_progress: " in errors and "150" in errors
    assert "job_progress: progress percent must be a number from 0 to 100, got 'half'" in errors
    assert "job_complete: the result is not valid JSON" in errors
    (completed,) = fake.of_type("completed")
    assert body(completed)["result"] == "finally"
    assert [body(f)["message"] for f in fake.of_type("log")] == [
        "still connected",
        "tab\there\nnew line, \\n and back\\slash",
        "from a pipe: a",
        "from a pipe: b",
    ]


@pytest.mark.parametrize("chosen", ["", "USR1"])
def test_heartbeats_flow_and_a_cancel_vector_becomes_the_signal(
    chosen, recording, tmp_path, marker
):
    """Idle, the helper sends heartbeat vectors; a cancel runs the script's trap for
    SIGTERM, or for the signal named by JOB_CANCEL_SIGNAL."""
    fake = recording("unix", "welcome_empty_data")  # heartbeat_interval 0.5
    script = run_script(
        tmp_path,
        f"""
JOB_CANCEL_SIGNAL={chosen}
job_init
trap 'job_cancelled && echo yes > "$SYNC/cancelled"; exit 143' {chosen or "TERM"}
sleep 60 &
wait $!
""",
        fake.env(marker),
    )
    wait_for(lambda: len(fake.of_type("heartbeat")) >= 2, timeout=30, message="heartbeats")
    assert {without_ts(f) for f in fake.of_type("heartbeat")} == {frame("heartbeat")}
    fake.send(frame("cancel_with_reason"))
    assert script.wait(timeout=30) == 143
    assert (fake.folder / "cancelled").read_text() == "yes\n"
    assert fake.of_type("failed") == [] and fake.of_type("completed") == []
    helper = body(fake.of_type("hello")[0])["pid"]
    wait_for(lambda: process_gone(helper), message="the helper to exit")


def test_a_refusal_vector_ends_the_script_with_exit_77(recording, tmp_path, marker):
    """An error frame answering hello (bad_token) stops the script before it runs on."""
    fake = recording("unix", "welcome")
    fake.refuse_with = frame("error")
    script = run_script(tmp_path, 'job_init\n: > "$SYNC/ran-on"\n', fake.env(marker))
    assert script.wait(timeout=30) == 77
    assert not (fake.folder / "ran-on").exists()
    errors = script.stderr.read() if script.stderr else ""
    assert "bad_token" in errors and "(exit status 77); stopping the script" in errors


def test_the_helper_leaves_when_the_script_is_killed(recording, tmp_path, marker):
    """SIGKILL of the script (its child still holding the pipes) ends the helper at once."""
    fake = recording("unix", "welcome")
    script = run_script(tmp_path, "job_init; step\nsleep 60 &\nwait $!\n", fake.env(marker))
    wait_for(lambda: fake.of_type("started"), timeout=30, message="the job to start")
    helper = body(fake.of_type("hello")[0])["pid"]
    script.send_signal(signal.SIGKILL)
    script.wait(timeout=10)
    wait_for(lambda: process_gone(helper), timeout=10, message="the helper to exit")
    assert fake.of_type("failed") == []  # a killed script's fate is the supervisor's to record
