"""The command line as users type it: global options anywhere, a closed pipe, and
``submit`` without ``--data`` agreeing with the HTTP API."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from supervisor.testing import SupervisorThread
from tests.supervisor.test_cli import address, cli_env, jobvisor


@pytest.fixture
def sv(start, worker) -> SupervisorThread:
    return start({"demo": worker()})


def test_serve_accepts_config_after_the_command(tmp_path):
    """``serve --config FILE`` reads FILE, as ``--config FILE serve`` does (here: exit 5
    naming FILE's bad key, instead of a usage error)."""
    config = tmp_path / "bad.toml"
    config.write_text('concurrency = "5"\n')
    for args in (["--config", str(config), "serve"], ["serve", "--config", str(config)]):
        result = jobvisor(*args, cwd=tmp_path)
        assert result.returncode == 5, (args, result.stderr)
        assert f"{config}: concurrency: Input should be a valid integer" in result.stderr


def test_global_options_work_after_any_command(sv, tmp_path):
    """--url/--token/--config after the command mean what they mean before it, and a
    value given before the command is not lost when the command does not repeat it."""
    job_id = sv.client.submit("demo", {"actions": [["return", 7]]})
    sv.wait(job_id)
    url, token = sv.client.url, sv.client.token
    after = jobvisor("show", job_id, "--url", url, "--token", token, cwd=tmp_path)
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout)["result"] == 7
    mixed = jobvisor("--url", url, "jobs", "--json", "--token", token, cwd=tmp_path)
    assert mixed.returncode == 0, mixed.stderr
    assert [job["id"] for job in json.loads(mixed.stdout)] == [job_id]


def test_submit_without_data_makes_a_job_whose_data_is_an_empty_object(sv, tmp_path):
    """``submit NAME`` alone makes a job whose data is {}, as POST /jobs without data."""
    result = jobvisor("submit", "demo", sv=sv, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    job = sv.wait(result.stdout.strip())
    assert job["data"] == {} and job["status"] == "completed"


def test_output_into_a_closed_pipe_ends_quietly(sv, tmp_path):
    """``jobvisor show ID | head -c 1``: no BrokenPipeError traceback, exit 0."""
    job_id = sv.client.submit("demo", {"actions": [["return", "x" * 200_000]]})
    sv.wait(job_id)
    for command in (["show", job_id], ["jobs", "--json"], ["logs", job_id]):
        proc = subprocess.Popen(
            [sys.executable, "-m", "supervisor", *address(sv), *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=tmp_path,
            env=cli_env(),
        )
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.read(1)
        proc.stdout.close()  # what head does once it has its fill
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=60) == 0, err
        assert "Traceback" not in err and "BrokenPipe" not in err, err
