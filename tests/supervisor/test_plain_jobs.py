"""Plain jobs (docs/worker-plain.md): any program as a job, judged by its exit, with a real
supervisor and real processes."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from supervisor.config import load_config
from supervisor.errors import ConfigError
from supervisor.plainshim import MAX_LINE, STDERR_TAIL
from supervisor.testing import (
    TEST_RUN_VAR,
    SupervisorThread,
    live_workers,
    make_settings,
    process_gone,
    wait_for,
)

Plain = Callable[..., dict[str, Any]]


@pytest.fixture
def plain(marker: str) -> Plain:
    """A ``[jobs.NAME]`` table running a shell script as a plain program."""

    def kind(script: str, **options: Any) -> dict[str, Any]:
        env = {TEST_RUN_VAR: marker, **options.pop("env", {})}
        return {"command": "sh", "args": ["-c", script], "protocol": "none", "env": env, **options}

    return kind


def job_log(sv: SupervisorThread, job_id: str) -> str:
    return (Path(sv.settings.log_dir) / f"{job_id}.log").read_text()


def running(sv: SupervisorThread, job_id: str) -> dict[str, Any]:
    return wait_for(
        lambda: (j := sv.job(job_id))["status"] == "running" and j["pid"] and j,
        message="the program to run",
    )


def test_exit_zero_completes_with_the_json_last_line_and_output_in_the_log(start, plain):
    """Exit 0 completes; the result is the last stdout line (here: the data read from
    stdin); stdout and stderr are in the job log, labelled."""
    sv = start({"p": plain("echo starting; echo careful >&2; cat")})
    job_id = sv.enqueue("p", {"n": [1, 2], "s": "é"})
    job = sv.wait(job_id)
    assert job["status"] == "completed", job["error"]
    assert job["result"] == {"n": [1, 2], "s": "é"}
    assert job["attempts"] == 1
    text = wait_for(lambda: (t := job_log(sv, job_id)) and "attempt 1 completed" in t and t)
    assert "[stdout] starting" in text
    assert "[stderr] careful" in text
    assert not (Path(sv.settings.state_dir) / "plain" / job_id).exists()


def test_a_last_line_that_is_not_json_completes_with_null(start, plain):
    """Only the last non-blank stdout line counts, and text that is not JSON is null."""
    sv = start({"p": plain("echo '{\"early\": 1}'; echo done; echo")})
    job = sv.wait(sv.enqueue("p"))
    assert job["status"] == "completed"
    assert job["result"] is None


def test_a_json_last_line_too_deep_to_store_is_null_with_a_note(start, plain):
    """A JSON last line that no result could hold is null, and the log says why."""
    deep = "[" * 70 + "]" * 70
    sv = start({"p": plain(f"echo '{deep}'")})
    job_id = sv.enqueue("p")
    job = sv.wait(job_id)
    assert job["status"] == "completed"
    assert job["result"] is None
    assert "cannot be stored as a result" in wait_for(lambda: job_log(sv, job_id))


def test_an_overlong_last_line_is_logged_in_pieces_and_is_not_a_result(start, plain):
    """A last line longer than the line limit is null, however JSON it looks."""
    quoted = f'"{"x" * (MAX_LINE + 10)}"'
    sv = start({"p": plain(f"printf '%s\\n' '{quoted}'")})
    job_id = sv.enqueue("p")
    job = sv.wait(job_id)
    assert job["status"] == "completed"
    assert job["result"] is None
    logged = [line for line in job_log(sv, job_id).splitlines() if "[stdout] " in line]
    assert sum(line.count("x") for line in logged) == MAX_LINE + 10  # all of it, in pieces


def test_a_nonzero_exit_fails_with_the_code_and_the_stderr_tail(start, plain):
    """Exit 3 fails with code 3, the last stderr line in the message, and a bounded tail."""
    script = "head -c 20000 /dev/zero | tr '\\0' a >&2; echo >&2; echo 'disk full' >&2; exit 3"
    sv = start({"p": plain(script, max_attempts=1)})
    job = sv.wait(sv.enqueue("p"))
    assert job["status"] == "failed"
    error = job["error"]
    assert error["exit_code"] == 3
    assert error["reason"] == "exit"
    assert error["message"] == "exited with code 3: disk full"
    assert error["stderr"].endswith("\ndisk full\n")
    assert len(error["stderr"]) <= STDERR_TAIL


def test_a_program_killed_by_a_signal_fails_naming_it(start, plain):
    """A program that dies of a signal fails with that signal."""
    sv = start({"p": plain("kill -KILL $$", max_attempts=1)})
    job = sv.wait(sv.enqueue("p"))
    assert job["status"] == "failed"
    assert job["error"]["signal"] == "SIGKILL"
    assert job["error"]["exit_code"] == -signal.SIGKILL
    assert job["error"]["message"] == "killed by SIGKILL"


def test_a_failed_attempt_is_retried_with_backoff(start, plain):
    """The first attempt fails, the retry completes: two attempts, one result."""
    script = 'if [ "$JOBVISOR_ATTEMPT" = 1 ]; then exit 1; fi; echo 42'
    sv = start({"p": plain(script, max_attempts=3, retry_delay=0.05)})
    job_id = sv.enqueue("p")
    job = sv.wait(job_id)
    assert job["status"] == "completed"
    assert job["result"] == 42
    assert job["attempts"] == 2
    assert sv.event_names(job_id).count("job.retrying") == 1


@pytest.mark.parametrize("ignores_term", [False, True])
def test_cancel_stops_the_program_and_its_children_within_kill_grace(
    start, plain, marker, ignores_term
):
    """A cancelled program (and what it started) is gone within kill_grace of the TERM;
    one that ignores TERM is killed."""
    trap = "trap '' TERM; " if ignores_term else ""
    sv = start({"p": plain(f"{trap}sleep 60 & while :; do sleep 0.05; done")})
    job_id = sv.enqueue("p")
    pid = running(sv, job_id)["pid"]
    wait_for(lambda: len(list(live_workers(marker))) >= 3, message="the program's children")
    assert sv.cancel(job_id)["status"] == "cancelled"
    grace = sv.settings.kill_grace
    wait_for(lambda: process_gone(pid), timeout=grace + 1, message="the wrapper to exit")
    wait_for(lambda: not list(live_workers(marker)), timeout=grace + 1, message="no leftovers")
    assert sv.job(job_id)["status"] == "cancelled"


def test_a_program_past_its_timeout_is_stopped_and_fails(start, plain):
    """A program still running at its timeout is stopped, and the attempt fails so."""
    sv = start({"p": plain("sleep 60", timeout=0.3, max_attempts=1)})
    job = sv.wait(sv.enqueue("p"))
    assert job["status"] == "failed"
    assert job["error"]["reason"] == "timeout"
    assert process_gone(job["pid"])


def test_the_kind_concurrency_limit_holds_for_plain_jobs(start, plain, tmp_path):
    """With concurrency 1 the second plain job waits until the first has exited."""
    gate = tmp_path / "gate"
    sv = start({"p": plain(f"while [ ! -e {gate} ]; do sleep 0.02; done", concurrency=1)})
    first, second = sv.enqueue("p"), sv.enqueue("p")
    running(sv, first)
    assert sv.job(second)["status"] == "pending"
    gate.touch()
    assert sv.wait(first)["status"] == "completed"
    assert sv.wait(second)["status"] == "completed"


def test_a_plain_program_is_told_its_job_and_has_no_socket_or_token(start, plain):
    """Its environment names the job, the attempt and the data file; never a socket or
    a token (it has none)."""
    script = (
        'printf \'["%s","%s","%s","%s"]\\n\' "$JOBVISOR_JOB_ID" "$JOBVISOR_ATTEMPT" '
        '"${JOBVISOR_SOCKET-unset}${JOBVISOR_TOKEN-unset}" "$(cat "$JOBVISOR_DATA_FILE")"'
    )
    sv = start({"p": plain(script)})
    job_id = sv.enqueue("p", 7)
    job = sv.wait(job_id)
    assert job["result"] == [job_id, "1", "unsetunset", "7"]
    assert job["socket"] is None


def test_data_that_json_cannot_carry_fails_the_attempt_clearly(start, plain):
    """Bytes (possible from the Python API) cannot be a plain program's input: the
    attempt fails saying so, and the supervisor carries on."""
    sv = start({"p": plain("cat", max_attempts=1)})
    job = sv.wait(sv.enqueue("p", {"blob": b"\x00"}))
    assert job["status"] == "failed"
    assert "cannot be given to a plain program as JSON" in job["error"]["message"]
    assert sv.wait(sv.enqueue("p", 1))["result"] == 1


def test_protocol_must_be_jobvisor_or_none(tmp_path):
    """Another protocol value is refused naming the key and the choices."""
    with pytest.raises(ConfigError, match=r"jobs\.p\.protocol: Input should be 'jobvisor' or"):
        make_settings(tmp_path, {"p": {"command": "true", "protocol": "plain"}})


def test_a_plain_kind_refuses_a_heartbeat_timeout(tmp_path):
    """heartbeat_timeout on a plain kind is an error: it could never apply."""
    with pytest.raises(ConfigError, match=r"jobs\.p\.heartbeat_timeout: does not apply"):
        make_settings(
            tmp_path, {"p": {"command": "true", "protocol": "none", "heartbeat_timeout": 5.0}}
        )


def test_the_wrapper_killed_alone_leaves_a_clear_failure(start, plain):
    """A wrapper killed by someone (no exit.json) fails the attempt naming the wrapper's
    death, never as the program's own exit."""
    sv = start({"p": plain("sleep 60", max_attempts=1)})
    job_id = sv.enqueue("p")
    os.kill(running(sv, job_id)["pid"], signal.SIGKILL)
    job = sv.wait(job_id)
    assert job["status"] == "failed"
    assert job["error"]["message"] == (
        "the program's wrapper killed by SIGKILL before recording the program's exit status"
    )


