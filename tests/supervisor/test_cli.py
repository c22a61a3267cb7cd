"""The ``jobvisor`` command line as a real subprocess against a real supervisor."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from supervisor.testing import SupervisorThread, short_socket_dir, wait_for

JOB_ID = re.compile(r"^[0-9a-f]{20}$")


def cli_env() -> dict[str, str]:
    """The environment without anything that would point the CLI elsewhere."""
    env = dict(os.environ)
    for name in ("JOBVISOR_URL", "JOBVISOR_AUTH_TOKEN"):
        env.pop(name, None)
    return env


def address(sv: SupervisorThread) -> list[str]:
    """``--url`` and ``--token`` of ``sv`` (tests of reading them from a config do not
    use this)."""
    client = sv.client
    return ["--url", client.url, f"--token={client.token}"]


def jobvisor(
    *args: str, sv: SupervisorThread | None = None, cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m supervisor ARGS`` (``--url``/``--token`` of ``sv`` first when given)."""
    url = address(sv) if sv is not None else []
    return subprocess.run(
        [sys.executable, "-m", "supervisor", *url, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=cli_env(),
        check=False,
    )


def popen(*args: str, sv: SupervisorThread, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "supervisor", *address(sv), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=cwd,
        env=cli_env(),
    )


def data(*actions: list[Any]) -> str:
    return json.dumps({"actions": list(actions)})


@pytest.fixture
def sv(start, worker) -> SupervisorThread:
    """A supervisor with a scripted kind ``demo`` and a single-attempt kind ``once``."""
    return start({"demo": worker(), "once": worker(max_attempts=1)})


# --- help and usage -----------------------------------------------------------------------


def test_help_lists_the_commands_and_exit_codes(tmp_path):
    """``--help`` exits 0 and shows every command and what the exit codes mean."""
    result = jobvisor("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for command in ("serve", "submit", "jobs", "show", "cancel", "logs"):
        assert command in result.stdout
    assert "Exit codes" in result.stdout and "cancelled" in result.stdout


def test_no_command_prints_help_and_exits_2(tmp_path):
    """Running ``jobvisor`` alone is a usage error that shows the help."""
    result = jobvisor(cwd=tmp_path)
    assert result.returncode == 2
    assert "usage: jobvisor" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["submit"], "the following arguments are required: name"),
        (["submit", "demo", "--data", "{not json"], "--data is not valid JSON"),
        (["jobs", "--limit", "many"], "invalid int value: 'many'"),
    ],
)
def test_bad_usage_exits_2_with_a_message(sv, tmp_path, args, message):
    """Unknown commands, missing arguments and malformed --data are usage errors (2)."""
    result = jobvisor(*args, sv=sv, cwd=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr
    assert sv.client.list() == []  # nothing was submitted


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["submit", "no-such-kind"], "no job kind named 'no-such-kind'"),
        (["submit", "demo", "--data", '{"n": 123456789012345678901234567890}'], "msgpack"),
        (["submit", "demo", "--max-attempts", "0"], "max_attempts"),
        (["show", "0123456789abcdef0123"], "no job with id"),
        (["jobs", "--status", "sleeping"], "unknown status 'sleeping'"),
    ],
)
def test_requests_the_supervisor_refuses_exit_2_with_its_message(sv, tmp_path, args, message):
    """A 4xx answer (unknown kind, unstorable data, unknown job) exits 2 with the reason."""
    result = jobvisor(*args, sv=sv, cwd=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr
    assert sv.client.list() == []


def test_unreachable_supervisor_exits_4(tmp_path):
    """With nothing listening at the URL, the CLI says it cannot reach it and exits 4."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = jobvisor("--url", f"http://127.0.0.1:{port}", "jobs", cwd=tmp_path)
    assert result.returncode == 4
    assert f"cannot reach the supervisor at http://127.0.0.1:{port}" in result.stderr


def test_bad_config_file_exits_5_naming_file_and_key(tmp_path):
    """A config error (here a string where a number belongs) exits 5 naming file and key."""
    config = tmp_path / "bad.toml"
    config.write_text('concurrency = "5"\n')
    result = jobvisor("--config", str(config), "jobs", cwd=tmp_path)
    assert result.returncode == 5
    assert f"{config}: concurrency: Input should be a valid integer" in result.stderr


def test_jobvisor_toml_in_the_working_directory_is_used(tmp_path):
    """Without --config, ./jobvisor.toml is read (and its errors reported, exit 5)."""
    (tmp_path / "jobvisor.toml").write_text("[jobs.x]\nnope = 1\n")
    result = jobvisor("jobs", cwd=tmp_path)
    assert result.returncode == 5
    assert "jobvisor.toml: jobs.x.command: Field required" in result.stderr
    assert "jobvisor.toml: jobs.x.nope: unknown key" in result.stderr


def test_url_and_token_come_from_the_config_file(sv, tmp_path):
    """Without --url or --token the CLI talks to the config's http address, with the
    token the supervisor generated in the config's state folder."""
    host_port = sv.client.url.removeprefix("http://")
    config = tmp_path / "jobvisor.toml"
    config.write_text(f'http = "{host_port}"\nstate_dir = "{sv.settings.state_dir}"\n')
    job_id = sv.enqueue("demo")
    sv.wait(job_id)
    result = jobvisor("--config", str(config), "show", job_id, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "completed"


# --- submit -------------------------------------------------------------------------------


def test_submit_prints_the_new_job_id(sv, tmp_path):
    """``submit NAME --data JSON`` prints only the id; the job holds the data."""
    result = jobvisor("submit", "demo", "--data", data(["return", 1]), sv=sv, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.strip()
    assert JOB_ID.match(job_id)
    job = sv.wait(job_id)
    assert job["data"] == {"actions": [["return", 1]]}
    assert job["result"] == 1


def test_submit_wait_prints_the_result_and_exits_0(sv, tmp_path):
    """``submit --wait`` prints the result as JSON once the job completes, exit 0."""
    result = jobvisor(
        "submit", "demo", "--wait", "--data", data(["return", {"answer": 42}]), sv=sv, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"answer": 42}
    job_id = result.stderr.strip().splitlines()[0]
    assert sv.job(job_id)["status"] == "completed"


def test_submit_wait_exits_1_when_the_job_fails(sv, tmp_path):
    """A job whose only attempt raises makes ``submit --wait`` print the error and exit 1."""
    result = jobvisor(
        "submit",
        "once",
        "--wait",
        "--data",
        data(["raise", "x marks the spot"]),
        sv=sv,
        cwd=tmp_path,
    )
    assert result.returncode == 1, (result.stdout, result.stderr)
    error = json.loads(result.stdout)
    assert "x marks the spot" in error["message"]
    assert error["attempt"] == 1


def test_submit_max_attempts_overrides_the_kind(sv, tmp_path):
    """``--max-attempts 1`` makes a failing job of a 3-attempt kind fail at once."""
    result = jobvisor(
        "submit",
        "demo",
        "--max-attempts",
        "1",
        "--wait",
        "--data",
        data(["raise", "no retry"]),
        sv=sv,
        cwd=tmp_path,
    )
    assert result.returncode == 1, (result.stdout, result.stderr)
    job_id = result.stderr.strip().splitlines()[0]
    job = sv.job(job_id)
    assert (job["status"], job["attempts"], job["max_attempts"]) == ("failed", 1, 1)


def test_submit_wait_exits_3_when_the_job_is_cancelled(sv, tmp_path):
    """A job cancelled while ``submit --wait`` waits for it ends the command with exit 3."""
    proc = popen(
        "submit",
        "demo",
        "--wait",
        "--data",
        data(["wait_file", str(tmp_path / "never")]),
        sv=sv,
        cwd=tmp_path,
    )
    try:
        assert proc.stderr is not None
        job_id = proc.stderr.readline().strip()
        assert JOB_ID.match(job_id), job_id
        sv.wait(job_id, "running")
        sv.client.cancel(job_id, "changed my mind")
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == 3, err
    assert json.loads(out)["message"] == "changed my mind"


def test_submit_follow_shows_progress_and_logs(sv, tmp_path):
    """``submit --follow`` shows the progress bar and the worker's log lines, exit 0."""
    result = jobvisor(
        "submit",
        "demo",
        "--follow",
        "--data",
        data(
            ["log", "info", "hello from the worker"],
            ["progress", 50, "half way"],
            ["sleep", 1.0],
            ["return", "done"],
        ),
        sv=sv,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == "done"
    assert "hello from the worker" in result.stderr
    assert re.search(r"running \[#{15}\.{15}\]  50\.0% half way", result.stderr), result.stderr
    assert "completed [" in result.stderr
    assert "attempt 1 completed" in result.stderr
    assert "attempt 1: worker exited with code 0" in result.stderr


def test_submit_follow_exits_1_for_a_failed_job(sv, tmp_path):
    """``--follow`` exits with the outcome too: 1 for a failure."""
    result = jobvisor(
        "submit", "once", "--follow", "--data", data(["raise", "broken"]), sv=sv, cwd=tmp_path
    )
    assert result.returncode == 1, result.stderr
    assert "broken" in result.stdout
    assert "failed" in result.stderr


# --- jobs, show, cancel, logs ---------------------------------------------------------------


def test_jobs_lists_newest_first_as_a_table_and_as_json(sv, tmp_path):
    """``jobs`` prints a table; ``--json`` the same jobs as the API's JSON, newest first."""
    first = sv.enqueue("demo", {"actions": [["return", 1]]})
    sv.wait(first)
    second = sv.enqueue("once", {"actions": [["raise", "nope"]]})
    sv.wait(second)
    table = jobvisor("jobs", sv=sv, cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[:5] == ["ID", "NAME", "STATUS", "TRY", "PROGRESS"]
    assert [line.split()[:4] for line in lines[1:]] == [
        [second, "once", "failed", "1/1"],
        [first, "demo", "completed", "1/3"],
    ]
    listed = jobvisor("jobs", "--json", sv=sv, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    jobs = json.loads(listed.stdout)
    assert [(j["id"], j["status"]) for j in jobs] == [(second, "failed"), (first, "completed")]


def test_jobs_filters_by_status_and_name(sv, tmp_path):
    """``--status`` and ``--name`` narrow the list."""
    ok = sv.enqueue("demo", {"actions": [["return", 1]]})
    bad = sv.enqueue("once", {"actions": [["raise", "nope"]]})
    sv.wait(ok)
    sv.wait(bad)

    def ids(*args: str) -> list[str]:
        result = jobvisor("jobs", "--json", *args, sv=sv, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        return [job["id"] for job in json.loads(result.stdout)]

    assert ids("--status", "failed") == [bad]
    assert ids("--status", "completed") == [ok]
    assert ids("--name", "demo") == [ok]
    assert ids("--name", "demo", "--status", "failed") == []


def test_show_prints_the_job_as_json(sv, tmp_path):
    """``show ID`` prints the job with the fields docs/http-api.md lists."""
    job_id = sv.enqueue("demo", {"actions": [["return", [1, 2]]]})
    sv.wait(job_id)
    result = jobvisor("show", job_id, sv=sv, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)
    assert job["id"] == job_id and job["status"] == "completed" and job["result"] == [1, 2]
    for field in ("process_state", "attempts", "max_attempts", "pid", "progress", "error"):
        assert field in job
    assert job["finished_at"].endswith("Z")


def test_cancel_stops_a_running_job(sv, tmp_path):
    """``cancel ID`` cancels a running job; cancelling it again is refused (exit 2)."""
    job_id = sv.enqueue("demo", {"actions": [["hang"]]})
    sv.wait(job_id, "running")
    result = jobvisor("cancel", job_id, "--reason", "enough", sv=sv, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{job_id} cancelled"
    job = sv.wait(job_id)
    assert job["status"] == "cancelled" and job["error"]["message"] == "enough"
    again = jobvisor("cancel", job_id, sv=sv, cwd=tmp_path)
    assert again.returncode == 2
    assert "already cancelled" in again.stderr


def test_logs_prints_the_job_log(sv, tmp_path):
    """``logs ID`` prints the worker's output, its log messages and the supervisor's notes."""
    job_id = sv.enqueue("demo", {"actions": [["log", "warn", "careful ünïcode"]]})
    sv.wait(job_id)
    text = wait_for(
        lambda: (
            (r := jobvisor("logs", job_id, sv=sv, cwd=tmp_path)).returncode == 0
            and "exited with code 0" in r.stdout
            and r.stdout
        ),
        message="the log to show the worker's exit",
    )
    assert "careful ünïcode" in text
    assert "attempt 1/3: starting" in text


def test_logs_follow_streams_until_the_job_ends(sv, tmp_path):
    """``logs ID --follow`` prints lines as they come and returns once the job is over."""
    go = tmp_path / "go"
    job_id = sv.enqueue(
        "demo",
        {
            "actions": [
                ["log", "info", "before the go"],
                ["wait_file", str(go)],
                ["log", "info", "after the go"],
            ]
        },
    )
    wait_for(lambda: b"before the go" in sv.client.logs(job_id)[0], message="first log line")
    proc = popen("logs", job_id, "--follow", sv=sv, cwd=tmp_path)
    try:
        assert proc.stdout is not None
        first = wait_for(lambda: "before the go" in (line := proc.stdout.readline()) and line)
        assert "before the go" in first
        assert proc.poll() is None  # still following a running job
        go.touch()
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == 0, err
    assert "after the go" in out
    assert "attempt 1: worker exited with code 0" in out  # written after the job completed
    assert sv.job(job_id)["status"] == "completed"


def test_serve_on_a_taken_port_says_so_and_exits_5(tmp_path):
    """serve with an HTTP port in use: one clear line naming the address, exit code 5."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    config = tmp_path / "jobvisor.toml"
    config.write_text(
        f'state_dir = "state"\nhttp = "127.0.0.1:{port}"\nsocket_dir = "{short_socket_dir()}"\n'
    )
    try:
        done = subprocess.run(
            [sys.executable, "-m", "supervisor", "--config", str(config), "serve"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        taken.close()
    assert done.returncode == 5
    assert f"http: cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr
