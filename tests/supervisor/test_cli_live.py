"""The friendlier ``jobvisor`` command: --version, jobs filters and columns, labelled logs
with --tail, and the live views fed by the event stream (submit --follow, watch), each in
a real pseudo-terminal and through a pipe, against a real supervisor and real workers."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from supervisor.testing import ServerProcess, SupervisorThread, wait_for
from tests.supervisor.clirun import PtyRun
from tests.supervisor.serverconfig import write_config
from tests.supervisor.test_cli import address, cli_env, data, jobvisor, popen

TRANSPORTS = pytest.mark.parametrize("transport", ["unix", "tcp"])
JOBVISOR = [sys.executable, "-m", "supervisor"]
SUBMIT = ["submit", "demo", "--follow", "--data"]


@pytest.fixture
def sv(start, worker) -> SupervisorThread:
    """A supervisor with a scripted kind ``demo`` (3 attempts, quick retries), a
    single-attempt kind ``once`` and a plain program ``plain`` (stdout and stderr)."""
    return start(
        {
            "demo": worker(retry_delay=0.1),
            "once": worker(max_attempts=1),
            "plain": {
                "command": "sh",
                "args": ["-c", "echo to-stdout; echo to-stderr >&2"],
                "protocol": "none",
            },
        }
    )


def test_version_prints_the_installed_version(tmp_path):
    """``jobvisor --version`` prints the installed distribution's version and exits 0."""
    result = jobvisor("--version", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"jobvisor {metadata.version('jobvisor')}"


# --- jobs -----------------------------------------------------------------------------------


def finished_jobs(sv: SupervisorThread) -> dict[str, str]:
    """One completed, one failed and one cancelled job: ``{status: id}``."""
    ok = sv.enqueue("demo", {"actions": [["return", 1]]})
    sv.wait(ok)
    bad = sv.enqueue("once", {"actions": [["raise", "it broke"]]})
    sv.wait(bad)
    gone = sv.enqueue("demo", {"actions": [["hang"]]})
    sv.wait(gone, "running")
    sv.client.cancel(gone, "not needed")
    sv.wait(gone)
    return {"completed": ok, "failed": bad, "cancelled": gone}


def test_jobs_takes_several_statuses_comma_separated_or_repeated(sv, tmp_path):
    """``--status failed,cancelled`` and repeated ``--status`` list the union, newest first."""
    ids = finished_jobs(sv)

    def listed(*args: str) -> list[str]:
        result = jobvisor("jobs", "--json", *args, sv=sv, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        return [job["id"] for job in json.loads(result.stdout)]

    assert listed("--status", "failed,cancelled") == [ids["cancelled"], ids["failed"]]
    assert listed("--status", "completed", "--status", "failed") == [
        ids["failed"],
        ids["completed"],
    ]
    assert listed("--status", "failed,failed") == [ids["failed"]]


def test_jobs_offset_pages_through_the_list(sv, tmp_path):
    """``--offset N --limit M`` skips the N newest, also across several statuses."""
    ids = finished_jobs(sv)
    newest_first = [ids["cancelled"], ids["failed"], ids["completed"]]

    def listed(*args: str) -> list[str]:
        result = jobvisor("jobs", "--json", *args, sv=sv, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        return [job["id"] for job in json.loads(result.stdout)]

    assert listed("--offset", "1", "--limit", "1") == newest_first[1:2]
    assert listed("--offset", "2") == newest_first[2:]
    assert listed("--status", "completed,cancelled", "--offset", "1") == [ids["completed"]]


def test_jobs_table_has_duration_and_error_columns(sv, tmp_path):
    """The table shows how long each job ran and the error of a failed or cancelled one."""
    ids = finished_jobs(sv)
    result = jobvisor("jobs", sv=sv, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == [
        "ID",
        "NAME",
        "STATUS",
        "TRY",
        "PROGRESS",
        "DURATION",
        "CREATED",
        "ERROR",
    ]
    by_id = {row.split()[0]: row for row in rows}
    duration = r"\d+(\.\d)?(ms|s)|\d+m\d\ds"
    for job_id in ids.values():
        assert re.search(rf"\s({duration})\s+\d{{4}}-", by_id[job_id]), by_id[job_id]
    assert by_id[ids["failed"]].endswith("it broke")
    assert by_id[ids["cancelled"]].endswith("not needed")
    assert by_id[ids["completed"]].endswith("Z")  # no error: the line ends with CREATED


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--status", "failed,sleeping"], "--status: unknown status 'sleeping'"),
        (["--offset", "-1"], "--offset must be 0 or more"),
        (["--limit", "0"], "--limit must be at least 1"),
    ],
)
def test_jobs_bad_filters_exit_2_naming_the_value(sv, tmp_path, args, message):
    """A bad status, offset or limit is a usage error naming it; the supervisor carries on."""
    result = jobvisor("jobs", *args, sv=sv, cwd=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr
    assert sv.client.health()["status"] == "ok"


# --- logs -----------------------------------------------------------------------------------


def finished_log(sv: SupervisorThread, tmp_path: Path, job_id: str) -> str:
    """The job's labelled log once the supervisor has noted its worker's exit."""
    last: list[subprocess.CompletedProcess[str]] = []

    def read() -> str | None:
        last[:] = [result := jobvisor("logs", job_id, sv=sv, cwd=tmp_path)]
        ok = result.returncode == 0 and "exited with code 0" in result.stdout
        return result.stdout if ok else None

    try:
        return wait_for(read, message="the log to show the worker's exit")
    except TimeoutError:
        pytest.fail(f"no exit note in the log: {last}")


def test_logs_lines_carry_a_timestamp_and_their_stream(sv, tmp_path):
    """Each line shows its time and label: the supervisor's notes, a worker's log messages
    by level, a plain program's stdout and stderr."""
    worker_job = sv.enqueue("demo", {"actions": [["log", "warn", "careful"]]})
    sv.wait(worker_job)
    plain_job = sv.enqueue("plain")
    sv.wait(plain_job)
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
    worker_log = finished_log(sv, tmp_path, worker_job)
    assert re.search(rf"^{stamp} jobvisor +attempt 1/3: starting", worker_log, re.M)
    assert re.search(rf"^{stamp} log:warn +careful$", worker_log, re.M), worker_log
    plain_log = finished_log(sv, tmp_path, plain_job)
    assert re.search(rf"^{stamp} stdout +to-stdout$", plain_log, re.M), plain_log
    assert re.search(rf"^{stamp} stderr +to-stderr$", plain_log, re.M), plain_log
    raw = jobvisor("logs", plain_job, "--raw", sv=sv, cwd=tmp_path).stdout
    assert re.search(rf"^{stamp} \[stdout\] to-stdout$", raw, re.M), raw


def test_logs_tail_prints_only_the_last_lines(sv, tmp_path):
    """``logs --tail N`` prints the last N lines of the log, labelled."""
    job_id = sv.enqueue("demo", {"actions": [["logs", 30, "info", "line"]]})
    sv.wait(job_id)
    whole = finished_log(sv, tmp_path, job_id).splitlines()
    result = jobvisor("logs", job_id, "--tail", "4", sv=sv, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == whole[-4:]
    assert "line 29" in result.stdout and "line 27" not in result.stdout
    none = jobvisor("logs", job_id, "--tail", "0", sv=sv, cwd=tmp_path)
    assert none.returncode == 0 and none.stdout == ""
    bad = jobvisor("logs", job_id, "--tail", "-2", sv=sv, cwd=tmp_path)
    assert bad.returncode == 2 and "--tail must be 0 or more" in bad.stderr


def test_logs_of_an_unknown_job_exit_2(sv, tmp_path):
    """``logs`` (and ``logs --follow``) of an id the supervisor does not know: exit 2."""
    for args in ([], ["--follow"]):
        result = jobvisor("logs", "0123456789abcdef0123", *args, sv=sv, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert "no job with id" in result.stderr


# --- submit --follow --------------------------------------------------------------------------


FLAKY = data(
    ["log", "info", "working"],
    ["progress", 50, "half way"],
    ["on_attempt", 1, "raise", "first try fails"],
    ["return", {"rows": 7}],
)


@TRANSPORTS
def test_submit_follow_in_a_terminal_draws_a_live_bar_and_the_retry(
    transport, start, worker, tmp_path
):
    """In a pty, ``submit --follow`` draws a progress bar, the labelled log and the retry,
    then prints the result and exits 0."""
    sv = start({"demo": worker(retry_delay=0.1)}, transport=transport)
    run = PtyRun(
        [*address(sv), "submit", "demo", "--follow", "--data", FLAKY],
        cwd=tmp_path,
        env=cli_env(),
    )
    code = run.finish()
    text = run.text()
    assert code == 0, text
    assert "━" in text  # rich's bar, not the plain one
    assert "[####" not in text
    assert re.search(r"\d\d:\d\d:\d\d\.\d{3}Z log:info +working", text), text
    assert "attempt 1 failed: first try fails; retrying" in text
    assert "completed" in text
    assert '"rows": 7' in text
    assert "\x1b[" in run.raw()  # drawn with escape sequences


def test_submit_follow_with_no_color_draws_without_colours(start, worker, tmp_path):
    """With ``NO_COLOR`` set, a terminal still gets the live bar, but no colour codes."""
    sv = start({"demo": worker()})
    halfway = data(["progress", 50, "half"], ["log", "info", "plain"])
    args = ["submit", "demo", "--follow", "--data", halfway]
    run = PtyRun([*address(sv), *args], cwd=tmp_path, env=cli_env(), no_color=True)
    code = run.finish()
    assert code == 0, run.text()
    assert "━" in run.text() and "log:info" in run.text()  # the bar's filled half
    colours = re.findall(r"\x1b\[[0-9;]*(?:3[0-9]|9[0-7]|38;[0-9;]+)m", run.raw())
    assert colours == [], colours[:5]


def test_submit_follow_in_colour_uses_colour_codes(start, worker, tmp_path):
    """Without ``NO_COLOR``, the same run is coloured (the check above can fail)."""
    sv = start({"demo": worker()})
    args = ["submit", "demo", "--follow", "--data", data(["log", "info", "plain"])]
    run = PtyRun([*address(sv), *args], cwd=tmp_path, env=cli_env())
    assert run.finish() == 0, run.text()
    assert re.search(r"\x1b\[[0-9;]*(?:3[0-9]|9[0-7]|38;[0-9;]+)m", run.raw())


@TRANSPORTS
def test_submit_follow_through_a_pipe_prints_plain_lines(transport, start, worker, tmp_path):
    """Through a pipe, ``submit --follow`` writes one plain line per change: the bar,
    the log lines, the retry; no escape sequences."""
    sv = start({"demo": worker(retry_delay=0.1)}, transport=transport)
    result = jobvisor("submit", "demo", "--follow", "--data", FLAKY, sv=sv, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"rows": 7}
    err = result.stderr
    assert "\x1b[" not in err
    assert re.search(r"running \[#{15}\.{15}\]  50\.0% half way", err), err
    assert re.search(r"Z log:info +working", err), err
    assert "jobvisor: attempt 1 failed: first try fails; retrying" in err
    assert re.search(r"completed \[#{15}\.{15}\]  50\.0% half way", err), err
    assert err.index("retrying") < err.index("attempt 2/3: starting")


# --- watch ----------------------------------------------------------------------------------


def gated_jobs(sv: SupervisorThread, gate: Path) -> list[str]:
    """Two jobs that report progress and then wait for ``gate``; the second fails once."""
    first = sv.enqueue(
        "demo", {"actions": [["progress", 40, "warming up"], ["wait_file", str(gate)]]}
    )
    second = sv.enqueue(
        "demo",
        {
            "actions": [
                ["progress", 70, "nearly"],
                ["wait_file", str(gate)],
                ["on_attempt", 1, "raise", "flaked"],
            ]
        },
    )
    for job_id in (first, second):
        sv.wait(job_id, "running")
    wait_for(
        lambda: all(sv.job(j)["progress"]["percent"] for j in (first, second)),
        message="both jobs to report progress",
    )
    return [first, second]


@TRANSPORTS
def test_watch_in_a_terminal_shows_running_jobs_until_idle(transport, start, worker, tmp_path):
    """In a pty, ``watch --until-idle`` shows the running jobs with bars, then their
    outcomes (a retry included), and ends by itself once nothing runs or waits."""
    sv = start({"demo": worker(retry_delay=0.1)}, transport=transport)
    gate = tmp_path / "go"
    first, second = gated_jobs(sv, gate)
    run = PtyRun([*address(sv), "watch", "--until-idle"], cwd=tmp_path, env=cli_env())
    try:
        shown = run.wait_text(rf"(?s)running 2 .*{first}.*40\.0%.*{second}", "both rows")
        assert "running 2" in shown
        assert re.search(rf"{second}.*70\.0% +\S+ +nearly", shown), shown
        gate.touch()
    finally:
        code = run.finish()
    text = run.text()
    assert code == 0, text
    assert re.search(rf"{second} +demo +retrying +attempt 1 failed: flaked", text), text
    assert re.search(rf"{first} +demo +completed", text), text
    assert "running 0   queued 0" in text
    assert "━" in text


@TRANSPORTS
def test_watch_through_a_pipe_prints_one_line_per_event(transport, start, worker, tmp_path):
    """Through a pipe, ``watch`` prints a plain line per event (progress, retry, outcome)
    with the running and queued counts, and ``--until-idle`` ends it."""
    sv = start({"demo": worker(retry_delay=0.1)}, transport=transport)
    gate = tmp_path / "go"
    first, second = gated_jobs(sv, gate)
    proc = popen("watch", "--until-idle", sv=sv, cwd=tmp_path)
    try:
        assert proc.stdout is not None
        header = proc.stdout.readline()
        assert "watching" in header and "(running 2 queued 0)" in header
        gate.touch()
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == 0, err
    assert "\x1b[" not in out
    assert re.search(rf"retrying +{second} +demo +attempt 1 failed: flaked", out), out
    assert re.search(rf"started +{second} +demo +attempt 2", out), out
    assert re.search(rf"completed +{first} +demo", out), out
    assert re.search(rf"completed +{second} +demo .*\(running 0 queued 0\)$", out, re.M), out


def test_watch_until_idle_ends_at_once_when_nothing_runs(sv, tmp_path):
    """With no job running or queued (one scheduled for next year only), ``watch
    --until-idle`` ends at once, exit 0."""
    sv.client.submit("demo", run_at="2099-01-01T00:00:00Z")
    result = jobvisor("watch", "--until-idle", sv=sv, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "(running 0 queued 0)" in result.stdout


# --- across a supervisor restart ----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def fixed_port_config(tmp_path: Path, marker: str, transport: str) -> tuple[Path, int]:
    """A config for ``serve`` on a fixed port, so that a restarted supervisor is where
    a client looks."""
    config = write_config(tmp_path, marker, transport=transport)
    port = free_port()
    config.write_text(
        config.read_text().replace('http = "127.0.0.1:0"', f'http = "127.0.0.1:{port}"')
    )
    return config, port


def restart_after_hangups(server: ServerProcess, config: Path, port: int) -> ServerProcess:
    """kill -9 ``server``; while it is down, the clients' requests (streams and reads)
    find a port that hangs up on them, six of them, which spans their read intervals;
    then start it again on the same port."""
    server.kill()
    with socket.create_server(("127.0.0.1", port)) as down:
        down.settimeout(30)  # a client that gave up would never come
        for _ in range(6):
            connection, _address = down.accept()
            connection.close()
    return ServerProcess(config).start()


@TRANSPORTS
def test_watch_carries_on_across_a_kill_9_of_serve(transport, tmp_path, marker):
    """``watch --until-idle`` (through a pipe) keeps going while ``serve`` is killed with
    -9 and started again, then reports the outcomes and ends, exit 0."""
    config, port = fixed_port_config(tmp_path, marker, transport)
    gate = tmp_path / "go"
    server = ServerProcess(config).start()
    job_id = server.client.submit(
        "demo", {"actions": [["progress", 30, "waiting"], ["wait_file", str(gate)]]}
    )
    wait_for(lambda: server.client.get(job_id)["progress"]["percent"], message="progress")
    watch = subprocess.Popen(
        [*JOBVISOR, "--config", str(config), "--url", server.url, "watch", "--until-idle"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=tmp_path,
        env=cli_env(),
    )
    try:
        assert watch.stdout is not None
        assert "(running 1 queued 0)" in watch.stdout.readline()
        server = restart_after_hangups(server, config, port)
        # The new supervisor's stream cannot replay the old one's: a reset, the state
        # re-read (the worker re-attached, still running), then live events again.
        reset = watch.stdout.readline()
        assert " reset " in reset and "(running 1 queued 0)" in reset, reset
        gate.touch()
        out, err = watch.communicate(timeout=90)
    finally:
        watch.kill()
        watch.communicate()
        server.kill()
    assert watch.returncode == 0, err
    assert re.search(rf"completed +{job_id} +demo .*\(running 0 queued 0\)$", out, re.M), out


@TRANSPORTS
def test_submit_follow_carries_on_across_a_kill_9_of_serve(transport, tmp_path, marker):
    """``submit --follow`` keeps following while ``serve`` is killed with -9, unreachable
    for a while and started again on the same address: it shows the lines from both sides
    and the outcome, exit 0."""
    config, port = fixed_port_config(tmp_path, marker, transport)
    halfway, done = tmp_path / "halfway", tmp_path / "done"
    actions = data(
        ["log", "info", "before the restart"],
        ["touch", str(halfway)],
        ["wait_file", str(done)],
        ["log", "info", "after the restart"],
        ["return", "survived"],
    )
    server = ServerProcess(config).start()
    follower = subprocess.Popen(
        [*JOBVISOR, "--config", str(config), "--url", server.url, *SUBMIT, actions],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=tmp_path,
        env=cli_env(),
    )
    seen: list[str] = []
    try:
        wait_for(halfway.exists, timeout=60, message="the worker to start")
        # Kill only once the follower shows the job's log: it is following by then.
        assert follower.stderr is not None
        while not any("before the restart" in line for line in seen):
            line = follower.stderr.readline()
            assert line, f"the follower ended early: {seen}"
            seen.append(line)
        server = restart_after_hangups(server, config, port)
        done.touch()
        out, rest = follower.communicate(timeout=90)
    finally:
        follower.kill()
        follower.communicate()
        server.kill()
    err = "".join(seen) + rest
    assert follower.returncode == 0, err
    assert json.loads(out) == "survived"
    assert err.index("before the restart") < err.index("after the restart"), err
    assert err.count("before the restart") == 1  # nothing shown twice after the resume
    assert "attempt 1 completed" in err


def test_the_command_module_leaves_rich_for_the_commands_that_draw():
    """``import supervisor.cli`` (what ``jobvisor serve`` runs through) loads neither rich
    nor the rendering module: only commands that draw pay for them."""
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, sys, supervisor.cli; "
            "print(json.dumps([m in sys.modules for m in ('rich', 'supervisor.cliview')]))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(probe.stdout) == [False, False]