def test_the_example_plain_job_completes_with_its_json_result(tmp_path):
    """examples/jobvisor.toml's count-lines kind, run by a real supervisor, completes with
    the JSON its script prints last."""
    example = load_config(Path(__file__).parents[2] / "examples" / "jobvisor.toml")
    settings = make_settings(tmp_path / "state", http="")
    settings = replace(settings, jobs={"count-lines": example.jobs["count-lines"]})
    with SupervisorThread(settings) as sv:
        job = sv.wait(sv.enqueue("count-lines"))
    assert job["status"] == "completed", job["error"]
    assert job["result"]["folder"] == "workers"
    assert job["result"]["files"] >= 3


def test_the_attempt_folder_and_data_file_are_private(start, plain):
    """The job's data, handed over in a file, is readable by its owner only (0600 in a
    0700 folder), whatever the umask."""
    script = (
        'd="$JOBVISOR_DATA_FILE"; '
        'printf \'["%s","%s"]\\n\' "$(stat -c %a "$d")" "$(stat -c %a "$(dirname "$d")")"'
    )
    old = os.umask(0)
    try:
        sv = start({"p": plain(script)})
        job = sv.wait(sv.enqueue("p", {"secret": "s3"}))
    finally:
        os.umask(old)
    assert job["result"] == ["600", "700"]
